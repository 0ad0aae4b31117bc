package paca

import (
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// Full is full fine-tuning of one linear: W (and its bias) are trainable.
// Its gradient dL/dW is the reference the other methods are checked
// against; it saves the whole input x for dW = dyᵀ x.
type Full struct {
	base *nn.Linear
}

// NewFull makes base's weight and bias trainable.
func NewFull(base *nn.Linear) *Full {
	for _, t := range []*tensor.Tensor{base.W, base.B} {
		if t != nil {
			t.SetRequiresGrad(true)
			t.SetCategory(tensor.Trainable)
		}
	}
	return &Full{base: base}
}

// Forward computes x Wᵀ + b.
func (f *Full) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	return f.base.Forward(tp, x)
}

// Trainable returns the weight and bias under their checkpoint names.
func (f *Full) Trainable() []nn.Param {
	ps := []nn.Param{{Name: "weight", T: f.base.W}}
	if f.base.B != nil {
		ps = append(ps, nn.Param{Name: "bias", T: f.base.B})
	}
	return ps
}

// Merged returns a copy of W.
func (f *Full) Merged() *tensor.Tensor { return f.base.W.Clone(tensor.Frozen) }

// Base returns the linear itself; the model releases its tensors.
func (f *Full) Base() *nn.Linear { return f.base }

// Release frees the gradients; the weights belong to the model.
func (f *Full) Release() {
	for _, t := range []*tensor.Tensor{f.base.W, f.base.B} {
		if t != nil {
			t.Grad.Release()
			t.Grad = nil
		}
	}
}
