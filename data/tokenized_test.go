package data

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTokenized(t *testing.T) {
	in := "\xef\xbb\xbf" + `{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}` + "\n" +
		"\n" +
		"   \t\r\n" +
		`{"labels":null,"input_ids":[7]}` + "\r\n" +
		`{ "input_ids" : [ 0 , 2147483647 ] }` + "\n" +
		`{"input\u005fids": [5]}` // no final newline
	recs, err := ParseTokenized(strings.NewReader(in), "data.jsonl")
	require.NoError(t, err)
	assert.Equal(t, []Record{
		{InputIDs: []int32{1, 2, 3}, Labels: []int32{-100, 2, 3}, Line: 1},
		{InputIDs: []int32{7}, Labels: []int32{7}, Line: 4},
		{InputIDs: []int32{0, 2147483647}, Labels: []int32{0, 2147483647}, Line: 5},
		{InputIDs: []int32{5}, Labels: []int32{5}, Line: 6},
	}, recs)
	// The default labels are a copy, not an alias.
	recs[1].Labels[0] = IgnoreIndex
	assert.Equal(t, int32(7), recs[1].InputIDs[0])
}

func TestParseTokenizedErrors(t *testing.T) {
	const ok = `{"input_ids": [1, 2]}` + "\n"
	cases := []struct {
		name, line, want string
	}{
		{"bad JSON", `{"input_ids": [1, 2}`, "invalid JSON: invalid character '}' after array element"},
		{"trailing data", `{"input_ids": [1]} {}`, "invalid JSON: invalid character '{' after top-level value"},
		{"not object", `[1, 2]`, "record is not a JSON object"},
		{"raw text", `{"text": "hello"}`, `unknown field "text": this file is not pre-tokenized; only {"input_ids": [...], "labels": [...]} records are accepted here`},
		{"messages", `{"input_ids": [1], "messages": []}`, `unknown field "messages": this file is not pre-tokenized; only {"input_ids": [...], "labels": [...]} records are accepted here`},
		{"unknown field", `{"input_ids": [1], "attention_mask": [1]}`, `unknown field "attention_mask": only "input_ids" and "labels" are accepted`},
		{"missing ids", `{"labels": [1]}`, "missing input_ids"},
		{"empty object", `{}`, "missing input_ids"},
		{"empty ids", `{"input_ids": []}`, "input_ids is empty"},
		{"null ids", `{"input_ids": null}`, "input_ids is null, want an array of token ids"},
		{"ids not array", `{"input_ids": "1 2 3"}`, "input_ids is not an array of token ids"},
		{"ids nested", `{"input_ids": [[1, 2]]}`, "input_ids[0] is not an integer"},
		{"ids string", `{"input_ids": [1, "2"]}`, "input_ids[1] is not an integer"},
		{"ids float", `{"input_ids": [1, 2.5]}`, "input_ids[1] is 2.5, not an integer"},
		{"ids exponent", `{"input_ids": [1e3]}`, "input_ids[0] is 1e3, not an integer"},
		{"ids negative", `{"input_ids": [3, -1]}`, "input_ids[1] is -1; token ids must be non-negative"},
		{"ids -100", `{"input_ids": [-100]}`, "input_ids[0] is -100; token ids must be non-negative"},
		{"ids too big", `{"input_ids": [2147483648]}`, "input_ids[0] is 2147483648, too large for a token id"},
		{"ids huge", `{"input_ids": [99999999999999999999999]}`, "input_ids[0] is 99999999999999999999999, too large for a token id"},
		{"labels length", `{"input_ids": [1,2,3,4,5,6,7,8], "labels": [1,2,3,4,5,6,7]}`, "labels has 7 values, input_ids has 8"},
		{"labels empty", `{"input_ids": [1], "labels": []}`, "labels has 0 values, input_ids has 1"},
		{"labels negative", `{"input_ids": [1, 2], "labels": [1, -5]}`, "labels[1] is -5; labels must be token ids or -100"},
		{"labels not array", `{"input_ids": [1], "labels": 1}`, "labels is not an array of token ids"},
		{"duplicate ids", `{"input_ids": [1], "input_ids": [2]}`, `duplicate field "input_ids"`},
		{"duplicate labels", `{"input_ids": [1], "labels": [1], "labels": [2]}`, `duplicate field "labels"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The bad record is on line 3, after a good one and a blank line.
			_, err := ParseTokenized(strings.NewReader(ok+"\n"+c.line+"\n"+ok), "data.jsonl")
			assert.EqualError(t, err, "data.jsonl:3: "+c.want)
		})
	}
}

func TestParseTokenizedEmpty(t *testing.T) {
	_, err := ParseTokenized(strings.NewReader("\n \n"), "data.jsonl")
	assert.EqualError(t, err, "data.jsonl: no records")
	_, err = ParseTokenized(strings.NewReader(""), "data.jsonl")
	assert.EqualError(t, err, "data.jsonl: no records")
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		r.n--
		return copy(p, `{"input_ids": [1]}`+"\n"), nil
	}
	return 0, errors.New("disk on fire")
}

func TestParseTokenizedReadError(t *testing.T) {
	_, err := ParseTokenized(&failingReader{n: 2}, "data.jsonl")
	assert.EqualError(t, err, "data.jsonl:3: disk on fire")
}

func TestLongLine(t *testing.T) {
	// A 2M-token record is several megabytes on one line.
	const n = 2_000_000
	var b strings.Builder
	b.WriteString(`{"input_ids": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(i % 50000))
	}
	b.WriteString("]}\n")
	b.WriteString(`{"input_ids": [9]}`)
	recs, err := ParseTokenized(strings.NewReader(b.String()), "long.jsonl")
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Len(t, recs[0].InputIDs, n)
	assert.Equal(t, int32(49999), recs[0].InputIDs[49999])
	assert.Equal(t, int32(1), recs[0].Labels[n-49999])
	assert.Equal(t, 2, recs[1].Line)
}

func TestReadTokenized(t *testing.T) {
	path := filepath.Join(t.TempDir(), "train.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(`{"input_ids": [1, 2]}`+"\n"+`{"input_ids": [3], "labels": [-100]}`+"\n"), 0o644))
	recs, err := ReadTokenized(path)
	require.NoError(t, err)
	assert.Equal(t, []Record{
		{InputIDs: []int32{1, 2}, Labels: []int32{1, 2}, Line: 1},
		{InputIDs: []int32{3}, Labels: []int32{-100}, Line: 2},
	}, recs)

	require.NoError(t, os.WriteFile(path, []byte(`{"input_ids": [1]}`+"\n"+`{"text": "x"}`), 0o644))
	_, err = ReadTokenized(path)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), path+":2: unknown field \"text\""), err.Error())

	_, err = ReadTokenized(filepath.Join(t.TempDir(), "missing.jsonl"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestCheckVocab(t *testing.T) {
	recs := []Record{
		{InputIDs: []int32{1, 2}, Labels: []int32{-100, 2}, Line: 1},
		{InputIDs: []int32{3, 9}, Labels: []int32{3, 9}, Line: 4},
		{InputIDs: []int32{12}, Labels: []int32{12}, Line: 5},
	}
	assert.NoError(t, CheckVocab(recs, 13, "d.jsonl"))
	assert.EqualError(t, CheckVocab(recs, 10, "d.jsonl"), "d.jsonl:5: input_ids[0] is 12, outside the vocabulary of 10 tokens")
	assert.EqualError(t, CheckVocab(recs, 9, "d.jsonl"), "d.jsonl:4: input_ids[1] is 9, outside the vocabulary of 9 tokens")
	bad := []Record{{InputIDs: []int32{1}, Labels: []int32{20}, Line: 2}}
	assert.EqualError(t, CheckVocab(bad, 10, "d.jsonl"), "d.jsonl:2: labels[0] is 20, outside the vocabulary of 10 tokens")
}
