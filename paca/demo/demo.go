package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/tensor"
)

// Options sizes a demonstration run.
type Options struct {
	Seed          uint64
	PretrainSteps int
	FinetuneSteps int
	BatchSize     int
	Rank          int
	Methods       []string // fine-tuning methods to compare
	Eval          int      // held-out examples for accuracy
	Log           io.Writer
}

// DefaultOptions is the run "paca demo" makes: about two minutes on two
// cores.
func DefaultOptions() Options {
	return Options{Seed: 1, PretrainSteps: 500, FinetuneSteps: 150, BatchSize: 32, Rank: 8,
		Methods: []string{paca.MethodPaCA, paca.MethodLoRA, paca.MethodFull}, Eval: 200}
}

// Result is one fine-tuning method's outcome.
type Result struct {
	Method     string
	Trainable  int
	Before     float64 // held-out accuracy of the pre-trained model
	After      float64 // after fine-tuning
	StepTime   time.Duration
	PeakBytes  int64 // peak accounted memory while fine-tuning
	PeakSaved  int64 // of which activations saved for backward
	Losses     []float64
	FinalLoss  float64
	TotalSteps int
}

// Report is a whole run.
type Report struct {
	Config       *nn.Config
	Pretrain     []float64 // pre-training loss per step
	PretrainTime time.Duration
	CopyAcc      float64 // pre-trained model on held-out reverse/copy
	Results      []Result
}

// ModelConfig is the small LLaMA the demo trains: GQA, RoPE, SwiGLU, as
// the real ones.
func ModelConfig(vocab, maxSeq int) *nn.Config {
	return &nn.Config{ModelType: "llama", VocabSize: vocab, HiddenSize: 64, IntermediateSize: 160,
		NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, RMSNormEps: 1e-5,
		RoPE: nn.RoPEConfig{Type: "default", Theta: 10000}, MaxPositions: maxSeq,
		BOSTokenID: tokBOS, EOSTokenIDs: []int{tokEOS}}
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format, args...)
	}
}

// Run pre-trains the model, then fine-tunes a copy per method.
func Run(o Options) (*Report, error) {
	task := NewTask(16, 2, 6, o.Seed)
	cfg := ModelConfig(task.Vocab(), task.MaxSeq())
	rep := &Report{Config: cfg}

	// Pre-training: copy and reverse, every token learned.
	m := nn.NewRandom(cfg, o.Seed)
	defer m.Release()
	m.SetTrainable(true) // every tensor, embeddings and norms too
	pre := task.Pretraining(o.PretrainSteps*o.BatchSize, o.Seed)
	tc := paca.TrainConfig{Optimizer: "adamw", LR: 3e-3, WeightDecay: 0.01, Schedule: "cosine", Warmup: o.PretrainSteps / 20,
		MaxGradNorm: 1, BatchSize: o.BatchSize, SeqLen: task.MaxSeq(), Steps: o.PretrainSteps}
	start := time.Now()
	o.logf("pre-training a %d-layer LLaMA (%d parameters) on copy and reverse for %d steps\n", cfg.NumLayers, m.NumParams(), o.PretrainSteps)
	tr, err := paca.NewTrainerParams(&paca.Adapted{Model: m, Config: paca.Config{Method: paca.MethodFull}}, m.Params(), pre, tc)
	if err != nil {
		return nil, err
	}
	err = tr.Run(context.Background(), func(s paca.StepLog) error {
		rep.Pretrain = append(rep.Pretrain, s.Loss)
		if s.Step%50 == 0 || s.Step == tc.Steps {
			o.logf("  step %d/%d  loss %.4f\n", s.Step, tc.Steps, s.Loss)
		}
		return nil
	})
	tr.Release()
	if err != nil {
		return nil, err
	}
	m.SetTrainable(false)
	rep.PretrainTime = time.Since(start)

	heldCopy := task.Pretraining(o.Eval, o.Seed+1000)
	if rep.CopyAcc, err = Accuracy(m, heldCopy); err != nil {
		return nil, err
	}
	trainMap, heldMap := task.Mapping(o.FinetuneSteps*o.BatchSize, o.Seed+1), task.Mapping(o.Eval, o.Seed+2000)
	before, err := Accuracy(m, heldMap)
	if err != nil {
		return nil, err
	}
	o.logf("pre-trained: %.0f%% on held-out copy/reverse, %.0f%% on the new mapping task\n", 100*rep.CopyAcc, 100*before)

	for _, method := range o.Methods {
		res, err := finetune(m, method, trainMap, heldMap, task, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		res.Before = before
		rep.Results = append(rep.Results, *res)
	}
	return rep, nil
}

// finetune copies the pre-trained model, applies method and trains it on
// the mapping task.
func finetune(base *nn.Model, method string, train, held []data.Record, task *Task, o Options) (*Result, error) {
	m := clone(base)
	defer m.Release()
	lr := map[string]float64{paca.MethodFull: 1e-3}[method]
	if lr == 0 {
		lr = 1e-2
	}
	a, err := paca.Apply(m, paca.Config{Method: method, Rank: o.Rank, Alpha: float64(2 * o.Rank), Seed: o.Seed})
	if err != nil {
		return nil, err
	}
	tr, _ := a.Counts()
	res := &Result{Method: method, Trainable: tr, TotalSteps: o.FinetuneSteps}
	tc := paca.TrainConfig{Optimizer: "adamw", LR: lr, Schedule: "linear", Warmup: o.FinetuneSteps / 10,
		MaxGradNorm: 1, BatchSize: o.BatchSize, SeqLen: task.MaxSeq(), Steps: o.FinetuneSteps}
	t, err := paca.NewTrainer(a, train, tc)
	if err != nil {
		return nil, err
	}
	defer t.Release()
	tensor.ResetPeak()
	start := time.Now()
	o.logf("fine-tuning with %s (%d trainable parameters)\n", method, tr)
	err = t.Run(context.Background(), func(s paca.StepLog) error {
		res.Losses = append(res.Losses, s.Loss)
		if s.Step%50 == 0 || s.Step == tc.Steps {
			o.logf("  step %d/%d  loss %.4f\n", s.Step, tc.Steps, s.Loss)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.StepTime = time.Since(start) / time.Duration(o.FinetuneSteps)
	peak := tensor.MemStats()
	res.PeakBytes = peak.PeakTotal - int64(base.NumParams())*4 // less the pre-trained model kept aside
	res.PeakSaved = peak.Peak[tensor.Saved]
	res.FinalLoss = res.Losses[len(res.Losses)-1]
	if res.After, err = Accuracy(m, held); err != nil {
		return nil, err
	}
	o.logf("  held-out accuracy %.0f%%\n", 100*res.After)
	return res, nil
}

// clone returns a copy of m's weights in a new model.
func clone(m *nn.Model) *nn.Model {
	c := nn.NewRandom(m.Config, 0)
	src, dst := m.Params(), c.Params()
	for i := range src {
		copy(dst[i].T.Data(), src[i].T.Data())
	}
	return c
}
