package paca

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// DoRA is HF PEFT's LoRA with use_dora=True (DoraLinearVariant and
// DoraLinearLayer in peft/tuners/lora): a LoRA adapter whose adapted
// weight is renormalised row by row to a trained magnitude m (out),
//
//	y = b + (m / ‖W + s·B A‖_row) ⊙ (x Wᵀ + s·(x Aᵀ) Bᵀ)
//
// where the row norm is detached: it follows A and B in the forward pass
// but passes no gradient (DoRA paper §4.3, PEFT's weight_norm.detach()).
//
// With dropout active PEFT computes the base product twice, once on x and
// once on dropout(x), and so does DoRA here:
//
//	y = x Wᵀ + b + (g − 1) ⊙ x̃ Wᵀ + g ⊙ s·(x̃ Aᵀ) Bᵀ,  x̃ = dropout(x), g = m/‖·‖.
//
// The row norms come from the Gram form ‖W_o‖² + 2s·B_o·(W Aᵀ)_o +
// s²·B_o (A Aᵀ) B_oᵀ, with ‖W_o‖² cached: no (out, in) temporary.
type DoRA struct {
	LoRA
	// M is the magnitude, PEFT's lora_magnitude_vector (out).
	M *tensor.Tensor

	wNorm2 []float64      // ‖W_o‖² per output row (W is frozen)
	norms  []float64      // weightNorm's result, reused from pass to pass
	w2     *tensor.Tensor // wNorm2 in tensor memory, for invNorms on a device
}

// NewDoRA wraps base with a rank-r DoRA adapter: A and B as NewLoRA, and
// m = ‖W + s·B A‖_row, which is ‖W‖_row since B starts at zero, so the
// layer starts equal to the base. It fails on a rank or dropout NewLoRA
// refuses and on an all-zero row of W, whose direction is undefined.
func NewDoRA(base *nn.Linear, r int, alpha float64, rsLoRA bool, dropout float64, rng *rand.Rand) (*DoRA, error) {
	if r < 1 {
		return nil, fmt.Errorf("DoRA rank %d < 1", r)
	}
	if dropout < 0 || dropout > 1 || math.IsNaN(dropout) {
		return nil, fmt.Errorf("DoRA dropout %v outside [0, 1]", dropout)
	}
	out, in := base.W.Dim(0), base.W.Dim(1)
	w2 := make([]float64, out)
	w := base.W.AsFloat32(tensor.Scratch)
	defer w.Release()
	wd := w.Data()
	for o := range w2 {
		var s float64
		for _, v := range wd[o*in : (o+1)*in] {
			s += float64(v) * float64(v)
		}
		if s == 0 {
			return nil, fmt.Errorf("DoRA: row %d of the weight is zero", o)
		}
		w2[o] = s
	}
	d := &DoRA{LoRA: *NewLoRA(base, r, alpha, rsLoRA, dropout, rng), wNorm2: w2}
	d.M = tensor.New(tensor.Trainable, out)
	for o, n := range d.weightNorm() {
		d.M.Data()[o] = float32(n)
	}
	d.M.SetRequiresGrad(true)
	return d, nil
}

// weightNorm returns ‖W + s·B A‖ per output row, in float64, from the
// current A and B. The slice is d's, valid until the next call.
func (d *DoRA) weightNorm() []float64 {
	be := tensor.CurrentBackend()
	w, a, b := d.base.W, d.A, d.B
	out, r := w.Dim(0), a.Dim(0)
	aw := tensor.New(tensor.Scratch, r, out) // A Wᵀ = (W Aᵀ)ᵀ: W is Gemm's second operand, which may be 16-bit
	be.Gemm(false, true, 1, a, w, 0, aw)
	g := tensor.New(tensor.Scratch, r, r) // A Aᵀ
	be.Gemm(false, true, 1, a, a, 0, g)
	s := float64(d.Scale)
	aws, gs, bs := aw.Data(), g.Data(), b.Data()
	if cap(d.norms) < out {
		d.norms = make([]float64, out)
	}
	norms := d.norms[:out]
	for o := range norms {
		bo := bs[o*r : (o+1)*r]
		var cross, quad float64
		for i, bi := range bo {
			cross += float64(bi) * float64(aws[i*out+o])
			var gb float64
			for j, bj := range bo {
				gb += float64(gs[i*r+j]) * float64(bj)
			}
			quad += float64(bi) * gb
		}
		norms[o] = math.Sqrt(max(d.wNorm2[o]+2*s*cross+s*s*quad, 0))
	}
	aw.Release()
	g.Release()
	return norms
}

