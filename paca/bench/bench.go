// Package bench measures what "paca bench" reports: for each fine-tuning
// method, on the same model shape, batch and sequence length, the median
// time of a training step (AdamW on random tokens), tokens per second,
// the peak of accounted tensor memory by category, the peak resident set
// of the process, and optionally the longest sequence whose peak
// accounted memory fits a budget — with every figure's ratio to LoRA's.
//
// Each method trains a fresh model: built from the same seed (or loaded
// from the same directory), adapted, and given its own optimizer. Run can
// hand each method to a Runner, so that the command line measures each
// in a process of its own (a clean peak RSS), while tests run them in
// process. Benchmarks are for people and for tracking: tests never assert
// on wall time.
package bench

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/tensor"
)

// Options says what to measure. It travels as JSON to a child process.
type Options struct {
	Shape     string   `json:"shape"`               // a built-in shape (Shapes); ignored with ModelDir
	ModelDir  string   `json:"model_dir,omitempty"` // an HF model directory instead of a shape
	SeqLen    int      `json:"seq_len"`
	BatchSize int      `json:"batch_size"`
	Rank      int      `json:"rank"`
	Alpha     float64  `json:"alpha"`   // 0 means 2·Rank
	Targets   []string `json:"targets"` // nil means all seven projections
	Methods   []string `json:"methods"`
	Steps     int      `json:"steps"`  // timed steps; 0 only with MaxSeqLen
	Warmup    int      `json:"warmup"` // untimed steps first
	Seed      uint64   `json:"seed"`
	LR        float64  `json:"lr"` // 0 means 1e-4
	// DType stores the frozen weight matrices (f32, bf16 or f16). Full
	// fine-tuning, which has none, always runs in float32.
	DType tensor.DType `json:"dtype"`

	// MaxSeqLen searches, per method, the longest sequence (a multiple of
	// SeqStep up to SeqLimit) whose peak accounted memory for one forward
	// and backward pass, with the optimizer state allocated, fits
	// MemoryBudget bytes.
	MaxSeqLen    bool  `json:"max_seq_len"`
	MemoryBudget int64 `json:"memory_budget"`
	SeqStep      int   `json:"seq_step"`  // 0 means 64
	SeqLimit     int   `json:"seq_limit"` // 0 means the model's max_position_embeddings

	// Interleave, when positive, adds that many timed steps per method
	// after the per-method runs, the methods taking turns step by step in
	// this process: the steadiest comparison of their speed on a machine
	// shared with other work.
	Interleave int `json:"interleave,omitempty"`

	// CPUProfile, when set, writes a CPU profile of each method's
	// training steps to CPUProfile.<method>.pprof.
	CPUProfile string `json:"cpu_profile,omitempty"`

	Log io.Writer `json:"-"` // progress lines; nil for none
}

func (o Options) alpha() float64 {
	if o.Alpha == 0 {
		return 2 * float64(o.Rank)
	}
	return o.Alpha
}

func (o Options) lr() float64 {
	if o.LR == 0 {
		return 1e-4
	}
	return o.LR
}

func (o Options) seqStep() int {
	if o.SeqStep <= 0 {
		return 64
	}
	return o.SeqStep
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format, args...)
	}
}

// Check validates the options.
func (o Options) Check() error {
	if o.ModelDir == "" {
		if _, _, err := ShapeConfig(o.Shape); err != nil {
			return err
		}
	}
	switch {
	case len(o.Methods) == 0:
		return fmt.Errorf("no methods to run")
	case o.BatchSize < 1:
		return fmt.Errorf("batch size must be at least 1, got %d", o.BatchSize)
	case o.Rank < 1:
		return fmt.Errorf("rank must be at least 1, got %d", o.Rank)
	case o.Steps < 0 || o.Warmup < 0:
		return fmt.Errorf("steps and warm-up steps must not be negative")
	case o.Steps == 0 && !o.MaxSeqLen:
		return fmt.Errorf("nothing to do: --steps 0 without --max-seq-len")
	case o.Interleave < 0:
		return fmt.Errorf("interleaved steps must not be negative, got %d", o.Interleave)
	case (o.Steps > 0 || o.Interleave > 0) && o.SeqLen < 2:
		return fmt.Errorf("sequence length must be at least 2, got %d", o.SeqLen)
	case o.MaxSeqLen && o.MemoryBudget <= 0:
		return fmt.Errorf("--max-seq-len needs a positive --memory-budget")
	}
	seen := map[string]bool{}
	for _, m := range o.Methods {
		if !slices.Contains(paca.Methods, m) {
			return fmt.Errorf("unknown method %q (want some of %s)", m, strings.Join(paca.Methods, ","))
		}
		if seen[m] {
			return fmt.Errorf("method %q listed twice", m)
		}
		seen[m] = true
	}
	return nil
}

