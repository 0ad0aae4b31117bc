package paca

import (
	"fmt"
	"math"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
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
	BatchSize   int
	SeqLen      int // records are truncated to this many tokens
	Steps       int
}

// StepLog is what one optimizer step reports.
type StepLog struct {
	Step     int     // 1-based
	Loss     float64 // mean loss of the step's batch
	Tokens   int     // counted tokens
	LR       float64 // learning rate used
	GradNorm float64 // global gradient norm before clipping
}

// Optimizers lists the optimizer names TrainConfig accepts.
var Optimizers = []string{"sgd", "adamw"}

// Check validates the settings.
func (tc TrainConfig) Check() error {
	switch {
	case tc.Optimizer != "sgd" && tc.Optimizer != "adamw":
		return fmt.Errorf("unknown optimizer %q (want sgd or adamw)", tc.Optimizer)
	case !(tc.LR >= 0) || math.IsInf(tc.LR, 0):
		return fmt.Errorf("learning rate must be a non-negative number, got %g", tc.LR)
	case tc.WeightDecay < 0:
		return fmt.Errorf("weight decay must not be negative, got %g", tc.WeightDecay)
	case tc.MaxGradNorm < 0:
		return fmt.Errorf("max grad norm must not be negative (0 disables clipping), got %g", tc.MaxGradNorm)
	case tc.BatchSize < 1:
		return fmt.Errorf("batch size must be at least 1, got %d", tc.BatchSize)
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

// Batches lays records out in file order, batchSize at a time, wrapping
// around at the end; each record is truncated to seqLen tokens. Step k
// (0-based) uses records k·B … k·B+B−1 (mod len(recs)).
func Batches(recs []data.Record, batchSize, seqLen, steps int) []Batch {
	out := make([]Batch, steps)
	for k := range out {
		sel := make([]data.Record, batchSize)
		for j := range sel {
			r := recs[(k*batchSize+j)%len(recs)]
			if len(r.InputIDs) > seqLen {
				r.InputIDs, r.Labels = r.InputIDs[:seqLen], r.Labels[:seqLen]
			}
			sel[j] = r
		}
		var b Batch
		b.IDs, b.Labels, b.B, b.T = data.Pad(sel)
		out[k] = b
	}
	return out
}

// Train runs tc.Steps optimizer steps on a's trainable tensors over the
// batches, calling report after each step. A NaN or infinite loss stops
// training with an error naming the step.
func Train(a *Adapted, batches []Batch, tc TrainConfig, report func(StepLog)) error {
	if err := tc.Check(); err != nil {
		return err
	}
	sched, _ := nn.ParseSchedule(tc.Schedule)
	params := a.Trainable()
	if len(params) == 0 {
		return fmt.Errorf("nothing to train")
	}
	var opt nn.Optimizer
	if tc.Optimizer == "sgd" {
		opt = nn.NewSGD(params, tc.WeightDecay)
	} else {
		opt = nn.NewAdamW(params, orDefault(tc.Beta1, 0.9), orDefault(tc.Beta2, 0.999), orDefault(tc.Eps, 1e-8), tc.WeightDecay)
	}
	defer opt.Release()
	for k := 0; k < tc.Steps; k++ {
		b := batches[k%len(batches)]
		tp := tensor.NewTape()
		loss, n := a.Model.Loss(tp, b.IDs, b.Labels, b.B, b.T)
		l := float64(loss.Item())
		if math.IsNaN(l) || math.IsInf(l, 0) {
			tp.Reset()
			loss.Release()
			return fmt.Errorf("step %d: loss is %v", k+1, l)
		}
		tp.Backward(loss, 1)
		loss.Release()
		norm := nn.ClipGradNorm(params, tc.MaxGradNorm)
		if math.IsNaN(norm) || math.IsInf(norm, 0) {
			a.ZeroGrad()
			return fmt.Errorf("step %d: gradient norm is %v", k+1, norm)
		}
		lr := sched.LR(tc.LR, k, tc.Warmup, tc.Steps)
		opt.Step(lr)
		a.ZeroGrad()
		if report != nil {
			report(StepLog{Step: k + 1, Loss: l, Tokens: n, LR: lr, GradNorm: norm})
		}
	}
	return nil
}

func orDefault(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}
