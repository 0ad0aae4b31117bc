package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", "--model DIR --data FILE.jsonl [--batch-size N] [--json]",
		`Eval reads pre-tokenized JSONL records {"input_ids": [...], "labels": [...]}
(labels default to the input ids; -100 is not scored) and prints the mean
causal-LM loss over all counted tokens, as HF transformers computes it, with
the token count and perplexity.`, stderr)
	modelDir := fs.String("model", "", "HF model `directory` (config.json + model.safetensors)")
	dataPath := fs.String("data", "", "pre-tokenized JSONL `file`")
	batch := fs.Int("batch-size", 8, "records per forward pass")
	asJSON := fs.Bool("json", false, `print one JSON object {"loss": …, "tokens": …} on stdout`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "model", "data"); err != nil {
		return err
	}
	if *batch < 1 {
		return fmt.Errorf("--batch-size must be at least 1, got %d", *batch)
	}

	m, recs, err := loadModelAndData(*modelDir, *dataPath)
	if err != nil {
		return err
	}
	defer m.Release()
	sum, tokens, err := evalLoss(m, recs, *batch)
	if err != nil {
		return fmt.Errorf("%s: %w", *dataPath, err)
	}
	if tokens == 0 {
		return fmt.Errorf("%s: no token is counted (every label is -100 or each record has one token)", *dataPath)
	}
	loss := sum / float64(tokens)
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

// evalLoss returns the summed loss and the number of counted tokens over
// recs, batchSize records at a time in file order. Shorter records are
// padded on the right with label -100: under causal attention the padding
// cannot change the scores of the tokens before it.
func evalLoss(m *nn.Model, recs []data.Record, batchSize int) (sum float64, tokens int, err error) {
	for lo := 0; lo < len(recs); lo += batchSize {
		batch := recs[lo:min(lo+batchSize, len(recs))]
		ids, labels, B, T := data.Pad(batch)
		if T > m.Config.MaxPositions {
			return 0, 0, fmt.Errorf("line %d: %d tokens exceed max_position_embeddings %d", batch[0].Line, T, m.Config.MaxPositions)
		}
		loss, n := m.Loss(nil, ids, labels, B, T)
		if l := float64(loss.Item()); math.IsNaN(l) || math.IsInf(l, 0) {
			loss.Release()
			return 0, 0, fmt.Errorf("loss is %v in the batch starting at line %d", l, batch[0].Line)
		}
		sum += float64(loss.Item()) * float64(n)
		tokens += n
		loss.Release()
	}
	return sum, tokens, nil
}

// loadModelAndData loads a model and pre-tokenized records whose tokens
// all lie in its vocabulary.
func loadModelAndData(modelDir, dataPath string) (*nn.Model, []data.Record, error) {
	m, err := nn.Load(modelDir)
	if err != nil {
		return nil, nil, err
	}
	recs, err := data.ReadTokenized(dataPath)
	if err == nil {
		err = data.CheckVocab(recs, m.Config.VocabSize, dataPath)
	}
	if err != nil {
		m.Release()
		return nil, nil, err
	}
	return m, recs, nil
}