// Result is one method's measurements.
type Result struct {
	Method    string `json:"method"`
	Trainable int    `json:"trainable_params"`
	Total     int    `json:"total_params"`

	StepMS     float64   `json:"step_ms"`      // median over the timed steps
	StepMSAll  []float64 `json:"step_ms_all"`  // every timed step, in order
	TokensPerS float64   `json:"tokens_per_s"` // batch·seq-len / median step
	// StepCPUMS is the median over the timed steps of the CPU time the
	// process spent (user + system, all threads): on a machine shared with
	// other work it varies much less than the wall time, so it is the
	// steadier basis for comparing methods. 0 where it cannot be read.
	StepCPUMS float64 `json:"step_cpu_ms"`
	// InterleavedStepMS is the median step time of the Interleave rounds
	// in which the methods took turns in one process (0 without them).
	InterleavedStepMS float64 `json:"interleaved_step_ms,omitempty"`
	Loss              float64 `json:"final_loss"` // of the last step (random tokens: ≈ ln vocab)

	// PeakBytes is the peak of all accounted tensor memory during the
	// warm-up and timed steps: model, adapters, gradients, optimizer
	// state, activations, scratch. PeakByCategory splits it; the
	// per-category peaks need not coincide, so they may sum to more.
	PeakBytes      int64            `json:"peak_bytes"`
	PeakByCategory map[string]int64 `json:"peak_by_category"`

	// PeakRSSBytes is the peak resident set while this method ran —
	// building the model, adapting it and training (VmHWM, reset at the
	// method's start). TrainPeakRSSBytes is the peak over the training
	// steps only (reset again once the model, adapters and optimizer
	// state were in place), and RSSBeforeTrainBytes the resident set at
	// that point. RSSMode says how the peak was isolated.
	PeakRSSBytes        int64  `json:"peak_rss_bytes"`
	TrainPeakRSSBytes   int64  `json:"train_peak_rss_bytes"`
	RSSBeforeTrainBytes int64  `json:"rss_before_train_bytes"`
	RSSMode             string `json:"rss_mode"`

	// MaxSeqLen is the longest sequence found to fit the budget (0: not
	// searched, or not even the shortest fits); Probes are the lengths
	// tried with their peaks.
	MaxSeqLen     int     `json:"max_seq_len,omitempty"`
	MaxSeqAtLimit bool    `json:"max_seq_len_at_limit,omitempty"`
	Probes        []Probe `json:"max_seq_len_probes,omitempty"`
}

// Probe is one sequence length tried by the max-seq-len search.
type Probe struct {
	SeqLen    int   `json:"seq_len"`
	PeakBytes int64 `json:"peak_bytes"`
	Fits      bool  `json:"fits"`
}

// Ratios are a method's figures divided by LoRA's.
type Ratios struct {
	StepTime float64 `json:"step_time"`
	StepCPU  float64 `json:"step_cpu_time"`
	// Interleaved is the ratio of the interleaved step times.
	Interleaved float64 `json:"interleaved_step_time,omitempty"`
	TokensPerS  float64 `json:"tokens_per_s"`
	PeakBytes   float64 `json:"peak_bytes"`
	PeakSaved   float64 `json:"peak_saved"`
	PeakRSS     float64 `json:"peak_rss"`
	TrainRSS    float64 `json:"train_peak_rss"`
	MaxSeqLen   float64 `json:"max_seq_len,omitempty"`
}

// Report is a whole run.
type Report struct {
	Shape        string       `json:"shape"`
	Model        string       `json:"model,omitempty"` // --model directory
	Note         string       `json:"note"`
	Params       int          `json:"model_params"`
	SeqLen       int          `json:"seq_len"`
	BatchSize    int          `json:"batch_size"`
	Rank         int          `json:"rank"`
	Alpha        float64      `json:"alpha"`
	Targets      []string     `json:"targets"`
	Steps        int          `json:"steps"`
	Warmup       int          `json:"warmup"`
	LR           float64      `json:"lr"`
	Interleave   int          `json:"interleave,omitempty"`
	DType        tensor.DType `json:"dtype"`
	MemoryBudget int64        `json:"memory_budget,omitempty"`
	SeqStep      int          `json:"seq_step,omitempty"`
	SeqLimit     int          `json:"seq_limit,omitempty"`

	Date       string `json:"date"`
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	Backend    string `json:"backend"` // where the kernels ran: cpu, or the GPU

	Order   []string           `json:"order"`   // methods in the order run
	Methods map[string]*Result `json:"methods"` // method → its figures
	Ratios  map[string]Ratios  `json:"ratios_to_lora,omitempty"`
}

