package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/tokenizer"
)

func runGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("generate", "--model DIR [--adapter DIR] [--chat] [--prompt TEXT] [flags]",
		`Generate continues a prompt with the model (and, with --adapter, a PEFT
adapter applied), printing tokens as they come. The prompt is --prompt or,
without it, standard input. With --chat the prompt is the user's turn of a
conversation rendered with the model's chat template. Generation stops at
the end-of-sequence token or after --max-new-tokens. Temperature 0 is
greedy decoding.`, stderr)
	modelDir := fs.String("model", "", "HF model `directory` (with tokenizer.json)")
	adapterDir := fs.String("adapter", "", "PEFT adapter `directory` to apply")
	prompt := fs.String("prompt", "", "prompt `text` (default: read standard input)")
	chat := fs.Bool("chat", false, "render the prompt as a user turn with the chat template")
	system := fs.String("system", "", "system message for --chat")
	maxNew := fs.Int("max-new-tokens", 128, "most tokens to generate")
	temp := fs.Float64("temperature", 0, "sampling temperature (0: greedy)")
	topK := fs.Int("top-k", 0, "sample among the k most likely tokens (0: all)")
	topP := fs.Float64("top-p", 1, "sample from the smallest set with this total probability (1: all)")
	dt := dtypeFlag(fs)
	seed := fs.Uint64("seed", 42, "sampling seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "model"); err != nil {
		return err
	}
	text := *prompt
	if text == "" {
		b, err := io.ReadAll(bufio.NewReader(stdin))
		if err != nil {
			return err
		}
		text = strings.TrimRight(string(b), "\n")
	}
	if text == "" {
		return fmt.Errorf("empty prompt: give --prompt or text on standard input")
	}
	m, err := nn.LoadAs(*modelDir, *dt)
	if err != nil {
		return err
	}
	defer m.Release()
	tok, err := tokenizer.LoadDir(*modelDir)
	if err != nil {
		return err
	}
	if *adapterDir != "" {
		if _, err := paca.LoadAdapter(*adapterDir, m, false); err != nil {
			return err
		}
	}
	var ids []int32
	if *chat {
		tmpl, err := data.ChatTemplateOf(tok)
		if err != nil {
			return err
		}
		var msgs []data.Message
		if *system != "" {
			msgs = append(msgs, data.Message{Role: "system", Content: *system})
		}
		rendered, err := tmpl.Render(append(msgs, data.Message{Role: "user", Content: text}), true)
		if err != nil {
			return err
		}
		ids = tok.Encode(rendered, false)
	} else {
		ids = tok.Encode(text, true)
	}
	stop := stopIDs(m.Config, tok)
	s := nn.NewSampler(*temp, *topK, *topP, *seed)
	var out []int32
	printed := ""
	_, err = m.Generate(ids, *maxNew, s, stop, func(id int32) bool {
		out = append(out, id)
		// Decode everything so far and print what is new: a character may
		// span several tokens.
		text := tok.Decode(out, true)
		if strings.HasPrefix(text, printed) && !strings.HasSuffix(text, "\uFFFD") {
			fmt.Fprint(stdout, text[len(printed):])
			printed = text
		}
		return true
	})
	if err != nil {
		return err
	}
	if final := tok.Decode(out, true); strings.HasPrefix(final, printed) {
		fmt.Fprint(stdout, final[len(printed):])
	}
	fmt.Fprintln(stdout)
	return nil
}

// stopIDs are the config's end-of-sequence ids and the tokenizer's.
func stopIDs(cfg *nn.Config, tok *tokenizer.Tokenizer) []int32 {
	var ids []int32
	for _, id := range cfg.EOSTokenIDs {
		ids = append(ids, int32(id))
	}
	if eos := tok.SpecialToken("eos"); eos != "" {
		if id, ok := tok.TokenID(eos); ok {
			ids = append(ids, id)
		}
	}
	return ids
}
