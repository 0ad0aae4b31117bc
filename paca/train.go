package paca

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/internal/atomicfile"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/nn/safetensors"
	"github.com/gopaca/paca/tensor"
)

// TrainConfig holds the optimization settings of a run.
type TrainConfig struct {
	Optimizer   string  // "sgd" or "adamw"
	LR          float64 // peak learning rate
	WeightDecay float64
	Beta1       float64 // AdamW; 0 means 0.9
	Beta2       float64 // AdamW; 0 means 0.999
	Eps         float64 // AdamW; 0 means 1e-8
	Schedule    string  // "constant", "linear" or "cosine"
	Warmup      int     // warm-up steps
	MaxGradNorm float64 // clip the global gradient norm; 0 disables
	BatchSize   int     // records per micro-batch
	GradAccum   int     // micro-batches per optimizer step; 0 means 1
	SeqLen      int     // records are truncated to this many tokens
	Steps       int     // optimizer steps
}

// StepLog is what one optimizer step reports.
type StepLog struct {
	Step     int     // 1-based
	Loss     float64 // mean loss over the step's micro-batches
	Tokens   int     // counted tokens
	LR       float64 // learning rate used
	GradNorm float64 // global gradient norm before clipping
}

// Optimizers lists the optimizer names TrainConfig accepts.
var Optimizers = []string{"sgd", "adamw"}

// Check validates the settings.
func (tc TrainConfig) Check() error {
	switch {
	case !slices.Contains(Optimizers, tc.Optimizer):
		return fmt.Errorf("unknown optimizer %q (want sgd or adamw)", tc.Optimizer)
	case !(tc.LR >= 0) || math.IsInf(tc.LR, 0):
		return fmt.Errorf("learning rate must be a non-negative number, got %g", tc.LR)
	case tc.WeightDecay < 0:
		return fmt.Errorf("weight decay must not be negative, got %g", tc.WeightDecay)
	case tc.MaxGradNorm < 0:
		return fmt.Errorf("max grad norm must not be negative (0 disables clipping), got %g", tc.MaxGradNorm)
	case tc.BatchSize < 1:
		return fmt.Errorf("batch size must be at least 1, got %d", tc.BatchSize)
	case tc.GradAccum < 0:
		return fmt.Errorf("gradient accumulation steps must be at least 1, got %d", tc.GradAccum)
	case tc.SeqLen < 2:
		return fmt.Errorf("sequence length must be at least 2, got %d", tc.SeqLen)
	case tc.Steps < 1:
		return fmt.Errorf("steps must be at least 1, got %d", tc.Steps)
	case tc.Warmup < 0:
		return fmt.Errorf("warm-up steps must not be negative, got %d", tc.Warmup)
	}
	_, err := nn.ParseSchedule(tc.Schedule)
	return err
}

func (tc TrainConfig) accum() int { return max(tc.GradAccum, 1) }

// BatchAt lays out micro-batch i of a run over recs in file order:
// records i·B … i·B+B−1, wrapping around at the end of the file, each
// truncated to seqLen tokens and padded to the longest.
func BatchAt(recs []data.Record, batchSize, seqLen, i int) Batch {
	var b Batch
	batchInto(&b, nil, recs, batchSize, seqLen, i)
	return b
}

// batchInto is BatchAt laying the batch out in b's buffers, with sel
// (grown when short, and returned) to hold the selected records.
func batchInto(b *Batch, sel, recs []data.Record, batchSize, seqLen, i int) []data.Record {
	if cap(sel) < batchSize {
		sel = make([]data.Record, batchSize)
	}
	sel = sel[:batchSize]
	for j := range sel {
		r := recs[(i*batchSize+j)%len(recs)]
		if len(r.InputIDs) > seqLen {
			r.InputIDs, r.Labels = r.InputIDs[:seqLen], r.Labels[:seqLen]
		}
		sel[j] = r
	}
	b.IDs, b.Labels, b.B, b.T = data.PadInto(b.IDs, b.Labels, sel)
	clear(sel) // keep no record alive
	return sel
}

// Trainer runs the optimization of an adapted model, one step at a time,
// and saves and restores everything a run needs to continue exactly where
// it stopped.
type Trainer struct {
	Adapted *Adapted
	Config  TrainConfig
	Step    int // optimizer steps done

	train  []data.Record
	params []nn.Param
	opt    nn.Optimizer
	sched  nn.Schedule

	// Reused from step to step, so that a step allocates nothing.
	tape  *tensor.Tape
	batch Batch
	sel   []data.Record
}

// NewTrainer prepares a run over the training records that trains a's
// adapters.
func NewTrainer(a *Adapted, train []data.Record, tc TrainConfig) (*Trainer, error) {
	return NewTrainerParams(a, a.Trainable(), train, tc)
}