// Runner measures one method; RunMethod does it in this process.
type Runner func(o Options, method string) (*Result, error)

// Config resolves the model config the options describe, with a note.
func (o Options) Config() (*nn.Config, string, error) {
	if o.ModelDir != "" {
		cfg, err := nn.LoadConfig(o.ModelDir + "/config.json")
		if err != nil {
			return nil, "", err
		}
		return cfg, fmt.Sprintf("%s: %d layers, hidden %d, %d heads / %d KV heads, intermediate %d, vocab %d",
			o.ModelDir, cfg.NumLayers, cfg.HiddenSize, cfg.NumHeads, cfg.NumKVHeads, cfg.IntermediateSize, cfg.VocabSize), nil
	}
	return ShapeConfig(o.Shape)
}

// Run measures every method of o, each through run (nil: RunMethod), and
// computes the ratios to LoRA when LoRA is among them.
func Run(o Options, run Runner) (*Report, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	cfg, note, err := o.Config()
	if err != nil {
		return nil, err
	}
	if o.Steps > 0 && o.SeqLen > cfg.MaxPositions {
		return nil, fmt.Errorf("sequence length %d exceeds the model's max_position_embeddings %d", o.SeqLen, cfg.MaxPositions)
	}
	if run == nil {
		run = RunMethod
	}
	targets := o.Targets
	if len(targets) == 0 {
		targets = nn.ProjNames
	}
	rep := &Report{Shape: o.Shape, Model: o.ModelDir, Note: note, Params: paramCount(cfg),
		SeqLen: o.SeqLen, BatchSize: o.BatchSize, Rank: o.Rank, Alpha: o.alpha(), Targets: targets,
		Steps: o.Steps, Warmup: o.Warmup, LR: o.lr(), DType: o.DType,
		Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), CPU: cpuModel(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), Methods: map[string]*Result{},
		Backend: tensor.CurrentBackend().Name()}
	if o.ModelDir != "" {
		rep.Shape = ""
	}
	if o.MaxSeqLen {
		rep.MemoryBudget, rep.SeqStep, rep.SeqLimit = o.MemoryBudget, o.seqStep(), seqLimit(o, cfg)
	}
	for _, m := range o.Methods {
		res, err := run(o, m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		rep.Order = append(rep.Order, m)
		rep.Methods[m] = res
	}
	if o.Interleave > 0 {
		rep.Interleave = o.Interleave
		if err := interleave(o, rep); err != nil {
			return nil, err
		}
	}
	rep.computeRatios()
	return rep, nil
}

func seqLimit(o Options, cfg *nn.Config) int {
	if o.SeqLimit > 0 {
		return o.SeqLimit
	}
	return cfg.MaxPositions
}

// paramCount is the number of base parameters of a model with cfg.
func paramCount(cfg *nn.Config) int {
	q, kv := cfg.NumHeads*cfg.HeadDim, cfg.NumKVHeads*cfg.HeadDim
	c, i := cfg.HiddenSize, cfg.IntermediateSize
	layer := c*q + 2*c*kv + q*c + 3*c*i + 2*c
	n := cfg.VocabSize*c + cfg.NumLayers*layer + c
	if !cfg.TieEmbeddings {
		n += cfg.VocabSize * c
	}
	return n
}

func (r *Report) computeRatios() {
	l, ok := r.Methods[paca.MethodLoRA]
	if !ok {
		return
	}
	div := func(a, b float64) float64 {
		if b == 0 || a == 0 {
			return 0
		}
		return a / b
	}
	r.Ratios = map[string]Ratios{}
	for name, m := range r.Methods {
		r.Ratios[name] = Ratios{
			StepTime:    div(m.StepMS, l.StepMS),
			StepCPU:     div(m.StepCPUMS, l.StepCPUMS),
			Interleaved: div(m.InterleavedStepMS, l.InterleavedStepMS),
			TokensPerS:  div(m.TokensPerS, l.TokensPerS),
			PeakBytes:   div(float64(m.PeakBytes), float64(l.PeakBytes)),
			PeakSaved:   div(float64(m.PeakByCategory["saved"]), float64(l.PeakByCategory["saved"])),
			PeakRSS:     div(float64(m.PeakRSSBytes), float64(l.PeakRSSBytes)),
			TrainRSS:    div(float64(m.TrainPeakRSSBytes), float64(l.TrainPeakRSSBytes)),
			MaxSeqLen:   div(float64(m.MaxSeqLen), float64(l.MaxSeqLen)),
		}
	}
}

