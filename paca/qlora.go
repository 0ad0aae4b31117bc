package paca

import (
	"math/rand/v2"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// QLoRA is LoRA on a 4-bit base (Dettmers et al., 2023): W is stored in
// NF4 and dequantized for each GEMM of the frozen product; the adapter
// branch is LoRA's, in full precision.
//
//	y = x deq(W)ᵀ + b + s · (dropout(x) Aᵀ) Bᵀ
type QLoRA struct {
	*LoRA
	q *NF4
}

// NewQLoRA quantizes base's weight (releasing the float32 copy) and
// attaches a LoRA adapter initialised as NewLoRA does.
func NewQLoRA(base *nn.Linear, r int, alpha float64, rsLoRA bool, dropout float64, doubleQuant bool, rng *rand.Rand) *QLoRA {
	l := NewLoRA(base, r, alpha, rsLoRA, dropout, rng)
	w := base.W.AsFloat32(tensor.Scratch)
	q := QuantizeNF4(w.Data(), w.Dim(0), w.Dim(1), doubleQuant)
	tensor.Track(tensor.Frozen, q.Bytes())
	w.Release()
	base.W.Release()
	base.W = nil
	return &QLoRA{LoRA: l, q: q}
}

// Forward computes the frozen 4-bit product plus the scaled adapter.
func (l *QLoRA) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	y := nf4Linear(tp, x, l.q, l.base.B)
	z := l.Adapter(tp, x)
	out := tp.AddScaled(y, z, l.Scale)
	y.Release()
	z.Release()
	return out
}

// Merged returns deq(W) + s·B A.
func (l *QLoRA) Merged() *tensor.Tensor {
	w := tensor.New(tensor.Frozen, l.q.Rows, l.q.Cols)
	l.q.Dequantize(w.Data())
	tensor.CurrentBackend().Gemm(false, false, l.Scale, l.B, l.A, 1, w)
	return w
}

// QuantizedLen is the number of weights held in NF4.
func (l *QLoRA) QuantizedLen() int { return l.q.Rows * l.q.Cols }

// Release frees the adapter and the quantized weight.
func (l *QLoRA) Release() {
	l.LoRA.Release()
	if l.q != nil {
		l.q.release()
		l.q = nil
	}
}

// nf4Linear is y = x deq(W)ᵀ + b for a frozen 4-bit W. The weight is
// dequantized into scratch memory for the forward GEMM and again for
// dx = dy deq(W) in backward, so no full-precision copy outlives a pass
// and no activation is saved.
func nf4Linear(tp *tensor.Tape, x *tensor.Tensor, q *NF4, b *tensor.Tensor) *tensor.Tensor {
	be := tensor.CurrentBackend()
	w := q.scratch()
	var shape [4]int
	y := tensor.New(tensor.Activation, outShape(shape[:0], x, q.Rows)...)
	be.Gemm(false, true, 1, x, w, 0, y)
	w.Release()
	if b != nil {
		be.AddRowVector(y, b)
	}
	if tp.Recording(x) {
		tp.RecordOp(y, (*nf4Op)(q), []*tensor.Tensor{x})
	}
	return y
}

// scratch returns deq(W) in scratch memory.
func (q *NF4) scratch() *tensor.Tensor {
	w := tensor.New(tensor.Scratch, q.Rows, q.Cols)
	q.dequantizeInto(w)
	return w
}

// nf4Op is nf4Linear's backward: dx += dy deq(W), in = (x).
type nf4Op NF4

func (op *nf4Op) Backward(dy *tensor.Tensor, in, _ []*tensor.Tensor) {
	w := (*NF4)(op).scratch()
	tensor.CurrentBackend().Gemm(false, false, 1, dy, w, 1, tensor.GradOf(in[0]))
	w.Release()
}
