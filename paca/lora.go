package paca

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// LoRA is HF PEFT's LoRA (peft.tuners.lora.Linear, use_dora=False) on one
// frozen linear projection:
//
//	y = x Wᵀ + b + s · (dropout(x) Aᵀ) Bᵀ
//
// with A (r, in), B (out, r) trainable and s = alpha/r (alpha/√r with
// rsLoRA). Forward is one op (see there) whose backward keeps what
// PyTorch keeps: the adapter input dropout(x) (n·in values, for dA) and
// the rank-r intermediate (n·r values, for dB). The frozen base product
// saves no activation. The input is shared with the base product, so when
// x itself is saved (no dropout) it is counted once, and once only across
// q/k/v or gate/up, which read the same x.
type LoRA struct {
	base *nn.Linear
	// A is lora_A.weight (r, in), B is lora_B.weight (out, r).
	A, B *tensor.Tensor
	// Scale is s: alpha/r, or alpha/√r with rsLoRA.
	Scale float32
	// Dropout is the probability p of torch.nn.Dropout on the adapter
	// input (PEFT's lora_dropout); it acts only while Training and only
	// on passes that record a tape (a nil tape means evaluation).
	Dropout float64
	// Training switches dropout on (PyTorch's module.train()). NewLoRA
	// sets it; SetTraining(false) is module.eval().
	Training bool

	drop *rand.PCG // dropout seeds; its state goes into training checkpoints
}

// NewLoRA wraps base with a rank-r LoRA adapter initialised as PEFT's
// init_lora_weights=True: A kaiming-uniform with a = √5, i.e. uniform in
// (−1/√in, 1/√in), B zero, so the adapted layer starts equal to the base.
// rng draws A and, later, the dropout masks; nil means a fixed seed. It
// panics on r < 1 or a dropout outside [0, 1].
func NewLoRA(base *nn.Linear, r int, alpha float64, rsLoRA bool, dropout float64, rng *rand.Rand) *LoRA {
	out, in := base.W.Dim(0), base.W.Dim(1)
	if r < 1 {
		panic(fmt.Sprintf("paca: LoRA rank %d < 1", r))
	}
	if dropout < 0 || dropout > 1 || math.IsNaN(dropout) {
		panic(fmt.Sprintf("paca: LoRA dropout %v outside [0, 1]", dropout))
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(0, 0))
	}
	a := tensor.New(tensor.Trainable, r, in)
	bound := 1 / math.Sqrt(float64(in))
	for i := range a.Data() {
		a.Data()[i] = float32((2*rng.Float64() - 1) * bound)
	}
	b := tensor.New(tensor.Trainable, out, r)
	a.SetRequiresGrad(true)
	b.SetRequiresGrad(true)
	return &LoRA{
		base:     base,
		A:        a,
		B:        b,
		Scale:    float32(LoRAScale(r, alpha, rsLoRA)),
		Dropout:  dropout,
		Training: true,
		drop:     rand.NewPCG(rng.Uint64(), rng.Uint64()),
	}
}

// LoRAScale is PEFT's scaling: alpha/r, or alpha/√r with rsLoRA.
func LoRAScale(r int, alpha float64, rsLoRA bool) float64 {
	if rsLoRA {
		return alpha / math.Sqrt(float64(r))
	}
	return alpha / float64(r)
}

// Rank is r.
func (l *LoRA) Rank() int { return l.A.Dim(0) }

// SetTraining switches dropout on or off (module.train() / .eval()).
func (l *LoRA) SetTraining(on bool) { l.Training = on }

// dropoutInput returns the adapter input: dropout(x) while training on a
// recording pass with p > 0, else x itself. owned says whether the caller
// must release it.
func (l *LoRA) dropoutInput(tp *tensor.Tape, x *tensor.Tensor) (xd *tensor.Tensor, owned bool) {
	if l.Dropout > 0 && l.Training && tp != nil {
		return tp.Dropout(x, l.Dropout, l.drop.Uint64()), true
	}
	return x, false
}

// lowRank returns (xd Aᵀ) Bᵀ, unscaled: the A product saves xd, the B
// product the (n, r) intermediate.
func (l *LoRA) lowRank(tp *tensor.Tape, xd *tensor.Tensor) *tensor.Tensor {
	h := tp.Linear(xd, l.A, nil)
	z := tp.Linear(h, l.B, nil)
	h.Release()
	return z
}

// Adapter returns the unscaled adapter branch (dropout(x) Aᵀ) Bᵀ (N, out);
// Forward adds Scale times it to the base output. Methods with another
// base product (quantized) reuse it.
func (l *LoRA) Adapter(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	xd, owned := l.dropoutInput(tp, x)
	z := l.lowRank(tp, xd)
	if owned {
		xd.Release()
	}
	return z
}

