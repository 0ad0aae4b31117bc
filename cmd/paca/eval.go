package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/tensor"
	"github.com/gopaca/paca/tokenizer"
)

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", "--model DIR --data FILE.jsonl [--adapter DIR] [--batch-size N] [--shots K] [--json]",
		`Eval measures a model (with --adapter, a fine-tuned one) on a JSONL file.

For datasets in any format paca train reads ({"text"}, prompt/completion,
Alpaca, chat, or pre-tokenized {"input_ids","labels"}), it prints the mean
causal-LM loss over all counted tokens, as HF transformers computes it, with
the token count and perplexity.

For multiple-choice records {"question","choices":[…],"answer"} (MMLU
style; answer is an index or a letter), it prints the accuracy: each
question is asked after --shots worked examples (the file's first
questions), and the choice whose letter is the most likely continuation of
"Answer:" is the model's answer.`, stderr)
	modelDir := fs.String("model", "", "HF model `directory` (config.json + model.safetensors)")
	dataPath := fs.String("data", "", "JSONL `file`")
	adapterDir := fs.String("adapter", "", "PEFT adapter `directory` to apply")
	batch := fs.Int("batch-size", 8, "records per forward pass")
	shots := fs.Int("shots", 5, "worked examples before each multiple-choice question")
	asJSON := fs.Bool("json", false, `print one JSON object on stdout: {"loss": …, "tokens": …} or {"accuracy": …, "questions": …}`)
	dt := dtypeFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "model", "data"); err != nil {
		return err
	}
	if *batch < 1 {
		return fmt.Errorf("--batch-size must be at least 1, got %d", *batch)
	}
	if *shots < 0 {
		return fmt.Errorf("--shots must not be negative, got %d", *shots)
	}
	mc, err := data.IsQuestions(*dataPath)
	if err != nil {
		return err
	}
	if mc {
		return evalChoices(*modelDir, *dt, *dataPath, *adapterDir, *shots, *asJSON, stdout)
	}

	m, err := nn.LoadAs(*modelDir, *dt)
	if err != nil {
		return err
	}
	defer m.Release()
	recs, err := loadDataset(*dataPath, *modelDir, m, data.Options{SeqLen: m.Config.MaxPositions}, stderr)
	if err != nil {
		return err
	}
	if *adapterDir != "" {
		if _, err := paca.LoadAdapter(*adapterDir, m, false); err != nil {
			return err
		}
	}
	loss, tokens, err := paca.EvalLoss(m, recs, *batch, m.Config.MaxPositions)
	if err != nil {
		return fmt.Errorf("%s: %w", *dataPath, err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Loss   float64 `json:"loss"`
			Tokens int     `json:"tokens"`
		}{loss, tokens})
	}
	fmt.Fprintf(stdout, "loss %.6f  perplexity %.4f  tokens %d  records %d\n", loss, math.Exp(loss), tokens, len(recs))
	fmt.Fprintf(stderr, "\n%s", tensor.MemStats())
	return nil
}

// evalChoices prints the multiple-choice accuracy of a model.
func evalChoices(modelDir string, dt tensor.DType, path, adapterDir string, shots int, asJSON bool, stdout io.Writer) error {
	qs, err := data.ReadQuestions(path)
	if err != nil {
		return err
	}
	m, err := nn.LoadAs(modelDir, dt)
	if err != nil {
		return err
	}
	defer m.Release()
	tok, err := tokenizer.LoadDir(modelDir)
	if err != nil {
		return err
	}
	if adapterDir != "" {
		if _, err := paca.LoadAdapter(adapterDir, m, false); err != nil {
			return err
		}
	}
	acc, n, err := multipleChoice(m, tok, qs, shots)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Accuracy  float64 `json:"accuracy"`
			Questions int     `json:"questions"`
			Shots     int     `json:"shots"`
		}{acc, n, shots})
	}
	fmt.Fprintf(stdout, "accuracy %.4f  questions %d  shots %d\n", acc, n, shots)
	return nil
}

// dtypeFlag defines --dtype, the storage of the frozen weight matrices.
func dtypeFlag(fs *flag.FlagSet) *tensor.DType {
	dt := new(tensor.DType)
	fs.TextVar(dt, "dtype", tensor.Float32, "store the frozen weight matrices as `f32`, bf16 or f16 (half the memory; computation stays float32)")
	return dt
}

// loadModelAndData loads a model and a JSONL dataset in any format
// data.Load reads (text, prompt/completion, Alpaca, chat, pre-tokenized),
// tokenized with the model's own tokenizer.json when the format needs one.
// Every token must lie in the model's vocabulary.
func loadModelAndData(modelDir string, dt tensor.DType, dataPath string, opt data.Options, stderr io.Writer) (*nn.Model, []data.Record, error) {
	m, err := nn.LoadAs(modelDir, dt)
	if err != nil {
		return nil, nil, err
	}
	recs, err := loadDataset(dataPath, modelDir, m, opt, stderr)
	if err != nil {
		m.Release()
		return nil, nil, err
	}
	return m, recs, nil
}

// loadDataset reads one dataset file for model m loaded from modelDir.
func loadDataset(path, modelDir string, m *nn.Model, opt data.Options, stderr io.Writer) ([]data.Record, error) {
	var tok data.Tokenizer
	if _, err := os.Stat(filepath.Join(modelDir, "tokenizer.json")); err == nil {
		t, err := tokenizer.LoadDir(modelDir)
		if err != nil {
			return nil, err
		}
		tok = t
	}
	ds, err := data.Load(path, tok, opt)
	if err != nil {
		return nil, err
	}
	if err := data.CheckVocab(ds.Records, m.Config.VocabSize, path); err != nil {
		return nil, err
	}
	if ds.Skipped > 0 {
		fmt.Fprintf(stderr, "warning: %s: skipped %d malformed lines, the first: %v\n", path, ds.Skipped, ds.SkipErrors[0])
	}
	if ds.Truncated > 0 {
		fmt.Fprintf(stderr, "%s: %d records truncated to %d tokens\n", path, ds.Truncated, opt.SeqLen)
	}
	if ds.Masked > 0 {
		fmt.Fprintf(stderr, "warning: %s: %d records have no token to learn from (all labels -100)\n", path, ds.Masked)
	}
	return ds.Records, nil
}
