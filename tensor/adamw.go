package tensor

import (
	"fmt"
	"math"
)

// adamwMinWork is the number of elements below which the AdamW update runs
// on the calling goroutine: the kernel is memory-bound and a goroutine per
// core only pays off for tensors of tens of thousands of values.
const adamwMinWork = 1 << 15

// AdamW implements Backend.AdamW in float32, following the operation order
// of torch.optim.AdamW's single-tensor path: decay, moments, then
// p −= (lr/bc1)·m / (√v/√bc2 + eps).
func (cpuBackend) AdamW(p, g, m, v *Tensor, lr, beta1, beta2, eps, weightDecay, bc1, bc2 float64) {
	ps, gs, ms, vs := p.Data(), g.Data(), m.Data(), v.Data()
	if len(gs) != len(ps) || len(ms) != len(ps) || len(vs) != len(ps) {
		panic(fmt.Sprintf("tensor: AdamW shapes p %v, g %v, m %v, v %v", p.shape, g.shape, m.shape, v.shape))
	}
	if !(bc1 > 0) || !(bc2 > 0) {
		panic(fmt.Sprintf("tensor: AdamW bias corrections must be positive, got bc1=%v bc2=%v", bc1, bc2))
	}
	// Scalars are formed in float64 and rounded once, as PyTorch does with
	// Python floats.
	decay := float32(1 - lr*weightDecay)
	stepSize := float32(lr / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	b1, b2 := float32(beta1), float32(beta2)
	b1c, b2c := float32(1-beta1), float32(1-beta2)
	e := float32(eps)
	RunJob(&adamWJobs, len(ps), adamwMinWork, adamWJob{ps: ps, gs: gs, ms: ms, vs: vs,
		decay: decay, stepSize: stepSize, bc2Sqrt: bc2Sqrt, b1: b1, b2: b2, b1c: b1c, b2c: b2c, e: e})
}

type adamWJob struct {
	ps, gs, ms, vs                                []float32
	decay, stepSize, bc2Sqrt, b1, b2, b1c, b2c, e float32
}

var adamWJobs Jobs[adamWJob]

func (j *adamWJob) Range(lo, hi int) {
	ps, gs, ms, vs := j.ps[lo:hi], j.gs[lo:hi], j.ms[lo:hi], j.vs[lo:hi]
	decay, stepSize, bc2Sqrt, b1, b2, b1c, b2c, e := j.decay, j.stepSize, j.bc2Sqrt, j.b1, j.b2, j.b1c, j.b2c, j.e
	for i := range ps {
		gi := gs[i]
		mi := b1*ms[i] + b1c*gi
		vi := b2*vs[i] + b2c*gi*gi
		ms[i], vs[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/bc2Sqrt + e
		ps[i] = ps[i]*decay - stepSize*mi/denom
	}
}