// invNorms returns 1/‖W + s·B A‖ per output row (out) as weightNorm
// computes it, but on the backend's kernels (DoRANorms): on a GPU the
// values stay on the device.
func (d *DoRA) invNorms() *tensor.Tensor {
	be := tensor.CurrentBackend()
	w, a := d.base.W, d.A
	out, r := w.Dim(0), a.Dim(0)
	if d.w2 == nil {
		d.w2 = tensor.New(tensor.Frozen, out)
		for o, v := range d.wNorm2 {
			d.w2.Data()[o] = float32(v)
		}
	}
	wa := tensor.New(tensor.Scratch, out, r) // W Aᵀ
	be.Gemm(false, true, 1, w, a, 0, wa)
	g := tensor.New(tensor.Scratch, r, r) // A Aᵀ
	be.Gemm(false, true, 1, a, a, 0, g)
	inv := tensor.New(tensor.Activation, out)
	be.DoRANorms(inv, d.w2, wa, g, d.B, float64(d.Scale))
	wa.Release()
	g.Release()
	return inv
}

// magScale returns g = m / ‖W + s·B A‖_row (out) on the tape: the norm
// is a constant, m gets the gradient.
func (d *DoRA) magScale(tp *tensor.Tape) *tensor.Tensor {
	var inv *tensor.Tensor
	if tensor.OnDevice() {
		inv = d.invNorms()
	} else {
		norms := d.weightNorm()
		inv = tensor.New(tensor.Activation, len(norms))
		for o, n := range norms {
			inv.Data()[o] = float32(1 / n)
		}
	}
	g := tp.Mul(d.M, inv)
	inv.Release()
	return g
}

// Forward computes the DoRA output; see the type's comment.
func (d *DoRA) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	g := d.magScale(tp)
	defer g.Release()
	xd, dropped := d.dropoutInput(tp, x)
	if !dropped {
		// b + g ⊙ (x Wᵀ + s·z): one base product.
		c0 := tp.Linear(x, d.base.W, nil)
		z := d.lowRank(tp, x)
		c := tp.AddScaled(c0, z, d.Scale)
		c0.Release()
		z.Release()
		y := tp.MulCols(c, g)
		c.Release()
		if d.base.B == nil {
			return y
		}
		yb := tp.AddBias(y, d.base.B)
		y.Release()
		return yb
	}
	base := tp.Linear(x, d.base.W, d.base.B)
	bd := tp.Linear(xd, d.base.W, nil)
	z := d.lowRank(tp, xd)
	xd.Release()
	c := tp.AddScaled(bd, z, d.Scale)
	z.Release()
	t := tp.MulCols(c, g)
	c.Release()
	u := tp.AddScaled(t, bd, -1)
	t.Release()
	bd.Release()
	y := tp.Add(base, u)
	base.Release()
	u.Release()
	return y
}

// Trainable returns A, B and the magnitude under PEFT's checkpoint names
// (adapter_model.safetensors stores the magnitude as
// "….lora_magnitude_vector", without ".weight").
func (d *DoRA) Trainable() []nn.Param {
	return append(d.LoRA.Trainable(), nn.Param{Name: "lora_magnitude_vector", T: d.M})
}

// Merged returns (m / ‖W + s·B A‖_row) ⊙ (W + s·B A), PEFT's merge.
func (d *DoRA) Merged() *tensor.Tensor {
	w := d.LoRA.Merged()
	in := w.Dim(1)
	wd, m := w.Data(), d.M.Data()
	for o := range m {
		row := wd[o*in : (o+1)*in]
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		f := float64(m[o]) / math.Sqrt(s)
		for i, v := range row {
			row[i] = float32(float64(v) * f)
		}
	}
	return w
}

// Release frees A, B, the magnitude and their gradients.
func (d *DoRA) Release() {
	d.LoRA.Release()
	d.w2.Release()
	d.w2 = nil
	if d.M != nil {
		d.M.Grad.Release()
		d.M.Grad = nil
		d.M.Release()
		d.M = nil
	}
}
