package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var tokenizerTestdata = filepath.Join("..", "..", "testdata", "tokenizer")

// tokenizeGolden returns transformers.js's ids for text from a family's
// golden.json.
func tokenizeGolden(t *testing.T, family, text string) (withSpecial, plain []int32) {
	data, err := os.ReadFile(filepath.Join(tokenizerTestdata, family, "golden.json"))
	require.NoError(t, err)
	var g struct {
		Cases []struct {
			Text         string  `json:"text"`
			IDs          []int32 `json:"ids"`
			IDsNoSpecial []int32 `json:"ids_no_special"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &g))
	for _, c := range g.Cases {
		if c.Text == text {
			return c.IDs, c.IDsNoSpecial
		}
	}
	t.Fatalf("%s: no golden case %q", family, text)
	return nil, nil
}

func runTokenizeWith(t *testing.T, input string, args ...string) (int, []int32, string) {
	stdin = strings.NewReader(input)
	defer func() { stdin = os.Stdin }()
	code, out, errOut := runPaca(append([]string{"tokenize"}, args...)...)
	var ids []int32
	if code == 0 {
		require.NoError(t, json.Unmarshal([]byte(out), &ids), out)
		require.True(t, strings.HasSuffix(out, "]\n"), "one JSON array and a newline: %q", out)
	}
	return code, ids, errOut
}

func TestTokenize(t *testing.T) {
	const text = "Hello<|endoftext|>world"
	for _, family := range []string{"tiny-llama2", "tiny-llama3", "tiny-qwen2"} {
		want, plain := tokenizeGolden(t, family, text)
		dir := filepath.Join(tokenizerTestdata, family)

		code, ids, errOut := runTokenizeWith(t, text, "--model", dir, "--special")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, want, ids, family)

		code, ids, errOut = runTokenizeWith(t, text, "--tokenizer", filepath.Join(dir, "tokenizer.json"))
		require.Equal(t, 0, code, errOut)
		require.Equal(t, plain, ids, family)
	}
	// Empty input: [] (and BOS alone with --special).
	code, ids, _ := runTokenizeWith(t, "", "--model", filepath.Join(tokenizerTestdata, "tiny-llama2"))
	require.Equal(t, 0, code)
	require.Equal(t, []int32{}, ids)
	_, ids, _ = runTokenizeWith(t, "", "--model", filepath.Join(tokenizerTestdata, "tiny-llama2"), "--special")
	require.Equal(t, []int32{1}, ids)
}

func TestTokenizeBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "tokenizer.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"model": {"type": "WordPiece"}}`), 0o644))

	code, _, errOut := runTokenizeWith(t, "x")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "give exactly one of -tokenizer and -model")

	code, _, errOut = runTokenizeWith(t, "x", "--tokenizer", bad, "--model", dir)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "give exactly one of -tokenizer and -model")

	code, _, errOut = runTokenizeWith(t, "x", "--tokenizer", bad)
	require.Equal(t, 1, code)
	require.Equal(t, "paca tokenize: "+bad+`: model.type: unsupported model type "WordPiece" (only BPE is supported)`+"\n", errOut)

	code, _, errOut = runTokenizeWith(t, "x", "--model", filepath.Join(dir, "absent"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no such file or directory")
}
