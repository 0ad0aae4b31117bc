package paca

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/nn/safetensors"
)

// nf4Golden opens testdata/nf4/golden.safetensors, written by
// testdata/make_nf4_golden.py (an independent NumPy implementation).
func nf4Golden(t *testing.T) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(filepath.Join("..", "testdata", "nf4", "golden.safetensors"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func goldenF32(t *testing.T, f *safetensors.File, name string) []float32 {
	t.Helper()
	v, err := f.Float32(name)
	require.NoError(t, err, name)
	return v
}

func goldenU8(t *testing.T, f *safetensors.File, name string) []byte {
	t.Helper()
	ti, ok := f.Info(name)
	require.True(t, ok, name)
	require.Equal(t, safetensors.U8, ti.DType, name)
	return f.Raw(name)
}

// requireBits requires got and want to be bit-identical.
func requireBits(t *testing.T, want, got []float32, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			require.Failf(t, "values differ", "%s[%d]: want %v (%#08x), got %v (%#08x)", msg, i,
				want[i], math.Float32bits(want[i]), got[i], math.Float32bits(got[i]))
		}
	}
}

var nf4GoldenMats = []string{"a", "b", "c", "d", "e", "f", "g"}

func TestNF4Codebook(t *testing.T) {
	// The thresholds are bitsandbytes' float literals of the codebook
	// midpoints: each is one of the two float32 values nearest the exact
	// midpoint, and differs from the float32-rounded midpoint (c[k]+c[k+1])/2
	// exactly where that midpoint is halfway between two float32 values.
	var offByOne []int
	for k, th := range nf4Mid {
		exact := (float64(nf4Code[k]) + float64(nf4Code[k+1])) / 2 // exact in float64
		rounded := (nf4Code[k] + nf4Code[k+1]) / 2
		a := float32(math.Abs(float64(th)))
		ulp := float64(math.Nextafter32(a, 2) - a)
		require.LessOrEqual(t, math.Abs(float64(th)-exact), ulp/2, "threshold %d", k)
		require.Less(t, nf4Code[k], th)
		require.Less(t, th, nf4Code[k+1])
		if th != rounded {
			offByOne = append(offByOne, k)
			require.Equal(t, math.Float32bits(rounded), math.Float32bits(math.Nextafter32(th, rounded)))
		}
	}
	require.Equal(t, []int{0, 8, 12, 14}, offByOne)
	require.Equal(t, float32(-1), nf4Code[0])
	require.Equal(t, float32(0), nf4Code[nf4ZeroCode])
	require.Equal(t, float32(1), nf4Code[15])
	for k := range nf4Mid {
		require.Equal(t, byte(k), nf4Index(nf4Mid[k]), "a value on a threshold takes the lower code")
		require.Equal(t, byte(k+1), nf4Index(math.Nextafter32(nf4Mid[k], 2)))
	}
	for k, c := range nf4Code {
		require.Equal(t, byte(k), nf4Index(c))
	}
	require.Equal(t, byte(0), nf4Index(-1.5))
	require.Equal(t, byte(15), nf4Index(1.5))
	for b := range 256 {
		require.Equal(t, [2]float32{nf4Code[b>>4], nf4Code[b&15]}, nf4PairLUT[b])
	}
}

func TestNF4DynamicMapGolden(t *testing.T) {
	f := nf4Golden(t)
	requireBits(t, goldenF32(t, f, "dynamic_map"), dynMap[:], "dynamic_map")
	require.Equal(t, float32(0), dynMap[dynZeroCode])
	require.Equal(t, float32(1), dynMap[255])
	for k := 1; k < 256; k++ {
		require.Less(t, dynMap[k-1], dynMap[k])
	}
}

func TestNF4QuantizeDynamicGolden(t *testing.T) {
	f := nf4Golden(t)
	x := goldenF32(t, f, "dyn.x")
	codes, absmax := quantizeDynamic(x, NF4DoubleQuantBlockSize)
	require.Equal(t, goldenU8(t, f, "dyn.codes"), codes)
	requireBits(t, goldenF32(t, f, "dyn.absmax"), absmax, "dyn.absmax")

	// The fixture's first block is 1 and the 255 midpoints: every index
	// is a tie, and a tie goes to the even neighbour, so the indices run
	// 0, 2, 2, 4, 4, …; lower-index tie-breaking would fail the golden.
	for k := range 255 {
		require.Equal(t, dynMid[k], x[1+k])
		require.Equal(t, uint8(k+k&1), codes[1+k], "tie at midpoint %d", k)
	}
}

