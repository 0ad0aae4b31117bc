package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/gopaca/paca/tokenizer"
)

func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tokenize", "--tokenizer FILE | --model DIR [--special]",
		`Tokenize reads text on standard input and prints its token ids as one JSON
array, exactly as the HuggingFace tokenizer encodes it. --model reads
DIR/tokenizer.json and DIR/tokenizer_config.json (whose add_bos_token and
add_eos_token count); --tokenizer reads a tokenizer.json alone. Special tokens
such as BOS are added only with --special; special tokens written in the text
are always recognised.`, stderr)
	tokFile := fs.String("tokenizer", "", "HF tokenizer.json `file`")
	modelDir := fs.String("model", "", "HF model `directory` with tokenizer.json (and tokenizer_config.json)")
	special := fs.Bool("special", false, "add the special tokens the tokenizer's post-processor adds (BOS, …)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*tokFile == "") == (*modelDir == "") {
		fmt.Fprintf(stderr, "give exactly one of -tokenizer and -model\n")
		fs.Usage()
		return errUsage
	}
	var tok *tokenizer.Tokenizer
	var err error
	if *tokFile != "" {
		tok, err = tokenizer.Load(*tokFile)
	} else {
		tok, err = tokenizer.LoadDir(*modelDir)
	}
	if err != nil {
		return err
	}
	text, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("reading standard input: %w", err)
	}
	ids := tok.Encode(string(text), *special)
	if ids == nil {
		ids = []int32{}
	}
	out, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