// buildModel makes a fresh model for method: loaded from ModelDir, or the
// shape's with random weights from the seed; its weight matrices in
// o.DType, except for full fine-tuning.
func (o Options) buildModel(method string) (*nn.Model, error) {
	dt := o.DType
	if method == paca.MethodFull {
		dt = tensor.Float32
	}
	if o.ModelDir != "" {
		return nn.LoadAs(o.ModelDir, dt)
	}
	cfg, _, err := ShapeConfig(o.Shape)
	if err != nil {
		return nil, err
	}
	m := nn.NewRandom(cfg, o.Seed)
	m.ConvertWeights(dt)
	return m, nil
}

// randomRecords returns n records of seqLen uniformly random tokens, each
// labelled with itself (every next token is scored).
func randomRecords(n, seqLen, vocab int, seed uint64) []data.Record {
	rng := rand.New(rand.NewPCG(seed, 0xbe7c4))
	recs := make([]data.Record, n)
	for i := range recs {
		ids := make([]int32, seqLen)
		for j := range ids {
			ids[j] = int32(rng.IntN(vocab))
		}
		recs[i] = data.Record{InputIDs: ids, Labels: ids, Line: i + 1}
	}
	return recs
}

// RunMethod measures one method in this process. Memory of earlier work
// is handed back to the OS first and the RSS high-water mark reset, so
// the RSS figures are this method's as far as the process allows (see
// Result.RSSMode).
func RunMethod(o Options, method string) (*Result, error) {
	res := &Result{Method: method}
	releaseMemory()
	if resetPeakRSS() {
		res.RSSMode = "per method (VmHWM reset via /proc/self/clear_refs)"
	} else {
		res.RSSMode = "process-wide VmHWM (could not reset it): includes earlier methods"
	}

	seqLen := max(o.SeqLen, 2)
	steps := o.Steps + o.Warmup
	m, a, tr, err := o.prepare(method, steps)
	if err != nil {
		return nil, err
	}
	defer m.Release()
	defer tr.Release()
	cfg := m.Config
	res.Trainable, res.Total = a.Counts()

	// Everything the run keeps is in place: measure the steps from here.
	releaseMemory()
	rssBefore, setupHWM, _ := procStatus()
	res.RSSBeforeTrainBytes = rssBefore
	resetPeakRSS()
	tensor.ResetPeak()
	if o.CPUProfile != "" {
		stop, err := startProfile(o.CPUProfile + "." + method + ".pprof")
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	var cpuAll []float64
	for i := 0; i < steps; i++ {
		start, cpu0 := time.Now(), processCPU()
		log, err := tr.TrainStep()
		if err != nil {
			return nil, err
		}
		tensor.SyncDevice() // a GPU's queued work belongs to this step
		el, cpu := time.Since(start), processCPU()-cpu0
		ms := float64(el.Microseconds()) / 1000
		res.Loss = log.Loss
		if i < o.Warmup {
			o.logf("%s: warm-up %d/%d  %.1f ms  loss %.4f\n", method, i+1, o.Warmup, ms, log.Loss)
			continue
		}
		res.StepMSAll = append(res.StepMSAll, ms)
		cpuAll = append(cpuAll, float64(cpu.Microseconds())/1000)
		o.logf("%s: step %d/%d  %.1f ms  loss %.4f\n", method, i-o.Warmup+1, o.Steps, ms, log.Loss)
	}
	st := tensor.MemStats()
	res.PeakBytes = st.PeakTotal
	res.PeakByCategory = map[string]int64{}
	for _, c := range tensor.Categories() {
		res.PeakByCategory[c.String()] = st.Peak[c]
	}
	_, trainHWM, _ := procStatus()
	res.TrainPeakRSSBytes = trainHWM
	res.PeakRSSBytes = max(setupHWM, trainHWM)
	if len(res.StepMSAll) > 0 {
		res.StepMS = median(res.StepMSAll)
		res.StepCPUMS = median(cpuAll)
		res.TokensPerS = float64(o.BatchSize*seqLen) / (res.StepMS / 1000)
	}

	if o.MaxSeqLen {
		limit := seqLimit(o, cfg)
		vocab := cfg.VocabSize
		probe := func(T int) (int64, error) {
			return probePeak(a, o.BatchSize, T, vocab, o.Seed+2)
		}
		o.logf("%s: searching the longest sequence within %s (steps of %d up to %d)\n", method, tensor.FormatBytes(o.MemoryBudget), o.seqStep(), limit)
		// Start at --seq-len: long enough for a good first slope, yet cheap.
		best, probes, err := SearchMaxSeqLen(o.seqStep(), limit, o.SeqLen, o.MemoryBudget, tensor.MemStats().LiveTotal, probe, func(p Probe) {
			o.logf("%s:   seq %d: peak %s (%s)\n", method, p.SeqLen, tensor.FormatBytes(p.PeakBytes), map[bool]string{true: "fits", false: "over"}[p.Fits])
		})
		if err != nil {
			return nil, err
		}
		res.MaxSeqLen, res.Probes = best, probes
		res.MaxSeqAtLimit = best > 0 && best+o.seqStep() > limit
		o.logf("%s: longest sequence within the budget: %d\n", method, best)
	}
	return res, nil
}

// prepare builds method's model, adapts it and readies a trainer for
// steps AdamW steps on random tokens. The caller releases the trainer and
// the model.
func (o Options) prepare(method string, steps int) (*nn.Model, *paca.Adapted, *paca.Trainer, error) {
	o.logf("%s: building the model\n", method)
	m, err := o.buildModel(method)
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := paca.Apply(m, paca.Config{Method: method, Rank: o.Rank, Alpha: o.alpha(), Targets: o.Targets, Seed: o.Seed})
	if err != nil {
		m.Release()
		return nil, nil, nil, err
	}
	o.logf("%s: %s\n", method, a.Summary())
	seqLen := max(o.SeqLen, 2)
	recs := randomRecords(o.BatchSize*max(steps, 1), seqLen, m.Config.VocabSize, o.Seed+1)
	tc := paca.TrainConfig{Optimizer: "adamw", LR: o.lr(), Schedule: "constant", MaxGradNorm: 1,
		BatchSize: o.BatchSize, SeqLen: seqLen, Steps: max(steps, 1)}
	tr, err := paca.NewTrainer(a, recs, tc)
	if err != nil {
		m.Release()
		return nil, nil, nil, err
	}
	return m, a, tr, nil
}

// interleave times o.Interleave more steps of every method of rep, the
// methods taking turns step by step in this process after o.Warmup
// untimed steps each. Load from other work on a shared machine then falls
// on all of them alike, which sequential runs cannot promise; memory is
// not measured here (every model is live at once).
func interleave(o Options, rep *Report) error {
	type run struct {
		m   *nn.Model
		tr  *paca.Trainer
		res *Result
		ms  []float64
	}
	var runs []*run
	defer func() {
		for _, r := range runs {
			r.tr.Release()
			r.m.Release()
		}
	}()
	steps := o.Warmup + o.Interleave
	for _, method := range rep.Order {
		m, _, tr, err := o.prepare(method, steps)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		runs = append(runs, &run{m: m, tr: tr, res: rep.Methods[method]})
	}
	for i := 0; i < steps; i++ {
		for j, r := range runs {
			start := time.Now()
			if _, err := r.tr.TrainStep(); err != nil {
				return fmt.Errorf("%s: %w", rep.Order[j], err)
			}
			tensor.SyncDevice()
			if i >= o.Warmup {
				r.ms = append(r.ms, float64(time.Since(start).Microseconds())/1000)
			}
		}
		if i >= o.Warmup {
			o.logf("interleaved round %d/%d done\n", i-o.Warmup+1, o.Interleave)
		}
	}
	for _, r := range runs {
		r.res.InterleavedStepMS = median(r.ms)
	}
	return nil
}

// releaseMemory hands memory no longer in use back to the OS: the Go
// heap's and the tensor storage pool's free buffers (such as the float32
// weights a quantized method replaced).
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
	tensor.ReleaseCached()
}

