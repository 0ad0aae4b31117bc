package tensor

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// LinearCrossEntropy gives the loss and gradients of Linear followed by
// CrossEntropy (themselves checked against finite differences), for every
// combination of trained inputs, block sizes that do and do not divide N,
// ignored targets and a loss scale other than 1.
func TestLinearCrossEntropyMatchesComposition(t *testing.T) {
	defer func(r int) { LCERows = r }(LCERows)
	const c, v = 7, 23
	targets := []int32{3, -100, 0, 22, 5, 5, -100, 11, 1, 9, 2}
	n := len(targets)
	for _, rows := range []int{1, 4, 11, 128} {
		for _, mask := range [][2]bool{{true, true}, {true, false}, {false, true}} {
			t.Run(fmt.Sprintf("rows%d_h%v_w%v", rows, mask[0], mask[1]), func(t *testing.T) {
				LCERows = rows
				rng := gcRNG(uint64(rows))
				h := gcTensor(rng, Activation, 0, 1, n, c).SetRequiresGrad(mask[0])
				w := gcTensor(rng, Frozen, 0, 0.7, v, c).SetRequiresGrad(mask[1])
				defer gcRelease(h, w)

				run := func(fused bool) (loss float32, dh, dw []float32) {
					tp := NewTape()
					var l *Tensor
					var count int
					if fused {
						l, count = tp.LinearCrossEntropy(h, w, targets)
					} else {
						z := tp.Linear(h, w, nil)
						l, count = tp.CrossEntropy(z, targets)
						z.Release()
					}
					require.Equal(t, 9, count)
					tp.Backward(l, 0.75)
					loss = l.Item()
					l.Release()
					for _, p := range []struct {
						x   *Tensor
						out *[]float32
					}{{h, &dh}, {w, &dw}} {
						if p.x.Grad != nil {
							*p.out = append([]float32(nil), p.x.Grad.Data()...)
							p.x.Grad.Release()
							p.x.Grad = nil
						}
					}
					return
				}
				wantL, wantH, wantW := run(false)
				gotL, gotH, gotW := run(true)
				require.InDelta(t, wantL, gotL, 1e-6)
				require.Equal(t, wantH == nil, gotH == nil)
				require.Equal(t, wantW == nil, gotW == nil)
				if wantH != nil {
					require.Less(t, relErr32(gotH, wantH), 1e-6, "dh")
				}
				if wantW != nil {
					require.Less(t, relErr32(gotW, wantW), 1e-6, "dW")
				}
			})
		}
	}
}

// With a 16-bit frozen W, untaped (evaluation), the loss is the one of the
// widened weight; with no counted target it is 0 and nothing is recorded.
func TestLinearCrossEntropyHalfAndEmpty(t *testing.T) {
	rng := gcRNG(9)
	h := gcTensor(rng, Activation, 0, 1, 5, 8)
	w := gcTensor(rng, Frozen, 0, 0.5, 13, 8)
	wh := w.Convert(Frozen, BFloat16)
	w32 := wh.AsFloat32(Scratch)
	defer gcRelease(h, w, wh, w32)
	targets := []int32{1, 2, 12, 0, -100}
	want, _ := (*Tape)(nil).LinearCrossEntropy(h, w32, targets)
	got, n := (*Tape)(nil).LinearCrossEntropy(h, wh, targets)
	require.Equal(t, 4, n)
	require.Equal(t, want.Item(), got.Item())
	gcRelease(want, got)

	tp := NewTape()
	h.SetRequiresGrad(true)
	l, n := tp.LinearCrossEntropy(h, wh, []int32{-100, -100, -100, -100, -100})
	require.Equal(t, 0, n)
	require.Equal(t, float32(0), l.Item())
	require.Empty(t, tp.nodes)
	l.Release()
	require.Panics(t, func() { tp.LinearCrossEntropy(h, wh, []int32{13, 0, 0, 0, 0}) })
}

// relErr32 is ‖got − want‖₂ / ‖want‖₂.
func relErr32(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}