// NewTrainerParams prepares a run that trains the given tensors of
// a.Model, which need not be adapters (pre-training trains them all).
func NewTrainerParams(a *Adapted, params []nn.Param, train []data.Record, tc TrainConfig) (*Trainer, error) {
	if err := tc.Check(); err != nil {
		return nil, err
	}
	if len(train) == 0 {
		return nil, fmt.Errorf("no training records")
	}
	if a.Model.GradCheckpointing && a.Config.Dropout > 0 {
		return nil, fmt.Errorf("activation recomputation needs dropout 0 (the recomputed pass would draw new masks)")
	}
	sched, _ := nn.ParseSchedule(tc.Schedule)
	t := &Trainer{Adapted: a, Config: tc, train: train, params: params, sched: sched}
	if len(t.params) == 0 {
		return nil, fmt.Errorf("nothing to train")
	}
	if tc.Optimizer == "sgd" {
		t.opt = nn.NewSGD(t.params, tc.WeightDecay)
	} else {
		t.opt = nn.NewAdamW(t.params, orDefault(tc.Beta1, 0.9), orDefault(tc.Beta2, 0.999), orDefault(tc.Eps, 1e-8), tc.WeightDecay)
	}
	return t, nil
}

// Release frees the optimizer state.
func (t *Trainer) Release() { t.opt.Release() }

// Done reports whether every step has run.
func (t *Trainer) Done() bool { return t.Step >= t.Config.Steps }

// TrainStep runs one optimizer step: GradAccum micro-batches of forward
// and backward (each loss scaled by 1/GradAccum, so the gradient is that of
// their mean), clipping, the scheduled learning rate, the update. A NaN or
// infinite loss or gradient stops it with an error before any update.
func (t *Trainer) TrainStep() (StepLog, error) {
	tc, a := t.Config, t.Adapted
	n := tc.accum()
	log := StepLog{Step: t.Step + 1}
	for j := 0; j < n; j++ {
		t.sel = batchInto(&t.batch, t.sel, t.train, tc.BatchSize, tc.SeqLen, t.Step*n+j)
		b := &t.batch
		if t.tape == nil {
			t.tape = tensor.NewTape()
		}
		tp := t.tape
		loss, count := a.Model.Loss(tp, b.IDs, b.Labels, b.B, b.T)
		l := float64(loss.Item())
		if math.IsNaN(l) || math.IsInf(l, 0) {
			tp.Reset()
			loss.Release()
			t.zeroGrad()
			return log, fmt.Errorf("step %d: loss is %v", log.Step, l)
		}
		tp.Backward(loss, float32(1/float64(n)))
		loss.Release()
		log.Loss += l / float64(n)
		log.Tokens += count
	}
	log.GradNorm = nn.ClipGradNorm(t.params, tc.MaxGradNorm)
	if math.IsNaN(log.GradNorm) || math.IsInf(log.GradNorm, 0) {
		t.zeroGrad()
		return log, fmt.Errorf("step %d: gradient norm is %v", log.Step, log.GradNorm)
	}
	log.LR = t.sched.LR(tc.LR, t.Step, tc.Warmup, tc.Steps)
	t.opt.Step(log.LR)
	t.zeroGrad()
	t.Step++
	return log, nil
}

func (t *Trainer) zeroGrad() {
	for _, p := range t.params {
		p.T.Grad.Release()
		p.T.Grad = nil
	}
}

// EvalLoss returns the mean loss over the records' counted tokens and
// their count, batchSize records at a time in file order, each truncated
// to seqLen tokens, without a tape. Shorter records are padded on the
// right with label -100: under causal attention the padding cannot change
// the scores of the tokens before it.
func EvalLoss(m *nn.Model, recs []data.Record, batchSize, seqLen int) (float64, int, error) {
	var sum float64
	tokens := 0
	for lo := 0; lo < len(recs); lo += batchSize {
		chunk := recs[lo:min(lo+batchSize, len(recs))]
		b := BatchAt(chunk, len(chunk), seqLen, 0)
		loss, n := m.Loss(nil, b.IDs, b.Labels, b.B, b.T)
		l := float64(loss.Item())
		loss.Release()
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return 0, 0, fmt.Errorf("loss is %v in the batch starting at line %d", l, chunk[0].Line)
		}
		sum += l * float64(n)
		tokens += n
	}
	if tokens == 0 {
		return 0, 0, fmt.Errorf("no token is counted (every label is -100, or each record has one token)")
	}
	return sum / float64(tokens), tokens, nil
}

// Run trains until every step is done or ctx is cancelled (after the step
// in progress), calling after for each step. An error from after stops the
// run.
func (t *Trainer) Run(ctx context.Context, after func(StepLog) error) error {
	for !t.Done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		log, err := t.TrainStep()
		if err != nil {
			return err
		}
		if after != nil {
			if err := after(log); err != nil {
				return err
			}
		}
	}
	return nil
}

// Checkpoint files. A checkpoint directory also holds the adapter in
// PEFT's layout (not for full fine-tuning), so it can be used as is.
const (
	trainerStateFile   = "trainer_state.json"
	trainerTensorsFile = "trainer_state.safetensors"
)

