package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/paca/bench"
)

// benchWorkerFlag is the hidden first argument with which "paca bench"
// re-executes itself to measure one method in a process of its own.
const benchWorkerFlag = "--bench-worker"

// benchSpec is what a worker process is given: the options, the method
// and where to write its result.
type benchSpec struct {
	Options bench.Options `json:"options"`
	Method  string        `json:"method"`
	Out     string        `json:"out"`
}

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 2 && args[0] == benchWorkerFlag {
		return benchWorker(args[1], stderr)
	}
	fs := newFlagSet("bench", "[--shape NAME | --model DIR] [flags]",
		`Bench measures fine-tuning methods on the same model shape, batch and
sequence length: for each method, a fresh model (random weights from
--seed, or --model) is adapted on --targets and trained with AdamW on
random tokens for --warmup untimed and --steps timed steps. It prints the
median step time, tokens/s, the peak of accounted tensor memory by
category, the peak RSS, and every figure's ratio to LoRA's.

Each method runs in a child process of this binary, so that its peak RSS
is its own (--in-process runs them all here instead). With --max-seq-len
it also finds, per method, the longest sequence whose peak accounted
memory for one forward and backward pass fits --memory-budget.

Shapes: tiny; smollm2-135m (SmolLM2-135M's shape); llama-7b-layer (one
decoder layer of LLaMA-7B with a 1024-token vocabulary).`, stderr)
	shape := fs.String("shape", bench.ShapeSmolLM2, "model `shape`: "+strings.Join(bench.Shapes, ", "))
	modelDir := fs.String("model", "", "HF model `directory` to load instead of a random shape")
	dt := dtypeFlag(fs)
	seqLen := fs.Int("seq-len", 512, "tokens per sequence")
	batch := fs.Int("batch-size", 1, "sequences per step")
	rank := fs.Int("rank", 16, "r: adapted columns (PaCA) or adapter rank (LoRA)")
	alpha := fs.Float64("alpha", 0, "scaling numerator, s = alpha/r (0: 2·rank)")
	methods := fs.String("methods", "paca,lora,full", "comma-separated `methods`: "+strings.Join(paca.Methods, ","))
	steps := fs.Int("steps", 3, "timed training steps per method")
	warmup := fs.Int("warmup", 1, "untimed warm-up steps per method")
	targets := fs.String("targets", "all-linear", "comma-separated projections to adapt, or all-linear")
	seed := fs.Uint64("seed", 1, "random seed (weights, tokens, PaCA columns, LoRA init)")
	lr := fs.Float64("lr", 1e-4, "AdamW learning rate")
	interleave := fs.Int("interleave", 0, "then time `N` more steps of each method, the methods taking turns in this process (steadier on a shared machine)")
	maxSeq := fs.Bool("max-seq-len", false, "find each method's longest sequence within --memory-budget")
	budget := fs.String("memory-budget", "4GiB", "peak accounted memory `budget` for --max-seq-len (bytes, or with KiB, MiB, GiB)")
	seqStep := fs.Int("seq-step", 64, "--max-seq-len searches multiples of this")
	seqLimit := fs.Int("seq-limit", 0, "longest sequence --max-seq-len tries (0: the model's max_position_embeddings)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of each method's training steps to `prefix`.<method>.pprof")
	inProcess := fs.Bool("in-process", false, "run every method in this process (peak RSS is then reset per method via /proc/self/clear_refs)")
	jsonPath := fs.String("json", "", "write the results as JSON to `file`")
	pngPath := fs.String("png", "", "draw step time and peak memory per method into `file` (PNG)")
	mdPath := fs.String("markdown", "", "write the tables as Markdown to `file`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	tg, err := paca.ParseTargets(*targets)
	if err != nil {
		return err
	}
	var ms []string
	for _, m := range strings.Split(*methods, ",") {
		if m = strings.TrimSpace(m); m != "" {
			ms = append(ms, m)
		}
	}
	o := bench.Options{Shape: *shape, ModelDir: *modelDir, SeqLen: *seqLen, BatchSize: *batch, Rank: *rank, Alpha: *alpha,
		Targets: tg, Methods: ms, Steps: *steps, Warmup: *warmup, Seed: *seed, LR: *lr, DType: *dt, Interleave: *interleave,
		MaxSeqLen: *maxSeq, SeqStep: *seqStep, SeqLimit: *seqLimit, CPUProfile: *cpuProfile, Log: stderr}
	if *maxSeq {
		if o.MemoryBudget, err = parseBytes(*budget); err != nil {
			return fmt.Errorf("--memory-budget: %w", err)
		}
	}
	if err := o.Check(); err != nil {
		return err
	}
	var runner bench.Runner
	if !*inProcess {
		tmp, err := os.MkdirTemp("", "paca-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		runner = func(o bench.Options, method string) (*bench.Result, error) {
			return benchChild(tmp, o, method, stderr)
		}
	}
	rep, err := bench.Run(o, runner)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	rep.WriteTable(stdout)
	for _, out := range []struct {
		path string
		save func(string) error
	}{{*jsonPath, rep.SaveJSON}, {*mdPath, rep.SaveMarkdown}, {*pngPath, rep.SavePNG}} {
		if out.path == "" {
			continue
		}
		if err := out.save(out.path); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", out.path)
	}
	return nil
}

// benchChild measures one method in a child process: this binary run as
// "paca bench --bench-worker SPEC". Its log goes to stderr.
func benchChild(dir string, o bench.Options, method string, stderr io.Writer) (*bench.Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	spec := benchSpec{Options: o, Method: method, Out: filepath.Join(dir, method+".result.json")}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	specPath := filepath.Join(dir, method+".spec.json")
	if err := os.WriteFile(specPath, b, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "bench", benchWorkerFlag, specPath)
	cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	var errBuf bytes.Buffer
	cmd.Stdout = stderr
	cmd.Stderr = io.MultiWriter(stderr, &errBuf)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("worker process: %v", err)
	}
	rb, err := os.ReadFile(spec.Out)
	if err != nil {
		return nil, fmt.Errorf("worker process wrote no result: %w", err)
	}
	var res bench.Result
	if err := json.Unmarshal(rb, &res); err != nil {
		return nil, fmt.Errorf("worker result %s: %w", spec.Out, err)
	}
	res.RSSMode = "child process per method; " + res.RSSMode
	return &res, nil
}

// benchChildEnv is set in a worker's environment (a test binary uses it
// to tell that it was started as the tool).
const benchChildEnv = "PACA_BENCH_WORKER"

// benchWorker measures the method of a spec file and writes the result.
func benchWorker(specPath string, stderr io.Writer) error {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var spec benchSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", specPath, err)
	}
	spec.Options.Log = stderr
	res, err := bench.RunMethod(spec.Options, spec.Method)
	if err != nil {
		return err
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(spec.Out, out, 0o644)
}

// parseBytes reads a byte count: a plain integer, or one with a unit B,
// KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) || f*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a positive byte count", s)
	}
	return int64(f * mult), nil
}
