package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tokenizer"
)

// chatModel writes a small random model that uses the tiny Qwen2-style
// tokenizer (with its ChatML template) and returns its directory.
func chatModel(t *testing.T) string {
	dir := t.TempDir()
	src := filepath.Join("..", "..", "testdata", "tokenizer", "tiny-qwen2")
	b, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644))
	// ChatML, as Qwen2 and SmolLM2 write it.
	conf, err := json.Marshal(map[string]any{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
		"chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), conf, 0o644))
	tok, err := tokenizer.LoadDir(dir)
	require.NoError(t, err)
	eos, ok := tok.TokenID(tok.SpecialToken("eos"))
	require.True(t, ok)
	cfg := &nn.Config{ModelType: "qwen2", VocabSize: tok.VocabSize(), HiddenSize: 32, IntermediateSize: 48,
		NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 8, RMSNormEps: 1e-6, QKVBias: true,
		RoPE: nn.RoPEConfig{Type: "default", Theta: 10000}, MaxPositions: 512, BOSTokenID: -1, EOSTokenIDs: []int{int(eos)}}
	m := nn.NewRandom(cfg, 5)
	for _, p := range m.Params() { // sharper than the 0.02 init, so greedy text varies
		for i := range p.T.Data() {
			p.T.Data()[i] *= 20
		}
	}
	require.NoError(t, m.Save(dir))
	m.Release()
	return dir
}

// paca generate prints what nn.Model.Generate produces for the encoded
// prompt, decoded.
func TestGenerate(t *testing.T) {
	dir := chatModel(t)
	m, err := nn.Load(dir)
	require.NoError(t, err)
	defer m.Release()
	tok, err := tokenizer.LoadDir(dir)
	require.NoError(t, err)

	code, out, errOut := runPaca("generate", "--model", dir, "--prompt", "hello world", "--max-new-tokens", "12")
	require.Equal(t, 0, code, errOut)
	ids, err := m.Generate(tok.Encode("hello world", true), 12, nil, nil, nil)
	require.NoError(t, err)
	require.Equal(t, tok.Decode(ids, true)+"\n", out)

	// --chat renders the user turn with the template first.
	code, out, errOut = runPaca("generate", "--model", dir, "--chat", "--system", "be brief", "--prompt", "hi", "--max-new-tokens", "6")
	require.Equal(t, 0, code, errOut)
	tmpl, err := data.ChatTemplateOf(tok)
	require.NoError(t, err)
	rendered, err := tmpl.Render([]data.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}}, true)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(rendered, "<|im_start|>assistant\n"), rendered)
	ids, err = m.Generate(tok.Encode(rendered, false), 6, nil, nil, nil)
	require.NoError(t, err)
	require.Equal(t, tok.Decode(ids, true)+"\n", out)

	// Sampling with a seed is repeatable; the prompt may come on stdin.
	stdin = strings.NewReader("hello world\n")
	_, a, _ := runPaca("generate", "--model", dir, "--temperature", "1", "--top-p", "0.9", "--seed", "3", "--max-new-tokens", "8")
	stdin = os.Stdin
	_, b, _ := runPaca("generate", "--model", dir, "--prompt", "hello world", "--temperature", "1", "--top-p", "0.9", "--seed", "3", "--max-new-tokens", "8")
	require.Equal(t, a, b)
}

// Multiple-choice accuracy picks, per question, the answer letter whose
// continuation has the lowest causal-LM loss.
func TestEvalMultipleChoice(t *testing.T) {
	dir := chatModel(t)
	qs := []string{
		`{"question": "Which is a color?", "choices": ["red", "run", "rain"], "answer": 0}`,
		`{"question": "2 + 2 =", "choices": ["3", "4"], "answer": "B"}`,
		`{"question": "Pick the fruit.", "choices": ["stone", "apple", "cloud", "desk"], "answer": 1}`,
		`{"question": "Opposite of up?", "choices": ["down", "left"], "answer": 0}`,
		`{"question": "A dog says", "choices": ["moo", "woof", "meow"], "answer": 1}`,
	}
	path := filepath.Join(t.TempDir(), "mc.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(qs, "\n")+"\n"), 0o644))
	code, out, errOut := runPaca("eval", "--model", dir, "--data", path, "--shots", "2", "--json")
	require.Equal(t, 0, code, errOut)
	var res struct {
		Accuracy  float64 `json:"accuracy"`
		Questions int     `json:"questions"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, 3, res.Questions)

	// The reference: the loss of each letter after the prompt.
	m, err := nn.Load(dir)
	require.NoError(t, err)
	defer m.Release()
	tok, err := tokenizer.LoadDir(dir)
	require.NoError(t, err)
	parsed, err := data.ReadQuestions(path)
	require.NoError(t, err)
	right := 0
	for _, q := range parsed[2:] {
		prompt := tok.Encode(choicePrompt(parsed[:2], q), true)
		best, bestLoss := -1, 0.0
		for i := range q.Choices {
			cont := tok.Encode(" "+string(rune('A'+i)), false)
			ids := append(append([]int32(nil), prompt...), cont...)
			labels := make([]int32, len(ids))
			for j := range labels {
				labels[j] = -100
				if j >= len(prompt) {
					labels[j] = ids[j]
				}
			}
			loss, n := m.Loss(nil, ids, labels, 1, len(ids))
			total := float64(loss.Item()) * float64(n)
			loss.Release()
			if best < 0 || total < bestLoss {
				best, bestLoss = i, total
			}
		}
		if best == q.Answer {
			right++
		}
	}
	require.InDelta(t, float64(right)/3, res.Accuracy, 1e-12)
}

// eval reads text datasets through the model's tokenizer.
func TestEvalText(t *testing.T) {
	dir := chatModel(t)
	path := filepath.Join(t.TempDir(), "text.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(`{"text": "hello world"}`+"\n"+`{"text": "the quick brown fox"}`+"\n"), 0o644))
	code, out, errOut := runPaca("eval", "--model", dir, "--data", path, "--json")
	require.Equal(t, 0, code, errOut)
	var res struct {
		Loss   float64 `json:"loss"`
		Tokens int     `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	tok, err := tokenizer.LoadDir(dir)
	require.NoError(t, err)
	// Each text gets EOS appended; every token but the first is scored.
	want := len(tok.Encode("hello world", true)) + len(tok.Encode("the quick brown fox", true))
	require.Equal(t, want, res.Tokens)
	require.Greater(t, res.Loss, 0.0)
}
