package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every broken tokenizer.json is one error that names the file and the
// place, never a panic.
func TestLoadErrors(t *testing.T) {
	type obj = map[string]any
	model := func(m obj) obj { return m["model"].(obj) }
	added := func(m obj) []any { return m["added_tokens"].([]any) }
	cases := []struct {
		name   string
		family string
		edit   func(m obj)
		want   string
	}{
		{"version", "tiny-gpt2", func(m obj) { m["version"] = "2.0" }, `version: unknown tokenizer.json version "2.0" (want "1.0")`},
		{"no model", "tiny-gpt2", func(m obj) { delete(m, "model") }, "model: missing"},
		{"model not object", "tiny-gpt2", func(m obj) { m["model"] = 3 }, "model: want an object, got a number"},
		{"WordPiece", "tiny-gpt2", func(m obj) { model(m)["type"] = "WordPiece" }, `model.type: unsupported model type "WordPiece" (only BPE is supported)`},
		{"Unigram", "tiny-gpt2", func(m obj) { model(m)["type"] = "Unigram" }, `model.type: unsupported model type "Unigram" (only BPE is supported)`},
		{"untyped non-BPE", "tiny-gpt2", func(m obj) { delete(model(m), "type"); delete(model(m), "merges") }, "model: no type and no merges: only BPE models are supported"},
		{"dropout", "tiny-gpt2", func(m obj) { model(m)["dropout"] = 0.1 }, "model.dropout: BPE dropout 0.1 is not supported (it makes encoding random)"},
		{"prefix", "tiny-gpt2", func(m obj) { model(m)["continuing_subword_prefix"] = "##" }, `model.continuing_subword_prefix: "##" is not supported`},
		{"vocab missing", "tiny-gpt2", func(m obj) { delete(model(m), "vocab") }, "model.vocab: missing"},
		{"vocab id", "tiny-gpt2", func(m obj) { model(m)["vocab"].(obj)["x"] = -1 }, `model.vocab["x"]: want a non-negative 32-bit integer, got -1`},
		{"vocab id type", "tiny-gpt2", func(m obj) { model(m)["vocab"].(obj)["x"] = "7" }, `model.vocab["x"]: want a non-negative integer, got a string`},
		{"vocab id fraction", "tiny-gpt2", func(m obj) { model(m)["vocab"].(obj)["x"] = 1.5 }, `model.vocab["x"]: want a non-negative 32-bit integer, got 1.5`},
		{"unk", "tiny-llama2", func(m obj) { model(m)["unk_token"] = "<nope>" }, `model.unk_token: "<nope>" is not in model.vocab`},
		{"merges type", "tiny-gpt2", func(m obj) { model(m)["merges"] = "a b" }, "model.merges: want an array, got a string"},
		{"merge format", "tiny-gpt2", func(m obj) { model(m)["merges"].([]any)[12] = "a b c" }, `model.merges[12]: "a b c" is not two tokens separated by one space`},
		{"merge token", "tiny-gpt2", func(m obj) { model(m)["merges"].([]any)[3] = "zz a" }, `model.merges[3]: token "zz" is not in model.vocab`},
		{"merge result", "tiny-gpt2", func(m obj) { model(m)["merges"].([]any)[4] = "x y" }, `model.merges[4]: merged token "xy" is not in model.vocab`},
		{"mixed merge forms", "tiny-qwen2", func(m obj) { model(m)["merges"].([]any)[2] = "a b" }, "model.merges[2]: want a pair [a, b] like the first merge, got a string"},
		{"merge pair size", "tiny-qwen2", func(m obj) { model(m)["merges"].([]any)[2] = []any{"a"} }, "model.merges[2]: want a pair [a, b], got 1 elements"},
		{"merge string form mixed", "tiny-gpt2", func(m obj) { model(m)["merges"].([]any)[5] = []any{"a", "b"} }, "model.merges[5]: want a string, got an array (like the first merge)"},
		{"added not array", "tiny-gpt2", func(m obj) { m["added_tokens"] = obj{} }, "added_tokens: want an array, got an object"},
		{"added entry", "tiny-gpt2", func(m obj) { m["added_tokens"] = []any{7} }, "added_tokens[0]: want an object, got a number"},
		{"added content", "tiny-gpt2", func(m obj) { delete(added(m)[0].(obj), "content") }, "added_tokens[0].content: missing"},
		{"added id", "tiny-gpt2", func(m obj) { delete(added(m)[0].(obj), "id") }, "added_tokens[0].id: missing"},
		{"added flag", "tiny-gpt2", func(m obj) { added(m)[0].(obj)["lstrip"] = "yes" }, "added_tokens[0].lstrip: want a boolean, got a string"},
		{"added id is a model token", "tiny-gpt2", func(m obj) { added(m)[0].(obj)["id"] = 5 }, `added_tokens[0].id: id 5 of "<|endoftext|>" is model.vocab's "ą"`},
		{"added id reused", "tiny-qwen2", func(m obj) { added(m)[1].(obj)["id"] = added(m)[0].(obj)["id"] }, `added_tokens[1].id: id 521 of "<|im_start|>" is already the id of "<|endoftext|>"`},
		{"normalizer type", "tiny-qwen2", func(m obj) { m["normalizer"] = obj{"type": "NFKC"} }, `normalizer.type: unsupported normalizer "NFKC"`},
		{"normalizer in sequence", "tiny-llama2", func(m obj) {
			m["normalizer"].(obj)["normalizers"].([]any)[1] = obj{"type": "Lowercase"}
		}, `normalizer.normalizers[1].type: unsupported normalizer "Lowercase"`},
		{"replace regex", "tiny-llama2", func(m obj) {
			m["normalizer"].(obj)["normalizers"].([]any)[1].(obj)["pattern"] = obj{"Regex": " +"}
		}, `normalizer.normalizers[1].pattern: Replace with a regex (" +") is not supported`},
		{"replace empty", "tiny-llama2", func(m obj) {
			m["normalizer"].(obj)["normalizers"].([]any)[1].(obj)["pattern"] = obj{"String": ""}
		}, `normalizer.normalizers[1].pattern.String: empty pattern`},
		{"no type", "tiny-qwen2", func(m obj) { m["normalizer"] = obj{} }, "normalizer.type: missing"},
		{"unknown regex", "tiny-llama3", func(m obj) {
			m["pre_tokenizer"].(obj)["pretokenizers"].([]any)[0].(obj)["pattern"] = obj{"Regex": `\w+`}
		}, `pre_tokenizer.pretokenizers[0].pattern: unknown Split regex "\\w+": only the GPT-2, LLaMA-3 and Qwen2 patterns are supported`},
		{"split behavior", "tiny-llama3", func(m obj) {
			m["pre_tokenizer"].(obj)["pretokenizers"].([]any)[0].(obj)["behavior"] = "Merged"
		}, `pre_tokenizer.pretokenizers[0].behavior: unknown split behavior "Merged"`},
		{"pre-tokenizer type", "tiny-gpt2", func(m obj) { m["pre_tokenizer"] = obj{"type": "Whitespace"} }, `pre_tokenizer.type: unsupported pre-tokenizer "Whitespace"`},
		{"metaspace replacement", "tiny-mistral", func(m obj) { m["pre_tokenizer"].(obj)["replacement"] = "__" }, `pre_tokenizer.replacement: want one character, got "__"`},
		{"metaspace scheme", "tiny-mistral", func(m obj) { m["pre_tokenizer"].(obj)["prepend_scheme"] = "sometimes" }, `pre_tokenizer.prepend_scheme: unknown prepend scheme "sometimes"`},
		{"metaspace add_prefix_space", "tiny-mistral", func(m obj) { m["pre_tokenizer"].(obj)["add_prefix_space"] = false }, "pre_tokenizer.add_prefix_space: false does not match prepend_scheme"},
		{"post-processor type", "tiny-gpt2", func(m obj) { m["post_processor"] = obj{"type": "Fancy"} }, `post_processor.type: unsupported post-processor "Fancy"`},
		{"template token", "tiny-llama2", func(m obj) { m["post_processor"].(obj)["special_tokens"] = obj{} }, `post_processor.single[0]: special token "<s>" is not in post_processor.special_tokens`},
		{"template $B", "tiny-llama2", func(m obj) {
			m["post_processor"].(obj)["single"].([]any)[1].(obj)["Sequence"].(obj)["id"] = "B"
		}, `post_processor.single[1].Sequence.id: sequence "B" in the single-sequence template (want "A")`},
		{"template ids", "tiny-llama2", func(m obj) {
			m["post_processor"].(obj)["special_tokens"].(obj)["<s>"].(obj)["ids"] = []any{1, 2}
		}, `post_processor.special_tokens["<s>"]: ids and tokens must be of the same length`},
		{"template piece", "tiny-llama2", func(m obj) { m["post_processor"].(obj)["single"].([]any)[0] = obj{"X": 1} }, `post_processor.single[0]: want {"SpecialToken": …} or {"Sequence": …}`},
		{"decoder type", "tiny-gpt2", func(m obj) { m["decoder"] = obj{"type": "WordPiece"} }, `decoder.type: unsupported decoder "WordPiece"`},
		{"strip content", "tiny-llama2", func(m obj) { m["decoder"].(obj)["decoders"].([]any)[3].(obj)["content"] = "" }, `decoder.decoders[3].content: want one character, got ""`},
		{"strip start", "tiny-llama2", func(m obj) { m["decoder"].(obj)["decoders"].([]any)[3].(obj)["start"] = -1 }, `decoder.decoders[3].start: want a non-negative 32-bit integer, got -1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := tinyJSON(t, c.family)
			c.edit(m)
			data, err := json.Marshal(m)
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "tokenizer.json")
			require.NoError(t, os.WriteFile(path, data, 0o644))
			_, err = Load(path)
			require.Error(t, err)
			require.Equal(t, path+": "+c.want, err.Error())
		})
	}
}

func TestLoadBadFiles(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ data, want string }{
		{``, "not a tokenizer.json: want a JSON object, got nothing"},
		{`[1]`, "not a tokenizer.json: want a JSON object, got an array"},
		{`{"model": `, "not a tokenizer.json: invalid JSON at byte 10: unexpected end of JSON input"},
		{`{"model": {}} x`, "not a tokenizer.json: invalid JSON at byte 15: invalid character 'x' after top-level value"},
	} {
		path := filepath.Join(dir, "tokenizer.json")
		require.NoError(t, os.WriteFile(path, []byte(c.data), 0o644))
		_, err := Load(path)
		require.EqualError(t, err, path+": "+c.want, "%q", c.data)
	}
	_, err := Load(filepath.Join(dir, "absent.json"))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = LoadDir(filepath.Join(dir, "nope"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  string
		want string
	}{
		{`[]`, "want a JSON object, got an array"},
		{`{"bos_token": 5}`, `bos_token: want a string or an object with "content", got a number`},
		{`{"eos_token": {"x": 1}}`, `eos_token.content: missing`},
		{`{"chat_template": 3}`, `chat_template: want a string or a list of {"name", "template"}, got a number`},
		{`{"chat_template": [{"name": "default"}]}`, `chat_template[0].template: missing`},
		{`{"add_bos_token": "yes"}`, `add_bos_token: want a boolean, got a string`},
		{`{"bos_token": "<nope>", "add_bos_token": false, "add_eos_token": true, "eos_token": null}`, `add_eos_token: true, but eos_token "" is not a token`},
		{`{"bos_token": "<nope>", "add_bos_token": true}`, `add_bos_token: true, but bos_token "<nope>" is not a token`},
	} {
		dir := copyTiny(t, "tiny-llama2")
		path := filepath.Join(dir, "tokenizer_config.json")
		require.NoError(t, os.WriteFile(path, []byte(c.cfg), 0o644))
		_, err := LoadDir(dir)
		require.EqualError(t, err, path+": "+c.want, c.cfg)
	}
}
