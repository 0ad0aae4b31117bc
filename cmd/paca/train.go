package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/tensor"
)

func runTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("train", "--model DIR --data FILE.jsonl --out DIR [flags]",
		`Train fine-tunes a model on pre-tokenized JSONL records (as paca eval reads
them), in file order, and writes the result to --out: a PEFT adapter
(adapter_config.json + adapter_model.safetensors, float32) for the adapter
methods, or a full HF checkpoint for --method full.`, stderr)
	modelDir := fs.String("model", "", "HF model `directory`")
	dataPath := fs.String("data", "", "pre-tokenized JSONL `file`")
	out := fs.String("out", "", "output `directory`")
	method := fs.String("method", paca.MethodPaCA, "fine-tuning `method`: "+strings.Join(paca.Methods, ", "))
	rank := fs.Int("rank", 8, "r: adapted columns (PaCA) or adapter rank (LoRA)")
	alpha := fs.Float64("alpha", 16, "scaling numerator: s = alpha/r")
	targets := fs.String("targets", "all-linear", "comma-separated projections to adapt, or all-linear")
	layers := fs.String("layers", "", "comma-separated decoder layer indices to adapt (default all)")
	selection := fs.String("selection", paca.SelectRandom, "PaCA column `strategy`: random, weight-norm or gradient")
	calib := fs.Int("calibration-batches", 4, "batches whose gradient ranks columns for --selection gradient")
	dropout := fs.Float64("dropout", 0, "LoRA/DoRA dropout")
	rslora := fs.Bool("rslora", false, "LoRA scale alpha/√r")
	doubleQuant := fs.Bool("double-quant", false, "QPaCA/QLoRA: quantize the NF4 scales too")
	optimizer := fs.String("optimizer", "adamw", "`optimizer`: sgd or adamw")
	lr := fs.Float64("lr", 2e-4, "peak learning rate")
	wd := fs.Float64("weight-decay", 0, "weight decay (decoupled for AdamW)")
	sched := fs.String("lr-scheduler", "linear", "learning-rate `schedule`: constant, linear or cosine")
	warmup := fs.Int("warmup-steps", 0, "linear warm-up steps")
	clip := fs.Float64("max-grad-norm", 1, "clip the global gradient norm (0 disables)")
	batch := fs.Int("batch-size", 4, "records per step")
	seqLen := fs.Int("seq-len", 512, "truncate records to this many tokens")
	steps := fs.Int("steps", 100, "optimizer steps")
	seed := fs.Uint64("seed", 42, "random seed (PaCA columns, LoRA init)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "model", "data", "out"); err != nil {
		return err
	}
	tc := paca.TrainConfig{Optimizer: *optimizer, LR: *lr, WeightDecay: *wd, Schedule: *sched,
		Warmup: *warmup, MaxGradNorm: *clip, BatchSize: *batch, SeqLen: *seqLen, Steps: *steps}
	if err := tc.Check(); err != nil {
		return err
	}
	tg, err := paca.ParseTargets(*targets)
	if err != nil {
		return err
	}
	ls, err := parseInts(*layers)
	if err != nil {
		return fmt.Errorf("--layers: %w", err)
	}

	m, recs, err := loadModelAndData(*modelDir, *dataPath)
	if err != nil {
		return err
	}
	defer m.Release()
	if *seqLen > m.Config.MaxPositions {
		return fmt.Errorf("--seq-len %d exceeds the model's max_position_embeddings %d", *seqLen, m.Config.MaxPositions)
	}
	batches := paca.Batches(recs, *batch, *seqLen, *steps)

	cfg := paca.Config{Method: *method, Rank: *rank, Alpha: *alpha, Targets: tg, Layers: ls, Seed: *seed,
		Dropout: *dropout, RSLoRA: *rslora, DoubleQuant: *doubleQuant}
	switch *selection {
	case paca.SelectRandom:
	case paca.SelectWeightNorm:
		cfg.Selector = paca.WeightNormSelector{}
	case paca.SelectGradient:
		norms, err := paca.CalibrationNorms(m, tg, ls, batches[:min(*calib, len(batches))])
		if err != nil {
			return err
		}
		cfg.Selector = paca.GradientSelector{Norms: norms}
	default:
		return fmt.Errorf("unknown --selection %q (want random, weight-norm or gradient)", *selection)
	}
	a, err := paca.Apply(m, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, a.Summary())

	start := time.Now()
	tokens := 0
	err = paca.Train(a, batches, tc, func(s paca.StepLog) {
		tokens += s.Tokens
		el := time.Since(start).Seconds()
		fmt.Fprintf(stdout, "step %d/%d  loss %.4f  lr %.3g  grad-norm %.3g  tokens/s %.0f\n",
			s.Step, tc.Steps, s.Loss, s.LR, s.GradNorm, float64(tokens)/el)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\n%s", tensor.MemStats())

	if *method == paca.MethodFull {
		a.Unapply()
		err = m.Save(*out)
	} else {
		abs, _ := filepath.Abs(*modelDir)
		err = paca.Save(*out, a, abs)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return nil
}

// parseInts reads a comma-separated list of integers; "" is nil.
func parseInts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