// Forward computes y = x Wᵀ + b + s·(x_d Aᵀ) Bᵀ, x_d = dropout(x), as one
// op with three GEMMs, the last accumulating into the base product:
//
//	h = x_d Aᵀ                     (N, r), saved with x_d
//	y = x Wᵀ + b + s·h Bᵀ          (N, out)
//
// and backward, the products of the chain rule in the same way:
//
//	dB  += s·dyᵀ h                 (out, r)
//	dh   = s·dy B                  (N, r)
//	dA  += dhᵀ x_d                 (r, in)
//	dx_d += dh A,  dx += dy W      (N, in); x_d is x without dropout
//
// Built from separate tape ops it would compute the same, but also write
// and read the unscaled branch, its gradient and the sum (three more
// (N, out) passes per projection).
func (l *LoRA) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	be := tensor.CurrentBackend()
	xd, owned := l.dropoutInput(tp, x)
	var shape [4]int
	y := tensor.New(tensor.Activation, outShape(shape[:0], x, l.B.Dim(0))...)
	be.Gemm(false, true, 1, x, l.base.W, 0, y)
	if l.base.B != nil {
		be.AddRowVector(y, l.base.B)
	}
	h := tensor.New(tensor.Activation, x.Rows(), l.Rank())
	be.Gemm(false, true, 1, xd, l.A, 0, h)
	be.Gemm(false, true, l.Scale, h, l.B, 1, y)
	if tp.Recording(x, xd, l.A, l.B, l.base.B) {
		tp.RecordOp(y, (*loraOp)(l), []*tensor.Tensor{x, xd, l.base.B}, xd, h)
	}
	h.Release()
	if owned {
		xd.Release()
	}
	return y
}

// loraOp is the backward of LoRA.Forward: in = (x, x_d, b), saved =
// (x_d, h).
type loraOp LoRA

func (op *loraOp) Backward(dy *tensor.Tensor, in, saved []*tensor.Tensor) {
	l, be := (*LoRA)(op), tensor.CurrentBackend()
	x, xd, b, h := in[0], in[1], in[2], saved[1]
	if l.B.RequiresGrad() {
		be.Gemm(true, false, l.Scale, dy, h, 1, tensor.GradOf(l.B))
	}
	if l.A.RequiresGrad() || xd.RequiresGrad() {
		dh := tensor.New(tensor.Scratch, h.Shape()...)
		be.Gemm(false, false, l.Scale, dy, l.B, 0, dh)
		if l.A.RequiresGrad() {
			be.Gemm(true, false, 1, dh, saved[0], 1, tensor.GradOf(l.A))
		}
		if xd.RequiresGrad() {
			be.Gemm(false, false, 1, dh, l.A, 1, tensor.GradOf(xd))
		}
		dh.Release()
	}
	if x.RequiresGrad() {
		be.Gemm(false, false, 1, dy, l.base.W, 1, tensor.GradOf(x))
	}
	if b != nil && b.RequiresGrad() {
		be.SumRows(tensor.GradOf(b), dy)
	}
}

// Trainable returns A and B under PEFT's names.
func (l *LoRA) Trainable() []nn.Param {
	return []nn.Param{{Name: "lora_A.weight", T: l.A}, {Name: "lora_B.weight", T: l.B}}
}

// Merged returns W + s·B A (out, in), accounted as Frozen.
func (l *LoRA) Merged() *tensor.Tensor {
	w := l.base.W.Convert(tensor.Frozen, tensor.Float32)
	tensor.CurrentBackend().Gemm(false, false, l.Scale, l.B, l.A, 1, w)
	return w
}

// Bias returns the base bias, or nil.
func (l *LoRA) Bias() *tensor.Tensor { return l.base.B }

// Base returns the frozen linear; the model owns and releases it.
func (l *LoRA) Base() *nn.Linear { return l.base }

// Release frees A, B and their gradients. The base belongs to the model.
func (l *LoRA) Release() {
	for _, p := range []**tensor.Tensor{&l.A, &l.B} {
		if *p != nil {
			(*p).Grad.Release()
			(*p).Grad = nil
			(*p).Release()
			*p = nil
		}
	}
}

// RNGState returns the state of the dropout stream, for checkpoints.
func (l *LoRA) RNGState() ([]byte, error) { return l.drop.MarshalBinary() }

// SetRNGState restores a state RNGState returned.
func (l *LoRA) SetRNGState(b []byte) error { return l.drop.UnmarshalBinary(b) }
