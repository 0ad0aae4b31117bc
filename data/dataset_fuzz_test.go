package data

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseLine checks that the dataset line parser never panics, that
// what it accepts agrees with encoding/json's reading of the line, and
// that every record built from an accepted line is well formed: as many
// labels as tokens, each label IgnoreIndex or its token.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"text": "hello"}`))
	f.Add([]byte(`{"prompt": "Q: 1+1\nA:", "completion": " 2", "id": 3}`))
	f.Add([]byte(`{"instruction": "Say hi.", "input": null, "output": "hi"}`))
	f.Add([]byte(`{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "<|im_end|>ab"}, {"role": "assistant", "content": "b"}]}`))
	f.Add([]byte(`{"input_ids": [1, 2], "labels": [-100, 2]}`))
	f.Add([]byte(`{"messages": [{"role": "tool", "content": 1}]}`))
	f.Add([]byte(`{"te\u0078t": "a", "text": 5}`))

	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.TrimSpace(line)
		ex, err := parseLine(line)
		if err != nil {
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			t.Fatalf("accepted %q, but encoding/json says %v", line, err)
		}
		str := func(key string) string {
			var s string
			if raw, ok := obj[key]; ok {
				_ = json.Unmarshal(raw, &s)
			}
			return s
		}
		switch ex.format {
		case FormatText:
			if ex.text != str("text") || ex.text == "" {
				t.Fatalf("text %q, encoding/json reads %q", ex.text, str("text"))
			}
		case FormatPromptCompletion:
			if ex.prompt != str("prompt") || ex.completion != str("completion") {
				t.Fatalf("prompt %q completion %q, encoding/json reads %q %q", ex.prompt, ex.completion, str("prompt"), str("completion"))
			}
		case FormatAlpaca:
			if ex.instruction != str("instruction") || ex.input != str("input") || ex.output != str("output") {
				t.Fatalf("alpaca %q %q %q, encoding/json reads %q %q %q", ex.instruction, ex.input, ex.output,
					str("instruction"), str("input"), str("output"))
			}
		case FormatChat:
			var ref struct{ Messages []Message }
			if err := json.Unmarshal(line, &ref); err != nil || len(ref.Messages) != len(ex.messages) {
				t.Fatalf("%d messages, encoding/json reads %v (%v)", len(ex.messages), ref.Messages, err)
			}
			for i, m := range ex.messages {
				if m != ref.Messages[i] || !chatRoles[m.Role] {
					t.Fatalf("messages[%d] = %+v, encoding/json reads %+v", i, m, ref.Messages[i])
				}
			}
		case FormatTokenized:
			if len(ex.rec.InputIDs) == 0 || len(ex.rec.Labels) != len(ex.rec.InputIDs) {
				t.Fatalf("%d ids, %d labels", len(ex.rec.InputIDs), len(ex.rec.Labels))
			}
			return
		default:
			t.Fatalf("format %q", ex.format)
		}

		tok := newFakeTok()
		tok.template = qwen2Template
		tok.merge = true
		for _, opt := range []Options{{}, {TrainOnPrompt: true}} {
			b := &builder{tok: tok, opt: opt}
			rec, err := b.build(ex)
			if err != nil {
				continue
			}
			if len(rec.InputIDs) == 0 || len(rec.Labels) != len(rec.InputIDs) {
				t.Fatalf("%d ids, %d labels", len(rec.InputIDs), len(rec.Labels))
			}
			for i, l := range rec.Labels {
				if l != IgnoreIndex && l != rec.InputIDs[i] || opt.TrainOnPrompt && l != rec.InputIDs[i] {
					t.Fatalf("labels[%d] = %d, input_ids[%d] = %d", i, l, i, rec.InputIDs[i])
				}
			}
		}
	})
}
