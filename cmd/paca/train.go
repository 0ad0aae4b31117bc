package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/tensor"
)

func runTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("train", "--model DIR --data FILE.jsonl --out DIR [flags]",
		`Train fine-tunes a model on a JSONL dataset, one record a line: {"text"},
{"prompt","completion"}, Alpaca {"instruction","input","output"}, chat
{"messages":[{"role","content"}…]} or pre-tokenized {"input_ids","labels"}.
Text is tokenized with the model's tokenizer.json (chat with its template);
only completions and assistant turns are learned unless --train-on-prompt.
Records are used in file order (or --shuffle) and the result is written to
--out: a PEFT adapter
(adapter_config.json + adapter_model.safetensors, float32) for the adapter
methods, or a full HF checkpoint for --method full. It also writes
train_log.jsonl and loss.png there.

With --save-every N, checkpoint-<step> directories hold everything needed
to continue; --resume DIR continues from one exactly as if the run had not
stopped. Ctrl-C finishes the current step, saves a checkpoint and exits.`, stderr)
	modelDir := fs.String("model", "", "HF model `directory`")
	dataPath := fs.String("data", "", "JSONL dataset `file`")
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
	batch := fs.Int("batch-size", 4, "records per micro-batch")
	accum := fs.Int("grad-accum", 1, "micro-batches per optimizer step")
	seqLen := fs.Int("seq-len", 512, "truncate records to this many tokens")
	steps := fs.Int("steps", 100, "optimizer steps")
	seed := fs.Uint64("seed", 42, "random seed (PaCA columns, LoRA init and dropout)")
	ckpt := fs.Bool("grad-checkpointing", false, "recompute each decoder layer in backward instead of keeping its activations")
	evalData := fs.String("eval-data", "", "JSONL dataset `file` to evaluate on")
	evalSplit := fs.Float64("eval-split", 0, "hold out this `fraction` of --data for evaluation")
	evalEvery := fs.Int("eval-every", 0, "evaluate every N steps (0: only at the end)")
	saveEvery := fs.Int("save-every", 0, "write a checkpoint every N steps (0: none)")
	keep := fs.Int("keep-checkpoints", 2, "how many recent checkpoints to keep")
	resume := fs.String("resume", "", "continue from a checkpoint `directory`")
	shuffle := fs.Bool("shuffle", false, "shuffle the training records (by --seed) instead of using file order")
	onPrompt := fs.Bool("train-on-prompt", false, "learn prompts and user turns too, not only completions and assistant turns")
	pack := fs.Bool("pack", false, "pack records into --seq-len rows")
	skipBad := fs.Bool("skip-bad-lines", false, "skip malformed lines with a counted warning instead of stopping")
	dt := dtypeFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "model", "data", "out"); err != nil {
		return err
	}
	tc := paca.TrainConfig{Optimizer: *optimizer, LR: *lr, WeightDecay: *wd, Schedule: *sched,
		Warmup: *warmup, MaxGradNorm: *clip, BatchSize: *batch, GradAccum: *accum, SeqLen: *seqLen, Steps: *steps}
	if err := tc.Check(); err != nil {
		return err
	}
	if *evalSplit < 0 || *evalSplit >= 1 {
		return fmt.Errorf("--eval-split must be in [0, 1), got %g", *evalSplit)
	}
	if *evalSplit > 0 && *evalData != "" {
		return fmt.Errorf("use --eval-data or --eval-split, not both")
	}
	if *method == paca.MethodFull && *dt != tensor.Float32 {
		return fmt.Errorf("--dtype %s stores frozen weights, and full fine-tuning has none: it trains every weight in float32 (use --dtype f32)", *dt)
	}
	tg, err := paca.ParseTargets(*targets)
	if err != nil {
		return err
	}
	ls, err := parseInts(*layers)
	if err != nil {
		return fmt.Errorf("--layers: %w", err)
	}

	dopt := data.Options{SeqLen: *seqLen, TrainOnPrompt: *onPrompt, Pack: *pack, SkipBadLines: *skipBad}
	m, recs, err := loadModelAndData(*modelDir, *dt, *dataPath, dopt, stderr)
	if err != nil {
		return err
	}
	defer m.Release()
	m.GradCheckpointing = *ckpt
	if *seqLen > m.Config.MaxPositions {
		return fmt.Errorf("--seq-len %d exceeds the model's max_position_embeddings %d", *seqLen, m.Config.MaxPositions)
	}
	var evalRecs []data.Record
	switch {
	case *evalData != "":
		if evalRecs, err = loadDataset(*evalData, *modelDir, m, dopt, stderr); err != nil {
			return err
		}
	case *evalSplit > 0:
		if len(recs) < 2 {
			return fmt.Errorf("--eval-split needs at least 2 records, %s has %d", *dataPath, len(recs))
		}
		recs, evalRecs = data.Split(recs, *evalSplit, *seed)
	}
	if *shuffle {
		data.Shuffle(recs, *seed)
	}

	cfg := paca.Config{Method: *method, Rank: *rank, Alpha: *alpha, Targets: tg, Layers: ls, Seed: *seed,
		Dropout: *dropout, RSLoRA: *rslora, DoubleQuant: *doubleQuant}
	switch *selection {
	case paca.SelectRandom:
	case paca.SelectWeightNorm:
		cfg.Selector = paca.WeightNormSelector{}
	case paca.SelectGradient:
		var cb []paca.Batch
		for i := 0; i < max(*calib, 1); i++ {
			cb = append(cb, paca.BatchAt(recs, *batch, *seqLen, i))
		}
		norms, err := paca.CalibrationNorms(m, tg, ls, cb)
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
	tr, err := paca.NewTrainer(a, recs, tc)
	if err != nil {
		return err
	}
	defer tr.Release()
	if *resume != "" {
		if err := tr.LoadCheckpoint(*resume); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "resumed from %s at step %d\n", *resume, tr.Step)
	}
	fmt.Fprintf(stderr, "backend: %s\n", tensor.CurrentBackend().Name())
	fmt.Fprintln(stderr, a.Summary())

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	base, _ := filepath.Abs(*modelDir)
	pr, err := newProgress(stdout, filepath.Join(*out, "train_log.jsonl"), tr.Step, tc.Steps)
	if err != nil {
		return err
	}
	lastGood := ""
	save := func() error {
		dir := filepath.Join(*out, fmt.Sprintf("checkpoint-%d", tr.Step))
		if err := tr.SaveCheckpoint(dir, base); err != nil {
			return err
		}
		lastGood = dir
		return pruneCheckpoints(*out, *keep)
	}
	evaluate := func() {
		if len(evalRecs) > 0 {
			l, n, err := paca.EvalLoss(m, evalRecs, *batch, *seqLen)
			if err != nil {
				pr.note("eval at step %d: %v", tr.Step, err)
				return
			}
			pr.eval(tr.Step, l, n)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = tr.Run(ctx, func(s paca.StepLog) error {
		pr.step(s)
		if *evalEvery > 0 && s.Step%*evalEvery == 0 && s.Step < tc.Steps {
			evaluate()
		}
		if *saveEvery > 0 && s.Step%*saveEvery == 0 {
			return save()
		}
		return nil
	})
	switch {
	case errors.Is(err, context.Canceled):
		pr.note("interrupted: saving a checkpoint")
		if err := save(); err != nil {
			return err
		}
		pr.close(filepath.Join(*out, "loss.png"))
		return fmt.Errorf("interrupted at step %d; continue with --resume %s", tr.Step, lastGood)
	case err != nil:
		pr.close(filepath.Join(*out, "loss.png"))
		if lastGood != "" {
			return fmt.Errorf("%w; the last good checkpoint is %s", err, lastGood)
		}
		return err
	}
	evaluate()
	if err := pr.close(filepath.Join(*out, "loss.png")); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\n%s", tensor.MemStats())

	if *method == paca.MethodFull {
		a.Unapply()
		err = m.Save(*out)
	} else {
		err = paca.Save(*out, a, base)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return nil
}

// pruneCheckpoints removes all but the keep newest checkpoint-<step>
// directories of out.
func pruneCheckpoints(out string, keep int) error {
	ents, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	var steps []int
	for _, e := range ents {
		if s, ok := strings.CutPrefix(e.Name(), "checkpoint-"); ok && e.IsDir() {
			if n, err := strconv.Atoi(s); err == nil {
				steps = append(steps, n)
			}
		}
	}
	sort.Ints(steps)
	for i := 0; i < len(steps)-max(keep, 1); i++ {
		if err := os.RemoveAll(filepath.Join(out, fmt.Sprintf("checkpoint-%d", steps[i]))); err != nil {
			return err
		}
	}
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
