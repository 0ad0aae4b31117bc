package paca

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// The packed image that a device dequantizes from gives, through the
// backend's DequantizeNF4, bit for bit what NF4.Dequantize gives.
func TestNF4PackedDequantizeMatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		rows, cols int
		double     bool
	}{{3, 5, false}, {7, 19, true}, {64, 130, true}, {1, 1, false}} {
		w := make([]float32, tc.rows*tc.cols)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		q := QuantizeNF4(w, tc.rows, tc.cols, tc.double)
		want := make([]float32, len(w))
		q.Dequantize(want)
		got := tensor.New(tensor.Scratch, tc.rows, tc.cols)
		tensor.CurrentBackend().DequantizeNF4(got, q.packed())
		assert.Equal(t, want, got.Data(), "%+v", tc)
		got.Release()
		q.release()
		tensor.Track(tensor.Frozen, q.Bytes()) // packed took out what this test never tracked
	}
}

// DoRA's inverse row norms from the backend's DoRANorms match 1/weightNorm.
func TestDoRAInvNormsMatchWeightNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	base := &nn.Linear{W: tensor.New(tensor.Frozen, 9, 13)}
	for i := range base.W.Data() {
		base.W.Data()[i] = float32(rng.NormFloat64())
	}
	d, err := NewDoRA(base, 4, 8, false, 0, rng)
	require.NoError(t, err)
	for i := range d.B.Data() {
		d.B.Data()[i] = float32(rng.NormFloat64())
	}
	inv := d.invNorms()
	for o, n := range d.weightNorm() {
		assert.InDelta(t, 1/n, float64(inv.Data()[o]), 1e-6/n, "row %d", o)
	}
	inv.Release()
	d.Release()
	base.W.Release()
}
