package paca

import (
	"fmt"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// PaCA fine-tunes r input columns of a frozen linear weight W (out, in).
//
// The trainable tensor is Δ (out, r), zero at the start, scaled by
// s = alpha/r. The layer computes
//
//	y = x W_effᵀ + b,   W_eff = W with columns I replaced by W[:, I] + s·Δ   (1)
//
// as one GEMM: W's storage holds W_eff, rewritten from the original
// columns before every forward pass (out·r values, nothing per token).
// Backward needs only the selected input columns x[..., I]:
//
//	dx = dy W_eff          (2)
//	dΔ = s · dyᵀ x[..., I]  (3)
//
// so dΔ/s equals columns I of full fine-tuning's dL/dW (TestPaCAGradient
// checks this on every layer of the golden models).
//
// With a quantized base (QPaCA) W is held in NF4; each pass dequantizes it
// into scratch memory and writes the columns there, the original ones kept
// in float32. A 16-bit base (bf16 or f16) keeps W's original values, which
// only the GEMM widens, so (1) and (2) are computed as the base product
// plus the update of the adapted columns instead:
//
//	y  = x Wᵀ + s · x[..., I] Δᵀ + b           (1′)
//	dx = dy W + s · (dy Δ) scattered to I      (2′)
//
// two more skinny GEMMs (N·out·r each), no float32 copy of W.
type PaCA struct {
	base    *nn.Linear     // W holds W_eff if float32; nil when quantized
	q       *NF4           // quantized W (QPaCA), or nil
	orig    *tensor.Tensor // (out, r) original columns W[:, I], frozen
	Indices []int          // I, sorted and distinct
	Delta   *tensor.Tensor // Δ (out, r), trainable
	Scale   float32        // s = alpha / r
	Alpha   float64
}

// NewPaCA adapts base on the given sorted, distinct input columns.
func NewPaCA(base *nn.Linear, indices []int, alpha float64) (*PaCA, error) {
	out, in := base.W.Dim(0), base.W.Dim(1)
	if err := checkIndices(indices, in); err != nil {
		return nil, err
	}
	r := len(indices)
	p := &PaCA{
		base:    base,
		orig:    tensor.New(tensor.Frozen, out, r),
		Indices: indices,
		Delta:   tensor.New(tensor.Trainable, out, r).SetRequiresGrad(true),
		Scale:   float32(alpha / float64(r)),
		Alpha:   alpha,
	}
	w := base.W.AsFloat32(tensor.Scratch)
	tensor.CurrentBackend().GatherCols(p.orig, w, indices)
	w.Release()
	return p, nil
}

// checkIndices requires 0 < r ≤ in and sorted, distinct, in-range indices.
func checkIndices(idx []int, in int) error {
	if len(idx) == 0 || len(idx) > in {
		return fmt.Errorf("rank %d must be between 1 and the layer's %d input features", len(idx), in)
	}
	for j, c := range idx {
		if c < 0 || c >= in {
			return fmt.Errorf("index %d at %d is outside [0, %d)", c, j, in)
		}
		if j > 0 && c <= idx[j-1] {
			return fmt.Errorf("indices must be sorted and distinct: %d follows %d at %d", c, idx[j-1], j)
		}
	}
	return nil
}

// inFeatures is the number of input columns of W.
func (p *PaCA) inFeatures() int {
	if p.q != nil {
		return p.q.Cols
	}
	return p.base.W.Dim(1)
}

// Rank is r, the number of adapted columns.
func (p *PaCA) Rank() int { return len(p.Indices) }

// weight returns W_eff (out, in) for one GEMM, to be released: the base
// weight itself, or a scratch copy widened from NF4 (QPaCA) or 16 bits.
func (p *PaCA) weight() *tensor.Tensor {
	var w *tensor.Tensor
	if p.q != nil {
		w = tensor.New(tensor.Scratch, p.q.Rows, p.q.Cols)
		p.q.dequantizeInto(w)
	} else {
		w = p.base.W.AsFloat32(tensor.Scratch)
	}
	p.writeColumns(w)
	return w
}

// writeColumns sets w[:, I] = W[:, I] + s·Δ, equation (1): the columns are
// zeroed (x − x = 0 exactly), then the original and the scaled update are
// added.
func (p *PaCA) writeColumns(w *tensor.Tensor) {
	be := tensor.CurrentBackend()
	cur := tensor.New(tensor.Scratch, p.orig.Shape()...)
	be.GatherCols(cur, w, p.Indices)
	be.ScatterAddCols(w, -1, cur, p.Indices)
	cur.Release()
	be.ScatterAddCols(w, 1, p.orig, p.Indices)
	be.ScatterAddCols(w, p.Scale, p.Delta, p.Indices)
}

// Forward computes (1) with one GEMM and saves x[..., I] for (3).
func (p *PaCA) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	be := tensor.CurrentBackend()
	b := p.base.B
	var shape [4]int
	y := tensor.New(tensor.Activation, outShape(shape[:0], x, p.Delta.Dim(0))...) // (N, out)
	var xI *tensor.Tensor                                                         // (N, r)
	if p.halfBase() {                                                             // (1′)
		xI = tensor.New(tensor.Activation, x.Rows(), p.Rank())
		be.GatherCols(xI, x, p.Indices)
		be.Gemm(false, true, 1, x, p.base.W, 0, y)
		be.Gemm(false, true, p.Scale, xI, p.Delta, 1, y)
	} else { // (1)
		w := p.weight()
		be.Gemm(false, true, 1, x, w, 0, y)
		w.Release()
	}
	if b != nil {
		be.AddRowVector(y, b)
	}
	if tp.Recording(x, p.Delta, b) {
		if xI == nil {
			xI = tensor.New(tensor.Activation, x.Rows(), p.Rank())
			be.GatherCols(xI, x, p.Indices)
		}
		tp.RecordOp(y, (*pacaOp)(p), []*tensor.Tensor{x, b}, xI)
	}
	xI.Release() // the tape holds it now, if it needs it
	return y
}

