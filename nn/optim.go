package nn

import (
	"fmt"
	"math"
	"sync"

	"github.com/gopaca/paca/tensor"
)

// Optimizer updates named trainable tensors in place from their gradients
// (Param.T.Grad). A parameter whose Grad is nil is skipped on that step, as
// PyTorch skips parameters whose .grad is None: its value and its state are
// left alone. Optimizers never zero or release gradients; that is the
// training loop's business.
type Optimizer interface {
	// Step applies one update with learning rate lr.
	Step(lr float64)
	// State lists the optimizer's state tensors by name (for AdamW
	// "exp_avg.<param name>" and "exp_avg_sq.<param name>"), for
	// checkpoints. The tensors are the live state, not copies: a resumed
	// run may copy saved values into them. Empty for plain SGD.
	State() []Param
	// StepCount is the number of Step calls so far.
	StepCount() int
	// SetStepCount restores the step count of a resumed run: n steps in
	// which every parameter was updated (as in paca.Train, where every
	// trainable tensor receives a gradient at every step).
	SetStepCount(n int)
	// Release frees the state tensors. The optimizer is unusable after.
	Release()
}

// checkParams panics on a parameter listed twice or without a tensor:
// both are programming errors (PyTorch rejects duplicates too).
func checkParams(opt string, params []Param) []Param {
	seen := make(map[*tensor.Tensor]string, len(params))
	for _, p := range params {
		if p.T == nil {
			panic(fmt.Sprintf("nn: %s: parameter %q has no tensor", opt, p.Name))
		}
		if prev, ok := seen[p.T]; ok {
			panic(fmt.Sprintf("nn: %s: parameters %q and %q are the same tensor", opt, prev, p.Name))
		}
		seen[p.T] = p.Name
	}
	return append([]Param(nil), params...)
}

// checkGrad panics when a gradient does not match its parameter.
func checkGrad(opt string, p Param) {
	if !tensor.SameShape(p.T, p.T.Grad) {
		panic(fmt.Sprintf("nn: %s: gradient of %q has shape %v, parameter %v", opt, p.Name, p.T.Grad.Shape(), p.T.Shape()))
	}
}

// ---------------------------------------------------------------- SGD

type sgd struct {
	params      []Param
	weightDecay float64
	steps       int
	released    bool
}

// NewSGD returns plain stochastic gradient descent with L2 weight decay,
// torch.optim.SGD with momentum 0:
//
//	p ← p − lr·(g + weightDecay·p)
//
// It keeps no state. It panics on a negative weight decay or a parameter
// listed twice.
func NewSGD(params []Param, weightDecay float64) Optimizer {
	if !(weightDecay >= 0) {
		panic(fmt.Sprintf("nn: SGD: invalid weight decay %v", weightDecay))
	}
	return &sgd{params: checkParams("SGD", params), weightDecay: weightDecay}
}

func (o *sgd) Step(lr float64) {
	if o.released {
		panic("nn: SGD: Step after Release")
	}
	be := tensor.CurrentBackend()
	for _, p := range o.params {
		g := p.T.Grad
		if g == nil {
			continue
		}
		checkGrad("SGD", p)
		if o.weightDecay != 0 {
			be.AddScaled(p.T, float32(-lr*o.weightDecay), p.T) // p ← (1 − lr·wd)·p
		}
		be.AddScaled(p.T, float32(-lr), g)
	}
	o.steps++
}

func (o *sgd) State() []Param { return nil }
func (o *sgd) StepCount() int { return o.steps }

func (o *sgd) SetStepCount(n int) { o.steps = n }
func (o *sgd) Release()           { o.released = true }

// ---------------------------------------------------------------- AdamW

type adamW struct {
	params                         []Param
	beta1, beta2, eps, weightDecay float64
	m, v                           []*tensor.Tensor // per parameter, accounted as tensor.Optimizer
	t                              []int            // per-parameter step count, as torch's state["step"]
	steps                          int
	released                       bool
}

