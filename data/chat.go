package data

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ardanlabs/jinja"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ErrNoChatTemplate is returned for a chat dataset whose tokenizer has no
// chat template.
var ErrNoChatTemplate = errors.New("the tokenizer has no chat template (tokenizer_config.json has no chat_template)")

// ErrTemplateRaised wraps the message of a chat template's
// raise_exception(...) call, which templates use to refuse conversations
// they cannot format (e.g. roles that do not alternate).
var ErrTemplateRaised = errors.New("chat template raised an exception")

// ChatTemplate is a compiled HuggingFace chat template: the Jinja source
// of tokenizer_config.json's chat_template, rendered as transformers'
// apply_chat_template does — with trim_blocks and lstrip_blocks, and with
// the variables messages, add_generation_prompt, bos_token, eos_token,
// pad_token, unk_token and the function raise_exception. The engine also
// provides Jinja's usual filters, tests and globals (namespace, range,
// tojson, trim, loop.first/last/index0, break/continue, ...). A compiled
// template is safe for concurrent use.
type ChatTemplate struct {
	tmpl     *jinja.Template
	specials map[string]string
}

// NewChatTemplate compiles a chat template. specials maps role names to
// the tokenizer's special tokens as strings ("bos", "eos", "pad", "unk";
// a missing or empty one renders as ""); they are visible to the template
// as bos_token, eos_token, pad_token and unk_token.
func NewChatTemplate(source string, specials map[string]string) (*ChatTemplate, error) {
	if strings.TrimSpace(source) == "" {
		return nil, ErrNoChatTemplate
	}
	t, err := jinja.Compile(source)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	sp := make(map[string]string, len(specials))
	for k, v := range specials {
		sp[k] = v
	}
	return &ChatTemplate{tmpl: t, specials: sp}, nil
}

// ChatTemplateOf compiles tok's chat template with tok's special tokens.
// It returns ErrNoChatTemplate when the tokenizer has none.
func ChatTemplateOf(tok Tokenizer) (*ChatTemplate, error) {
	sp := map[string]string{}
	for _, role := range []string{"bos", "eos", "pad", "unk"} {
		sp[role] = tok.SpecialToken(role)
	}
	return NewChatTemplate(tok.ChatTemplate(), sp)
}

// Render formats msgs as text. With addGenerationPrompt the text ends
// with what the template emits to start an assistant reply. A template
// that fails — an undefined operation, or a raise_exception call, which
// is reported as ErrTemplateRaised — returns an error and no text.
func (c *ChatTemplate) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	list := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		d.AsDict().Set("role", jinja.NewString(m.Role))
		d.AsDict().Set("content", jinja.NewString(m.Content))
		list[i] = d
	}
	vars := map[string]jinja.Value{
		"messages":              jinja.NewList(list),
		"add_generation_prompt": jinja.NewBool(addGenerationPrompt),
		"raise_exception":       jinja.NewCallable("raise_exception", raiseException),
	}
	for _, role := range []string{"bos", "eos", "pad", "unk"} {
		vars[role+"_token"] = jinja.NewString(c.specials[role])
	}
	out, err := c.tmpl.RenderValues(vars)
	if err != nil {
		if errors.Is(err, ErrTemplateRaised) {
			return "", err
		}
		return "", fmt.Errorf("chat template: %w", err)
	}
	return out, nil
}

func raiseException(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	msg := "(no message)"
	if len(args) > 0 {
		if args[0].IsString() {
			msg = args[0].AsString()
		} else {
			msg = args[0].String()
		}
	}
	return jinja.Undefined(), fmt.Errorf("%w: %s", ErrTemplateRaised, msg)
}
