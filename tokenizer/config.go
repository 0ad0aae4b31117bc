package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadDir reads dir/tokenizer.json and, if present, dir/tokenizer_config.json
// (special tokens, chat template, add_bos_token/add_eos_token) and
// dir/chat_template.jinja (the chat template, where the config has none).
func LoadDir(dir string) (*Tokenizer, error) {
	t, err := Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := t.applyConfig(data); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if t.chatTemplate == "" {
		data, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			t.chatTemplate = string(data)
		}
	}
	return t, nil
}

// applyConfig applies a tokenizer_config.json to t.
func (t *Tokenizer) applyConfig(data []byte) error {
	if kind(data) != "an object" {
		return fmt.Errorf("want a JSON object, got %s", kind(data))
	}
	o, err := asObj(data, "")
	if err != nil {
		return err
	}
	for _, role := range []string{"bos", "eos", "pad", "unk"} {
		key := role + "_token"
		raw, ok := o.m[key]
		if !ok {
			continue
		}
		tok, err := configToken(raw, key)
		if err != nil {
			return err
		}
		t.special[role] = tok
	}
	if o.has("chat_template") {
		if t.chatTemplate, err = chatTemplate(o.m["chat_template"]); err != nil {
			return err
		}
	}
	var flags [2]*bool
	for i, key := range []string{"add_bos_token", "add_eos_token"} {
		if o.has(key) {
			b, err := o.boolean(key, false)
			if err != nil {
				return err
			}
			flags[i] = &b
		}
	}
	return t.applyAddFlags(flags[0], flags[1])
}

// configToken reads a special token: a string, {"content": …} or null.
func configToken(raw json.RawMessage, place string) (string, error) {
	switch kind(raw) {
	case "null":
		return "", nil
	case "a string":
		return asString(raw, place)
	case "an object":
		o, err := asObj(raw, place)
		if err != nil {
			return "", err
		}
		return o.str("content")
	}
	return "", errAt(place, "want a string or an object with \"content\", got %s", kind(raw))
}

// chatTemplate reads chat_template: a string, or a list of {"name",
// "template"} objects of which the one named "default" is used.
func chatTemplate(raw json.RawMessage) (string, error) {
	const place = "chat_template"
	if kind(raw) == "a string" {
		return asString(raw, place)
	}
	arr, err := asArray(raw, place)
	if err != nil {
		return "", errAt(place, "want a string or a list of {\"name\", \"template\"}, got %s", kind(raw))
	}
	def := ""
	for i, r := range arr {
		o, err := asObj(r, fmt.Sprintf("%s[%d]", place, i))
		if err != nil {
			return "", err
		}
		name, err := o.str("name")
		if err != nil {
			return "", err
		}
		tmpl, err := o.str("template")
		if err != nil {
			return "", err
		}
		if name == "default" {
			def = tmpl
		}
	}
	return def, nil
}

// applyAddFlags honours add_bos_token/add_eos_token as transformers'
// LLaMA tokenizers do: when either is given and differs from what the
// post-processor does, the single-sequence template becomes
// [bos] $A [eos] with each part as the flags say (a flag not given keeps
// the post-processor's behaviour).
func (t *Tokenizer) applyAddFlags(addBOS, addEOS *bool) error {
	if addBOS == nil && addEOS == nil {
		return nil
	}
	var cur []int32
	if t.post != nil {
		cur = t.post.process(nil, true)
	}
	role := func(r string) (int32, bool) {
		tok := t.special[r]
		if tok == "" {
			return 0, false
		}
		return t.TokenID(tok)
	}
	bosID, bosOK := role("bos")
	eosID, eosOK := role("eos")
	hasBOS := bosOK && len(cur) > 0 && cur[0] == bosID
	hasEOS := eosOK && len(cur) > 0 && cur[len(cur)-1] == eosID && (len(cur) > 1 || !hasBOS)
	wantBOS, wantEOS := hasBOS, hasEOS
	if addBOS != nil {
		wantBOS = *addBOS
	}
	if addEOS != nil {
		wantEOS = *addEOS
	}
	if wantBOS == hasBOS && wantEOS == hasEOS {
		return nil
	}
	if wantBOS && !bosOK {
		return errAt("add_bos_token", "true, but bos_token %q is not a token", t.special["bos"])
	}
	if wantEOS && !eosOK {
		return errAt("add_eos_token", "true, but eos_token %q is not a token", t.special["eos"])
	}
	tp := templatePost{parts: [][]int32{nil, nil}}
	if wantBOS {
		tp.parts[0] = []int32{bosID}
	}
	if wantEOS {
		tp.parts[1] = []int32{eosID}
	}
	t.post = tp
	return nil
}