func TestNF4Golden(t *testing.T) {
	f := nf4Golden(t)
	for _, name := range nf4GoldenMats {
		t.Run(name, func(t *testing.T) {
			ti, ok := f.Info(name + ".w")
			require.True(t, ok)
			rows, cols := ti.Shape[0], ti.Shape[1]
			w := goldenF32(t, f, name+".w")
			codes := goldenU8(t, f, name+".codes")
			deq := goldenF32(t, f, name+".deq")

			q := QuantizeNF4(w, rows, cols, false)
			require.Equal(t, rows, q.Rows)
			require.Equal(t, cols, q.Cols)
			require.Equal(t, codes, q.Codes)
			requireBits(t, goldenF32(t, f, name+".absmax"), q.Absmax, "absmax")
			require.Nil(t, q.QAbsmax)
			got := make([]float32, rows*cols)
			q.Dequantize(got)
			requireBits(t, deq, got, "deq")

			dq := QuantizeNF4(w, rows, cols, true)
			require.Equal(t, codes, dq.Codes)
			require.Nil(t, dq.Absmax)
			require.Equal(t, goldenU8(t, f, name+".dq.qabsmax"), dq.QAbsmax)
			requireBits(t, goldenF32(t, f, name+".dq.absmax_scale"), dq.AbsmaxScale, "absmax_scale")
			requireBits(t, goldenF32(t, f, name+".dq.offset"), []float32{dq.AbsmaxOffset}, "offset")
			dq.Dequantize(got)
			requireBits(t, goldenF32(t, f, name+".dq.deq"), got, "dq.deq")

			// A column slice decodes the same bits.
			idx := []int{cols - 1, 0, cols / 2, cols - 1}
			for _, qq := range []*NF4{q, dq} {
				all := make([]float32, rows*cols)
				qq.Dequantize(all)
				part := make([]float32, rows*len(idx))
				qq.DequantizeCols(part, idx)
				for r := range rows {
					for k, c := range idx {
						require.Equal(t, math.Float32bits(all[r*cols+c]), math.Float32bits(part[r*len(idx)+k]))
					}
				}
			}
		})
	}
}

// TestNF4GoldenCoverage checks that the fixture exercises what the golden
// comparison is meant to catch: nibble order, ties on midpoints, the
// reciprocal multiply, zero blocks, a partial block, an odd length.
func TestNF4GoldenCoverage(t *testing.T) {
	f := nf4Golden(t)
	var swapped, ties, recip, zero, partial, odd int
	for _, name := range nf4GoldenMats {
		w := goldenF32(t, f, name+".w")
		codes := goldenU8(t, f, name+".codes")
		absmax := goldenF32(t, f, name+".absmax")
		for _, c := range codes {
			if c>>4 != c&15 {
				swapped++
			}
		}
		if len(w)%NF4BlockSize != 0 {
			partial++
		}
		if len(w)%2 == 1 {
			odd++
			require.Equal(t, byte(nf4ZeroCode), codes[len(codes)-1]&15, "pad nibble")
		}
		for b, a := range absmax {
			if a == 0 {
				zero++
				continue
			}
			inv := 1 / a
			for _, x := range w[b*NF4BlockSize : min((b+1)*NF4BlockSize, len(w))] {
				s := x * inv
				for _, m := range nf4Mid {
					if s == m {
						ties++
					}
				}
				if nf4Index(s) != nf4Index(x/a) {
					recip++
				}
			}
		}
	}
	t.Logf("bytes with distinct nibbles %d, midpoint ties %d, reciprocal-sensitive %d, zero blocks %d",
		swapped, ties, recip, zero)
	require.Greater(t, swapped, 1000)
	require.GreaterOrEqual(t, ties, 30)
	require.GreaterOrEqual(t, recip, 8)
	require.GreaterOrEqual(t, zero, 2)
	require.GreaterOrEqual(t, partial, 2)
	require.Equal(t, 1, odd)
}

