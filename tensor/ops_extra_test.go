package tensor

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Gradient checks for the ops of ops_extra.go, in the style of ops_test.go:
// float64 references written with plain loops, central differences.

func TestScaleGradients(t *testing.T) {
	for si, shape := range [][]int{{1}, {3, 17}, {2, 5, 3}} {
		for _, s := range []float32{2, -0.5} {
			t.Run(fmt.Sprintf("%v_s%g", shape, s), func(t *testing.T) {
				seed := uint64(1000 + si)
				rng := gcRNG(seed)
				x := gcTensor(rng, Activation, 0, 1, shape...).SetRequiresGrad(true)
				defer x.Release()
				gcCheck(t, seed, []*Tensor{x},
					func(tp *Tape) *Tensor { return tp.Scale(x, s) },
					func(v [][]float64) []float64 {
						y := make([]float64, len(v[0]))
						for i, a := range v[0] {
							y[i] = float64(s) * a
						}
						return y
					})
			})
		}
	}
}

func TestAddScaledGradients(t *testing.T) {
	for si, shape := range [][]int{{1}, {3, 17}, {2, 5, 3}} {
		for mi, mask := range gcMasks(2) {
			t.Run(fmt.Sprintf("%v_%s", shape, gcMaskName(mask)), func(t *testing.T) {
				seed := uint64(1100 + 10*si + mi)
				rng := gcRNG(seed)
				a := gcTensor(rng, Activation, 0, 1, shape...)
				b := gcTensor(rng, Activation, 0, 1, shape...)
				ins := []*Tensor{a, b}
				defer gcRelease(ins...)
				gcSetGrad(ins, mask)
				const s = 1.75
				gcCheck(t, seed, ins,
					func(tp *Tape) *Tensor { return tp.AddScaled(a, b, s) },
					func(v [][]float64) []float64 {
						y := make([]float64, len(v[0]))
						for i := range y {
							y[i] = v[0][i] + s*v[1][i]
						}
						return y
					})
			})
		}
	}
}

func TestAddBiasGradients(t *testing.T) {
	for si, shape := range [][]int{{1, 1}, {3, 17}, {2, 5, 3}, {7}} {
		for mi, mask := range gcMasks(2) {
			t.Run(fmt.Sprintf("%v_%s", shape, gcMaskName(mask)), func(t *testing.T) {
				seed := uint64(1200 + 10*si + mi)
				rng := gcRNG(seed)
				c := shape[len(shape)-1]
				y := gcTensor(rng, Activation, 0, 1, shape...)
				b := gcTensor(rng, Frozen, 0.2, 1, c)
				ins := []*Tensor{y, b}
				defer gcRelease(ins...)
				gcSetGrad(ins, mask)
				gcCheck(t, seed, ins,
					func(tp *Tape) *Tensor { return tp.AddBias(y, b) },
					func(v [][]float64) []float64 {
						out := make([]float64, len(v[0]))
						for i := range out {
							out[i] = v[0][i] + v[1][i%c]
						}
						return out
					})
			})
		}
	}
}

func TestMulGradients(t *testing.T) {
	for si, shape := range [][]int{{1}, {3, 17}, {2, 5, 3}} {
		for mi, mask := range gcMasks(2) {
			t.Run(fmt.Sprintf("%v_%s", shape, gcMaskName(mask)), func(t *testing.T) {
				seed := uint64(1300 + 10*si + mi)
				rng := gcRNG(seed)
				a := gcTensor(rng, Activation, 0, 1, shape...)
				b := gcTensor(rng, Activation, 0.5, 1, shape...)
				ins := []*Tensor{a, b}
				defer gcRelease(ins...)
				gcSetGrad(ins, mask)
				gcCheck(t, seed, ins,
					func(tp *Tape) *Tensor { return tp.Mul(a, b) },
					func(v [][]float64) []float64 {
						y := make([]float64, len(v[0]))
						for i := range y {
							y[i] = v[0][i] * v[1][i]
						}
						return y
					})
			})
		}
	}
}

func TestMulColsGradients(t *testing.T) {
	for si, shape := range [][]int{{1, 1}, {3, 17}, {2, 5, 3}, {200, 4}, {6}} {
		for mi, mask := range gcMasks(2) {
			t.Run(fmt.Sprintf("%v_%s", shape, gcMaskName(mask)), func(t *testing.T) {
				seed := uint64(1400 + 10*si + mi)
				rng := gcRNG(seed)
				c := shape[len(shape)-1]
				y := gcTensor(rng, Activation, 0, 1, shape...)
				v := gcTensor(rng, Activation, 1, 0.5, c)
				ins := []*Tensor{y, v}
				defer gcRelease(ins...)
				gcSetGrad(ins, mask)
				gcCheck(t, seed, ins,
					func(tp *Tape) *Tensor { return tp.MulCols(y, v) },
					func(in [][]float64) []float64 {
						out := make([]float64, len(in[0]))
						for i := range out {
							out[i] = in[0][i] * in[1][i%c]
						}
						return out
					})
			})
		}
	}
}