// startProfile starts a CPU profile into path; stop ends it.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// probePeak runs one forward and backward pass of a on B random sequences
// of T tokens and returns the peak accounted memory during it (including
// everything live: model, adapters, optimizer state). The gradients are
// dropped afterwards.
func probePeak(a *paca.Adapted, B, T, vocab int, seed uint64) (int64, error) {
	recs := randomRecords(B, T, vocab, seed+uint64(T))
	b := paca.BatchAt(recs, B, T, 0)
	tensor.ResetPeak()
	tp := tensor.NewTape()
	loss, _ := a.Model.Loss(tp, b.IDs, b.Labels, b.B, b.T)
	if l := float64(loss.Item()); math.IsNaN(l) || math.IsInf(l, 0) {
		tp.Reset()
		loss.Release()
		a.ZeroGrad()
		return 0, fmt.Errorf("seq %d: loss is %v", T, l)
	}
	tp.Backward(loss, 1)
	loss.Release()
	peak := tensor.MemStats().PeakTotal
	a.ZeroGrad()
	return peak, nil
}

// SearchMaxSeqLen finds the largest multiple of step, at most limit, whose
// probe peak is within budget, assuming the peak grows with the sequence
// length. It returns 0 when not even step fits. The first probe is at
// first (rounded down to a multiple of step; 0 means step): a length
// long enough that the fixed costs do not distort the slope, yet cheap
// to run. base is the memory live
// before any probe (the peak's part that does not depend on the length):
// with it the first guess is a straight-line extrapolation, and later
// ones interpolate between the nearest probes on either side of the
// budget (falling back to bisection when that stops halving the
// bracket), so that few of the expensive long probes run. Every probe is
// passed to seen (which may be nil) as it completes.
func SearchMaxSeqLen(step, limit, first int, budget, base int64, probe func(T int) (int64, error), seen func(Probe)) (int, []Probe, error) {
	if step < 1 {
		return 0, nil, fmt.Errorf("sequence step must be positive, got %d", step)
	}
	K := limit / step
	if K < 1 {
		return 0, nil, fmt.Errorf("the sequence limit %d is below one step of %d", limit, step)
	}
	var probes []Probe
	lo, hi := 0, K+1 // k ≤ lo fits, k ≥ hi does not (hi = K+1: unknown)
	slow := 0        // secant guesses in a row that did not halve the bracket
	for hi-lo > 1 {
		var k int
		switch {
		case len(probes) == 0:
			k = max(first/step, 1)
		case slow >= 3:
			k = (lo + hi) / 2
			slow = 0
		default:
			k = guess(probes, step, budget, base)
		}
		k = min(max(k, lo+1), hi-1)
		T := k * step
		peak, err := probe(T)
		if err != nil {
			return 0, probes, err
		}
		p := Probe{SeqLen: T, PeakBytes: peak, Fits: peak <= budget}
		probes = append(probes, p)
		if seen != nil {
			seen(p)
		}
		width := hi - lo
		if p.Fits {
			lo = k
		} else {
			hi = k
		}
		if 2*(hi-lo) > width {
			slow++
		} else {
			slow = 0
		}
	}
	return lo * step, probes, nil
}

