package data

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Chat templates as tokenizer_config.json holds them, after JSON decoding
// (so "\n" below is the newline that the JSON escape "\n" decodes to).
const (
	// Qwen2-Instruct: ChatML with a default system prompt.
	qwen2Template = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
		"{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}" +
		"{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

	// SmolLM2-Instruct: the same ChatML layout, its own default system prompt.
	smolLM2Template = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
		"{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}" +
		"{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

	// Meta-Llama-3-8B-Instruct. Note the filter binding tighter than +:
	// only the content is trimmed.
	llama3Template = "{% set loop_messages = messages %}{% for message in loop_messages %}" +
		"{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}" +
		"{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

	// zephyr-7b-beta: one statement a line, which only renders right with
	// transformers' trim_blocks and lstrip_blocks.
	zephyrTemplate = "{% for message in messages %}\n" +
		"{% if message['role'] == 'user' %}\n" +
		"{{ '<|user|>\n' + message['content'] + eos_token }}\n" +
		"{% elif message['role'] == 'system' %}\n" +
		"{{ '<|system|>\n' + message['content'] + eos_token }}\n" +
		"{% elif message['role'] == 'assistant' %}\n" +
		"{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n" +
		"{% endif %}\n" +
		"{% if loop.last and add_generation_prompt %}\n" +
		"{{ '<|assistant|>' }}\n" +
		"{% endif %}\n" +
		"{% endfor %}"

	// A Mistral-Instruct-style template that refuses what it cannot format.
	mistralTemplate = "{{ bos_token }}{% for message in messages %}" +
		"{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
		"{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
		"{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
		"{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}" +
		"{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

var testConversation = []Message{
	{"system", "You are terse."},
	{"user", "What is 2+2?"},
	{"assistant", "4"},
	{"user", "And 3+3?"},
	{"assistant", " 6 "},
}

var testSpecials = map[string]string{"bos": "<s>", "eos": "</s>", "unk": "<unk>"}

func TestChatTemplates(t *testing.T) {
	cases := []struct {
		name, src  string
		msgs       []Message
		want, next string // next: what add_generation_prompt appends
	}{
		{"qwen2", qwen2Template, testConversation,
			"<|im_start|>system\nYou are terse.<|im_end|>\n" +
				"<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
				"<|im_start|>assistant\n4<|im_end|>\n" +
				"<|im_start|>user\nAnd 3+3?<|im_end|>\n" +
				"<|im_start|>assistant\n 6 <|im_end|>\n",
			"<|im_start|>assistant\n"},
		{"qwen2 default system", qwen2Template, testConversation[1:3],
			"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
				"<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
				"<|im_start|>assistant\n4<|im_end|>\n",
			"<|im_start|>assistant\n"},
		{"smollm2", smolLM2Template, testConversation,
			"<|im_start|>system\nYou are terse.<|im_end|>\n" +
				"<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
				"<|im_start|>assistant\n4<|im_end|>\n" +
				"<|im_start|>user\nAnd 3+3?<|im_end|>\n" +
				"<|im_start|>assistant\n 6 <|im_end|>\n",
			"<|im_start|>assistant\n"},
		{"smollm2 default system", smolLM2Template, testConversation[1:2],
			"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" +
				"<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
			"<|im_start|>assistant\n"},
		{"llama3", llama3Template, testConversation,
			"<s><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n6<|eot_id|>",
			"<|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"zephyr", zephyrTemplate, testConversation,
			"<|system|>\nYou are terse.</s>\n" +
				"<|user|>\nWhat is 2+2?</s>\n" +
				"<|assistant|>\n4</s>\n" +
				"<|user|>\nAnd 3+3?</s>\n" +
				"<|assistant|>\n 6 </s>\n",
			"<|assistant|>\n"},
		{"mistral", mistralTemplate, testConversation[1:],
			"<s>[INST] What is 2+2? [/INST]4</s>[INST] And 3+3? [/INST] 6 </s>",
			""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct, err := NewChatTemplate(c.src, testSpecials)
			require.NoError(t, err)
			got, err := ct.Render(c.msgs, false)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			got, err = ct.Render(c.msgs, true)
			require.NoError(t, err)
			assert.Equal(t, c.want+c.next, got)
		})
	}
}

func TestChatTemplateErrors(t *testing.T) {
	_, err := NewChatTemplate("", nil)
	assert.ErrorIs(t, err, ErrNoChatTemplate)
	_, err = NewChatTemplate(" \n", nil)
	assert.ErrorIs(t, err, ErrNoChatTemplate)

	_, err = NewChatTemplate("{% for m in messages %}{{ m.content }", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chat template: ")
	assert.Contains(t, err.Error(), "unclosed")

	_, err = NewChatTemplate("{% if add_generation_prompt %}x", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chat template: ")

	ct, err := NewChatTemplate(mistralTemplate, testSpecials)
	require.NoError(t, err)
	_, err = ct.Render(testConversation, false) // system role
	assert.ErrorIs(t, err, ErrTemplateRaised)
	assert.EqualError(t, err, "chat template raised an exception: Conversation roles must alternate user/assistant/user/assistant/...")
	_, err = ct.Render([]Message{{"user", "a"}, {"user", "b"}}, false)
	assert.ErrorIs(t, err, ErrTemplateRaised)

	// Errors at render time other than raise_exception.
	for _, src := range []string{"{{ messages | nofilter }}", "{{ undefined_function() }}"} {
		ct, err := NewChatTemplate(src, nil)
		require.NoError(t, err)
		_, err = ct.Render([]Message{{"user", "a"}}, false)
		require.Error(t, err, src)
		assert.NotErrorIs(t, err, ErrTemplateRaised)
		assert.Contains(t, err.Error(), "chat template: ")
	}

	ct, err = NewChatTemplate("{{ raise_exception() }}", nil)
	require.NoError(t, err)
	_, err = ct.Render(nil, false)
	assert.EqualError(t, err, "chat template raised an exception: (no message)")
}

func TestChatTemplateOf(t *testing.T) {
	tok := newFakeTok()
	_, err := ChatTemplateOf(tok)
	assert.True(t, errors.Is(err, ErrNoChatTemplate))

	tok.template = llama3Template
	ct, err := ChatTemplateOf(tok)
	require.NoError(t, err)
	got, err := ct.Render([]Message{{"user", "hi"}}, false)
	require.NoError(t, err)
	assert.Equal(t, "<s><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", got)

	// Special tokens the tokenizer lacks render as "".
	tok.template = "[{{ pad_token }}|{{ unk_token }}|{{ eos_token }}]"
	ct, err = ChatTemplateOf(tok)
	require.NoError(t, err)
	got, err = ct.Render(nil, false)
	require.NoError(t, err)
	assert.Equal(t, "[<pad>||</s>]", got)
}