// halfBase reports whether W is a 16-bit weight, kept as it is.
func (p *PaCA) halfBase() bool { return p.q == nil && p.base.W.DType() != tensor.Float32 }

// outShape appends x's shape with its last dimension set to cols to dst.
func outShape(dst []int, x *tensor.Tensor, cols int) []int {
	dst = append(dst, x.Shape()...)
	dst[len(dst)-1] = cols
	return dst
}

// pacaOp is the backward of PaCA.Forward: in = (x, b), saved = (x[..., I]).
type pacaOp PaCA

func (op *pacaOp) Backward(dy *tensor.Tensor, in, saved []*tensor.Tensor) {
	p, be := (*PaCA)(op), tensor.CurrentBackend()
	x, b, xI := in[0], in[1], saved[0]
	switch {
	case x.RequiresGrad() && p.halfBase(): // (2′)
		dx := tensor.GradOf(x)
		be.Gemm(false, false, 1, dy, p.base.W, 1, dx)
		dyD := tensor.New(tensor.Scratch, xI.Shape()...) // (N, r)
		be.Gemm(false, false, p.Scale, dy, p.Delta, 0, dyD)
		be.ScatterAddCols(dx, 1, dyD, p.Indices)
		dyD.Release()
	case x.RequiresGrad(): // (2)
		w := p.weight()
		be.Gemm(false, false, 1, dy, w, 1, tensor.GradOf(x))
		w.Release()
	}
	if p.Delta.RequiresGrad() { // (3): (out, N)·(N, r)
		be.Gemm(true, false, p.Scale, dy, xI, 1, tensor.GradOf(p.Delta))
	}
	if b != nil && b.RequiresGrad() {
		be.SumRows(tensor.GradOf(b), dy)
	}
}

// Trainable returns Δ under HF PEFT's name.
func (p *PaCA) Trainable() []nn.Param { return []nn.Param{{Name: "paca_delta", T: p.Delta}} }

// Merged returns W_eff, the weight of the equivalent plain linear.
func (p *PaCA) Merged() *tensor.Tensor {
	w := p.weight()
	if w == p.base.W {
		m := w.Clone(tensor.Frozen)
		w.Release()
		return m
	}
	w.SetCategory(tensor.Frozen)
	return w
}

// Base returns the base linear, whose weight holds W_eff when float32,
// the original weight when 16-bit, and nil for QPaCA (quantized).
func (p *PaCA) Base() *nn.Linear { return p.base }

// Release frees Δ, the kept columns and, for QPaCA, the quantized weight.
func (p *PaCA) Release() {
	p.Delta.Grad.Release()
	p.Delta.Grad = nil
	p.Delta.Release()
	p.orig.Release()
	if p.q != nil {
		p.q.release()
		p.q = nil
	}
}