// trainerState is trainer_state.json.
type trainerState struct {
	Step   int               `json:"step"`
	Method string            `json:"method"`
	Rank   int               `json:"rank"`
	Alpha  float64           `json:"alpha"`
	DType  tensor.DType      `json:"dtype"` // of the frozen weight matrices; f32 when absent
	Config TrainConfig       `json:"train_config"`
	RNG    map[string][]byte `json:"rng,omitempty"` // module → dropout stream state
}

// checkpointFault, when set (by tests), is called between the files of a
// checkpoint write, to simulate a crash in the middle of one.
var checkpointFault func(stage string)

// SaveCheckpoint writes everything the run needs to continue — trainable
// tensors, optimizer state, step, dropout streams — into dir. It builds the
// checkpoint in a temporary directory beside dir and renames it into place,
// so a crash leaves either no dir or a complete one. base is recorded in
// the adapter's config.
func (t *Trainer) SaveCheckpoint(dir, base string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	a := t.Adapted
	st := trainerState{Step: t.Step, Method: a.Config.Method, Rank: a.Config.Rank, Alpha: a.Config.Alpha,
		DType: a.Model.Embed.DType(), Config: t.Config, RNG: map[string][]byte{}}
	for _, mod := range a.Modules {
		if r, ok := mod.Layer.(interface{ RNGState() ([]byte, error) }); ok {
			b, err := r.RNGState()
			if err != nil {
				return err
			}
			st.RNG[mod.Path] = b
		}
	}
	var ts []safetensors.Tensor
	for _, p := range t.params {
		ts = append(ts, safetensors.F32Tensor("param."+p.Name, p.T.Shape(), p.T.Data()))
	}
	for _, p := range t.opt.State() {
		ts = append(ts, safetensors.F32Tensor("optim."+p.Name, p.T.Shape(), p.T.Data()))
	}
	if err := safetensors.Write(filepath.Join(tmp, trainerTensorsFile), ts, nil); err != nil {
		return err
	}
	if checkpointFault != nil {
		checkpointFault("tensors")
	}
	if a.Config.Method != MethodFull {
		if err := Save(tmp, a, base); err != nil {
			return err
		}
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(tmp, trainerStateFile), js); err != nil {
		return err
	}
	if checkpointFault != nil {
		checkpointFault("state")
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return atomicfile.SyncDir(parent)
}

// LoadCheckpoint restores a run saved by SaveCheckpoint into t, whose
// model must have been adapted with the same method, rank and alpha.
func (t *Trainer) LoadCheckpoint(dir string) error {
	path := filepath.Join(dir, trainerStateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var st trainerState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	ac := t.Adapted.Config
	if st.Method != ac.Method || st.Rank != ac.Rank || st.Alpha != ac.Alpha {
		return fmt.Errorf("%s: the checkpoint is %s with rank %d and alpha %g; this run is %s with rank %d and alpha %g",
			path, st.Method, st.Rank, st.Alpha, ac.Method, ac.Rank, ac.Alpha)
	}
	if dt := t.Adapted.Model.Embed.DType(); st.DType != dt {
		return fmt.Errorf("%s: the checkpoint was trained with %s weights; this run has them in %s (use --dtype %s)", path, st.DType, dt, st.DType)
	}
	if st.Step < 0 || st.Step > t.Config.Steps {
		return fmt.Errorf("%s: step %d is outside this run's %d steps", path, st.Step, t.Config.Steps)
	}
	tpath := filepath.Join(dir, trainerTensorsFile)
	f, err := safetensors.Open(tpath)
	if err != nil {
		return err
	}
	defer f.Close()
	want := map[string]*tensor.Tensor{}
	for _, p := range t.params {
		want["param."+p.Name] = p.T
	}
	for _, p := range t.opt.State() {
		want["optim."+p.Name] = p.T
	}
	if names := f.Names(); len(names) != len(want) {
		return fmt.Errorf("%s: %d tensors, this run has %d (%s)", tpath, len(names), len(want), strings.Join(names[:min(3, len(names))], ", "))
	}
	vals := map[string][]float32{}
	for name, dst := range want {
		info, ok := f.Info(name)
		if !ok {
			return fmt.Errorf("%s: missing tensor %q", tpath, name)
		}
		if !slices.Equal(info.Shape, dst.Shape()) {
			return fmt.Errorf("%s: tensor %q has shape %v, this run needs %v", tpath, name, info.Shape, dst.Shape())
		}
		if vals[name], err = f.Float32(name); err != nil {
			return fmt.Errorf("%s: %w", tpath, err)
		}
	}
	for _, mod := range t.Adapted.Modules {
		r, ok := mod.Layer.(interface{ SetRNGState([]byte) error })
		if !ok {
			continue
		}
		s, ok := st.RNG[mod.Path]
		if !ok {
			return fmt.Errorf("%s: no dropout state for %s", path, mod.Path)
		}
		if err := r.SetRNGState(s); err != nil {
			return fmt.Errorf("%s: %s: %w", path, mod.Path, err)
		}
	}
	for name, dst := range want {
		copy(dst.Data(), vals[name])
	}
	t.Step = st.Step
	t.opt.SetStepCount(st.Step)
	return nil
}

func orDefault(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}