// randWeight is a rows×cols weight of N(0, 1) values with a few outliers.
func randWeight(rng *rand.Rand, rows, cols int) []float32 {
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
		if rng.IntN(500) == 0 {
			w[i] *= 40
		}
	}
	return w
}

func TestNF4ErrorBound(t *testing.T) {
	var maxGap float32
	for k := range 15 {
		maxGap = max(maxGap, nf4Code[k+1]-nf4Code[k])
	}
	var maxDynGap float32
	for k := range 255 {
		maxDynGap = max(maxDynGap, dynMap[k+1]-dynMap[k])
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shape := range [][2]int{{1, 1}, {3, 7}, {17, 64}, {64, 100}, {300, 257}} {
		rows, cols := shape[0], shape[1]
		w := randWeight(rng, rows, cols)
		q := QuantizeNF4(w, rows, cols, false)
		got := make([]float32, len(w))
		q.Dequantize(got)
		for i, x := range w {
			a := q.Absmax[i/NF4BlockSize]
			bound := 0.5*float64(maxGap)*float64(a)*(1+1e-6) + 1e-30
			require.LessOrEqual(t, math.Abs(float64(got[i]-x)), bound, "%v value %d", shape, i)
			require.LessOrEqual(t, math.Abs(float64(x)), float64(a))
		}
		// Double quantization moves each scale by at most half a gap of
		// the dynamic map times its block's scale.
		dq := QuantizeNF4(w, rows, cols, true)
		require.Equal(t, q.Codes, dq.Codes)
		for b, a := range q.Absmax {
			sigma := dq.AbsmaxScale[b/NF4DoubleQuantBlockSize]
			bound := 0.5*float64(maxDynGap)*float64(sigma)*(1+1e-5) + 1e-6*float64(a)
			require.LessOrEqual(t, math.Abs(float64(dq.blockScale(b)-a)), bound, "%v block %d", shape, b)
		}
	}
}

// naiveDequantize decodes value by value, the slow obvious way.
func naiveDequantize(q *NF4) []float32 {
	out := make([]float32, q.Rows*q.Cols)
	for i := range out {
		c := q.Codes[i/2] >> 4
		if i%2 == 1 {
			c = q.Codes[i/2] & 15
		}
		out[i] = nf4Code[c] * q.blockScale(i/NF4BlockSize)
	}
	return out
}

func TestNF4DequantizeLarge(t *testing.T) {
	// Large enough to run on several goroutines; must equal the serial,
	// value-by-value decoding bit for bit.
	rng := rand.New(rand.NewPCG(3, 4))
	rows, cols := 513, 700
	w := randWeight(rng, rows, cols)
	for _, doubleQuant := range []bool{false, true} {
		q := QuantizeNF4(w, rows, cols, doubleQuant)
		got := make([]float32, rows*cols)
		q.Dequantize(got)
		requireBits(t, naiveDequantize(q), got, fmt.Sprint("doubleQuant=", doubleQuant))
		// Quantizing a block on its own gives the same codes.
		for _, b := range []int{0, 1234, len(w)/NF4BlockSize - 1} {
			lo := b * NF4BlockSize
			qb := QuantizeNF4(w[lo:lo+NF4BlockSize], 1, NF4BlockSize, false)
			require.Equal(t, q.Codes[lo/2:lo/2+NF4BlockSize/2], qb.Codes)
		}
	}
}

func TestNF4DequantizeCols(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, shape := range [][2]int{{1, 1}, {5, 13}, {33, 100}, {600, 130}} {
		rows, cols := shape[0], shape[1]
		w := randWeight(rng, rows, cols)
		for _, doubleQuant := range []bool{false, true} {
			q := QuantizeNF4(w, rows, cols, doubleQuant)
			all := make([]float32, rows*cols)
			q.Dequantize(all)
			idx := rng.Perm(cols)[:max(1, cols/3)]
			idx = append(idx, idx[0]) // a repeated column is fine
			part := make([]float32, rows*len(idx))
			q.DequantizeCols(part, idx)
			for r := range rows {
				for k, c := range idx {
					require.Equal(t, math.Float32bits(all[r*cols+c]), math.Float32bits(part[r*len(idx)+k]),
						"%v row %d col %d", shape, r, c)
				}
			}
			q.DequantizeCols(nil, nil) // no columns: nothing to do
		}
	}
	q := QuantizeNF4(make([]float32, 6), 2, 3, false)
	require.Panics(t, func() { q.DequantizeCols(make([]float32, 2), []int{3}) })
	require.Panics(t, func() { q.DequantizeCols(make([]float32, 2), []int{-1}) })
	require.Panics(t, func() { q.DequantizeCols(make([]float32, 3), []int{0}) })
}

func TestNF4Bytes(t *testing.T) {
	for _, tc := range []struct {
		rows, cols  int
		plain, dq   int64
		blocks, dqb int
	}{
		{4096, 4096, 4096*4096/2 + 4*262144, 4096*4096/2 + 262144 + 4*1024 + 4, 262144, 1024},
		{5, 13, 33 + 4*2, 33 + 2 + 4 + 4, 2, 1},
		{129, 256, 129*128 + 4*516, 129*128 + 516 + 4*3 + 4, 516, 3},
	} {
		w := make([]float32, tc.rows*tc.cols)
		for i := range w {
			w[i] = float32(i%37) - 18
		}
		q := QuantizeNF4(w, tc.rows, tc.cols, false)
		require.Len(t, q.Absmax, tc.blocks)
		require.Equal(t, tc.plain, q.Bytes())
		dq := QuantizeNF4(w, tc.rows, tc.cols, true)
		require.Len(t, dq.QAbsmax, tc.blocks)
		require.Len(t, dq.AbsmaxScale, tc.dqb)
		require.Equal(t, tc.dq, dq.Bytes())
	}
}

func TestNF4EdgeCases(t *testing.T) {
	// Empty weight.
	for _, doubleQuant := range []bool{false, true} {
		q := QuantizeNF4(nil, 0, 5, doubleQuant)
		require.Empty(t, q.Codes)
		q.Dequantize(nil)
		require.False(t, math.IsNaN(float64(q.AbsmaxOffset)))
	}
	// All zeros, with and without double quant (its scale is then 0 too).
	for _, doubleQuant := range []bool{false, true} {
		q := QuantizeNF4(make([]float32, 3*50), 3, 50, doubleQuant)
		for _, c := range q.Codes {
			require.Equal(t, byte(nf4ZeroCode<<4|nf4ZeroCode), c)
		}
		got := make([]float32, 150)
		for i := range got {
			got[i] = 7
		}
		q.Dequantize(got)
		for _, v := range got {
			require.Zero(t, v)
		}
	}
	// Odd length: the pad nibble is the zero code.
	q := QuantizeNF4([]float32{1, -1, 0.5}, 1, 3, false)
	require.Equal(t, []byte{15 << 4, 12<<4 | nf4ZeroCode}, q.Codes) // codes 15, 0 | 12, pad
	// Subnormal block: 1/absmax overflows, values are divided instead.
	tiny := []float32{1e-40, -2e-40, 0, 3e-41}
	q = QuantizeNF4(tiny, 2, 2, false)
	got := make([]float32, 4)
	q.Dequantize(got)
	require.Equal(t, []byte{12 << 4, nf4ZeroCode<<4 | 9}, q.Codes) // codes 12, 0 | zero, 9
	require.Equal(t, float32(-2e-40), got[1])
	require.Zero(t, got[2])
	// Bad input.
	require.Panics(t, func() { QuantizeNF4(make([]float32, 5), 2, 3, false) })
	require.Panics(t, func() { QuantizeNF4([]float32{1, float32(math.NaN())}, 1, 2, false) })
	require.Panics(t, func() { QuantizeNF4([]float32{float32(math.Inf(-1))}, 1, 1, true) })
	require.Panics(t, func() { q.Dequantize(make([]float32, 3)) })
}

func BenchmarkNF4Dequantize(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	rows, cols := 4096, 4096
	w := randWeight(rng, rows, cols)
	for _, doubleQuant := range []bool{false, true} {
		q := QuantizeNF4(w, rows, cols, doubleQuant)
		dst := make([]float32, rows*cols)
		b.Run(fmt.Sprint("doubleQuant=", doubleQuant), func(b *testing.B) {
			b.SetBytes(int64(4 * len(dst)))
			for b.Loop() {
				q.Dequantize(dst)
			}
		})
	}
}
