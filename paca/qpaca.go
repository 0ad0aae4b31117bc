package paca

import (
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// NewQPaCA is PaCA on a 4-bit base (the paper's QPaCA): W is stored in
// NF4 and dequantized for each GEMM, while the r adapted columns keep their
// full-precision values, so W_eff[:, I] = W[:, I] + s·Δ exactly as in
// PaCA and only the untrained columns carry quantization error. The
// float32 base weight is released.
func NewQPaCA(base *nn.Linear, indices []int, alpha float64, doubleQuant bool) (*PaCA, error) {
	p, err := NewPaCA(base, indices, alpha)
	if err != nil {
		return nil, err
	}
	w := base.W.AsFloat32(tensor.Scratch)
	p.q = QuantizeNF4(w.Data(), w.Dim(0), w.Dim(1), doubleQuant)
	tensor.Track(tensor.Frozen, p.q.Bytes())
	w.Release()
	base.W.Release()
	base.W = nil
	return p, nil
}
