package data

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// FuzzParseTokenized checks that ParseTokenized never panics, and that
// every record it accepts is what encoding/json reads from the same line.
func FuzzParseTokenized(f *testing.F) {
	f.Add([]byte(`{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}` + "\n\n" + `{"input_ids": [4]}`))
	f.Add([]byte(`{"input_ids": [1], "labels": null}`))
	f.Add([]byte(`{"text": "hello"}`))
	f.Add([]byte(`{"input_ids": [1, 2.0, -1, 99999999999]}`))
	f.Add([]byte(`{"input\u005fids": [1], "labels": [1, 2]}`))

	f.Fuzz(func(t *testing.T, in []byte) {
		recs, err := ParseTokenized(bytes.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		lines := bytes.Split(in, []byte("\n"))
		prev := 0
		for _, r := range recs {
			if r.Line <= prev || r.Line > len(lines) {
				t.Fatalf("line %d after %d, input has %d lines", r.Line, prev, len(lines))
			}
			prev = r.Line
			if len(r.InputIDs) == 0 || len(r.Labels) != len(r.InputIDs) {
				t.Fatalf("line %d: %d ids, %d labels", r.Line, len(r.InputIDs), len(r.Labels))
			}
			for i, id := range r.InputIDs {
				if id < 0 {
					t.Fatalf("line %d: input_ids[%d] = %d", r.Line, i, id)
				}
				if l := r.Labels[i]; l < 0 && l != IgnoreIndex {
					t.Fatalf("line %d: labels[%d] = %d", r.Line, i, l)
				}
			}

			var ref struct {
				InputIDs []int64 `json:"input_ids"`
				Labels   []int64 `json:"labels"`
			}
			line := bytes.TrimPrefix(lines[r.Line-1], []byte("\xef\xbb\xbf"))
			if err := json.Unmarshal(line, &ref); err != nil {
				t.Fatalf("line %d accepted, but encoding/json says %v", r.Line, err)
			}
			if ref.Labels == nil {
				ref.Labels = ref.InputIDs
			}
			if !slices.Equal(widen(r.InputIDs), ref.InputIDs) || !slices.Equal(widen(r.Labels), ref.Labels) {
				t.Fatalf("line %d: got %v %v, encoding/json reads %v %v", r.Line, r.InputIDs, r.Labels, ref.InputIDs, ref.Labels)
			}
		}
	})
}

func widen(v []int32) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}
