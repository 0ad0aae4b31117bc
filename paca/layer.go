package paca

import (
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// Layer is a fine-tuning method applied to one frozen linear projection
// of the model: it takes the projection's place in the decoder (it is an
// nn.Layer) and owns the trainable tensors of that module.
type Layer interface {
	nn.Layer
	// Trainable lists the layer's trainable tensors, named as HF PEFT names
	// them relative to the module ("paca_delta", "lora_A.weight", …).
	Trainable() []nn.Param
	// Merged returns the (out, in) weight of the equivalent plain linear,
	// W + ΔW, as a new tensor the caller releases; the bias is unchanged.
	Merged() *tensor.Tensor
	// Base returns the frozen linear the layer adapts. The model owns its
	// tensors; a quantized method keeps W in its own format and leaves
	// Base().W nil.
	Base() *nn.Linear
	// Release frees the layer's own tensors, not the base's.
	Release()
}