// MulCols saves exactly the operand each gradient reads.
func TestMulColsSaves(t *testing.T) {
	const n, c = 5, 7
	for mi, mask := range gcMasks(2) {
		t.Run(gcMaskName(mask), func(t *testing.T) {
			rng := gcRNG(uint64(1450 + mi))
			y := gcTensor(rng, Activation, 0, 1, n, c)
			v := gcTensor(rng, Activation, 0, 1, c)
			gcSetGrad([]*Tensor{y, v}, mask)
			before := MemStats().Live[Saved]
			tp := NewTape()
			out := tp.MulCols(y, v)
			var want int64
			if mask[0] {
				want += c * 4 // v, for dy
			}
			if mask[1] {
				want += n * c * 4 // y, for dv
			}
			assert.Equal(t, want, MemStats().Live[Saved]-before)
			tp.Reset()
			assert.Equal(t, before, MemStats().Live[Saved])
			gcRelease(out, y, v)
		})
	}
}

// refDropout applies the mask the op draws (dropoutMask) with plain loops.
func refDropout(x []float64, p float64, seed uint64) []float64 {
	keep := make([]bool, len(x))
	dropoutMask(len(x), p, seed, func(lo, hi int, k func() bool) {
		for i := lo; i < hi; i++ {
			keep[i] = k()
		}
	})
	y := make([]float64, len(x))
	for i := range x {
		if keep[i] && p < 1 {
			y[i] = x[i] / (1 - p)
		}
	}
	return y
}

func TestDropoutGradients(t *testing.T) {
	for si, shape := range [][]int{{1}, {3, 17}, {2, 5, 3}, {3, 1500}} {
		for _, p := range []float64{0, 0.1, 0.5, 1} {
			t.Run(fmt.Sprintf("%v_p%g", shape, p), func(t *testing.T) {
				seed := uint64(1500 + si)
				rng := gcRNG(seed)
				x := gcTensor(rng, Activation, 0, 1, shape...).SetRequiresGrad(true)
				defer x.Release()
				ds := seed * 77
				gcCheck(t, seed, []*Tensor{x},
					func(tp *Tape) *Tensor { return tp.Dropout(x, p, ds) },
					func(v [][]float64) []float64 { return refDropout(v[0], p, ds) })
			})
		}
	}
}

// The mask: each element dropped with probability p, kept ones scaled by
// 1/(1−p), a pure function of the seed (not of the number of workers),
// and different seeds give different masks. Dropout saves nothing.
func TestDropoutMask(t *testing.T) {
	const n, p = 100_000, 0.3
	x := New(Activation, n)
	for i := range x.Data() {
		x.Data()[i] = 1
	}
	x.SetRequiresGrad(true)
	defer x.Release()

	before := MemStats().Live[Saved]
	tp := NewTape()
	y := tp.Dropout(x, p, 42)
	defer y.Release()
	assert.Equal(t, before, MemStats().Live[Saved], "Dropout must save nothing")
	assert.Equal(t, 1, tp.Len())
	tp.Reset()

	dropped := 0
	for _, v := range y.Data() {
		switch v {
		case 0:
			dropped++
		case float32(1 / (1 - p)):
		default:
			t.Fatalf("unexpected value %v", v)
		}
	}
	frac := float64(dropped) / n
	sd := math.Sqrt(p * (1 - p) / n)
	assert.InDelta(t, p, frac, 5*sd, "fraction dropped")

	old := runtime.GOMAXPROCS(1)
	y1 := (*Tape)(nil).Dropout(x, p, 42)
	runtime.GOMAXPROCS(old)
	defer y1.Release()
	assert.Equal(t, y.Data(), y1.Data(), "mask depends on the number of workers")

	y2 := (*Tape)(nil).Dropout(x, p, 43)
	defer y2.Release()
	same := 0
	for i := range y2.Data() {
		if y2.Data()[i] == y.Data()[i] {
			same++
		}
	}
	// Independent masks agree on a fraction p² + (1−p)² of the elements.
	assert.InDelta(t, p*p+(1-p)*(1-p), float64(same)/n, 0.01)
	require.Panics(t, func() { (*Tape)(nil).Dropout(x, 1.5, 1) })
}