// guess predicts the step count k whose peak meets the budget, by linear
// interpolation between the fitting probe with the largest length (or the
// length-0 base) and the failing probe with the smallest, or — before
// anything failed — extrapolation through the two largest fitting ones.
func guess(probes []Probe, step int, budget, base int64) int {
	type pt struct {
		t float64
		p float64
	}
	fits := []pt{{0, float64(base)}}
	var over []pt
	for _, p := range probes {
		if p.Fits {
			fits = append(fits, pt{float64(p.SeqLen), float64(p.PeakBytes)})
		} else {
			over = append(over, pt{float64(p.SeqLen), float64(p.PeakBytes)})
		}
	}
	sort.Slice(fits, func(i, j int) bool { return fits[i].t < fits[j].t })
	sort.Slice(over, func(i, j int) bool { return over[i].t < over[j].t })
	a := fits[len(fits)-1]
	var b pt
	switch {
	case len(over) > 0:
		b = over[0]
	case len(fits) >= 2:
		a, b = fits[len(fits)-2], fits[len(fits)-1]
	default:
		return 1
	}
	if b.p <= a.p || b.t == a.t {
		return math.MaxInt32 // flat: jump up (clamped by the caller)
	}
	t := a.t + (float64(budget)-a.p)*(b.t-a.t)/(b.p-a.p)
	if t > float64(math.MaxInt32)*float64(step) {
		return math.MaxInt32
	}
	return int(math.Floor(t / float64(step)))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