// NewAdamW returns torch.optim.AdamW (amsgrad off, maximize off): for each
// parameter with a gradient, on its t-th update,
//
//	p ← p·(1 − lr·weightDecay)                 decoupled weight decay
//	m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
//	p ← p − lr·m̂ / (√v̂ + eps),   m̂ = m/(1 − β1ᵗ),  v̂ = v/(1 − β2ᵗ)
//
// The moments m and v are allocated at construction, zeroed, accounted as
// tensor.Optimizer, and updated on the current backend (Backend.AdamW).
// As in PyTorch, t counts the updates of each parameter: a parameter
// skipped for a nil gradient does not advance its bias correction.
//
// It panics on hyperparameters PyTorch rejects (β outside [0, 1), negative
// eps or weight decay) and on a parameter listed twice.
func NewAdamW(params []Param, beta1, beta2, eps, weightDecay float64) Optimizer {
	switch {
	case !(beta1 >= 0 && beta1 < 1):
		panic(fmt.Sprintf("nn: AdamW: invalid beta1 %v (want 0 ≤ β1 < 1)", beta1))
	case !(beta2 >= 0 && beta2 < 1):
		panic(fmt.Sprintf("nn: AdamW: invalid beta2 %v (want 0 ≤ β2 < 1)", beta2))
	case !(eps >= 0):
		panic(fmt.Sprintf("nn: AdamW: invalid eps %v", eps))
	case !(weightDecay >= 0):
		panic(fmt.Sprintf("nn: AdamW: invalid weight decay %v", weightDecay))
	}
	o := &adamW{
		params: checkParams("AdamW", params),
		beta1:  beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
		m: make([]*tensor.Tensor, len(params)),
		v: make([]*tensor.Tensor, len(params)),
		t: make([]int, len(params)),
	}
	for i, p := range o.params {
		o.m[i] = tensor.New(tensor.Optimizer, p.T.Shape()...)
		o.v[i] = tensor.New(tensor.Optimizer, p.T.Shape()...)
	}
	return o
}

func (o *adamW) Step(lr float64) {
	if o.released {
		panic("nn: AdamW: Step after Release")
	}
	be := tensor.CurrentBackend()
	for i, p := range o.params {
		g := p.T.Grad
		if g == nil {
			continue
		}
		checkGrad("AdamW", p)
		o.t[i]++
		t := float64(o.t[i])
		bc1 := 1 - math.Pow(o.beta1, t)
		bc2 := 1 - math.Pow(o.beta2, t)
		be.AdamW(p.T, g, o.m[i], o.v[i], lr, o.beta1, o.beta2, o.eps, o.weightDecay, bc1, bc2)
	}
	o.steps++
}

func (o *adamW) State() []Param {
	if o.released {
		return nil
	}
	st := make([]Param, 0, 2*len(o.params))
	for i, p := range o.params {
		st = append(st, Param{"exp_avg." + p.Name, o.m[i]}, Param{"exp_avg_sq." + p.Name, o.v[i]})
	}
	return st
}

func (o *adamW) StepCount() int { return o.steps }

func (o *adamW) SetStepCount(n int) {
	o.steps = n
	for i := range o.t {
		o.t[i] = n
	}
}

func (o *adamW) Release() {
	if o.released {
		return
	}
	for i := range o.params {
		o.m[i].Release()
		o.v[i].Release()
		o.m[i], o.v[i] = nil, nil
	}
	o.released = true
}

// ---------------------------------------------------------------- clipping

// ClipGradNorm is torch.nn.utils.clip_grad_norm_ with the L2 norm: it
// returns the total norm ‖(g₁, g₂, …)‖₂ over the gradients of all params
// (accumulated in float64; nil gradients are skipped) and, when maxNorm > 0,
// scales every gradient in place by min(1, maxNorm/(norm + 1e-6)). With
// maxNorm ≤ 0 it only measures.
//
// A NaN or infinite norm is returned as is; as in PyTorch, gradients are
// then left alone (NaN) or multiplied by 0 (+Inf, which turns infinite
// entries into NaN). Callers that care should check it and skip the step.
//
// Both passes run on the backend's kernels (SumSquares, Scale), where the
// gradients are: on a GPU only the norm comes back to the host. On the CPU
// the sum is deterministic: it does not depend on GOMAXPROCS.
func ClipGradNorm(params []Param, maxNorm float64) float64 {
	be := tensor.CurrentBackend()
	clipGrads.Lock()
	gs := clipGrads.free
	clipGrads.free = nil
	clipGrads.Unlock()
	for _, p := range params {
		if p.T != nil && p.T.Grad != nil {
			gs = append(gs, p.T.Grad)
		}
	}
	norm := math.Sqrt(be.SumSquares(gs))
	if maxNorm > 0 {
		coef := maxNorm / (norm + 1e-6)
		if coef < 1 { // min(1, coef); also leaves gradients alone for a NaN norm
			for _, g := range gs {
				be.Scale(g, float32(coef))
			}
		}
	}
	clear(gs)
	clipGrads.Lock()
	clipGrads.free = gs[:0]
	clipGrads.Unlock()
	return norm
}

// clipGrads recycles ClipGradNorm's list of gradients, so that clipping
// allocates nothing once warm.
var clipGrads struct {
	sync.Mutex
	free []*tensor.Tensor
}
