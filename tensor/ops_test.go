package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Gradient checks: every op's forward is compared with its float64
// reference (reference_test.go), and every input gradient the tape computes
// is compared with central finite differences of L = Σ out·R taken on the
// float64 reference, R a fixed random vector. The references run in float64
// with h = 1e-6, so the numerical gradient is accurate to ~1e-9 and the
// comparison measures the float32 backward alone.
//
// The allocator is process-wide: none of these tests may run in parallel.

const (
	gcFwdTol  = 1e-5 // forward: relative error against the float64 reference
	gcGradTol = 1e-4 // backward: relative error against finite differences
	gcStep    = 1e-6 // central-difference step, in float64
	// gcFloor keeps the relative error meaningful where a gradient is
	// (nearly) zero, e.g. dq and dk of attention over a single position.
	gcFloor = 1e-3
)

func gcRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// gcTensor returns a tensor of normal values with standard deviation sd
// (plus mean), accounted under c.
func gcTensor(rng *rand.Rand, c Category, mean, sd float64, shape ...int) *Tensor {
	t := New(c, shape...)
	for i := range t.Data() {
		t.Data()[i] = float32(mean + sd*rng.NormFloat64())
	}
	return t
}

func gcF64(t *Tensor) []float64 {
	out := make([]float64, t.Len())
	for i, v := range t.Data() {
		out[i] = float64(v)
	}
	return out
}

func gcRelease(ts ...*Tensor) {
	for _, t := range ts {
		if t != nil {
			t.Release()
		}
	}
}

// gcDot returns the one-element tensor Σ out·r and, when out is being
// differentiated, records the node whose backward seeds dout = dl·r. It is
// the test's way to turn any op output into a scalar loss.
func gcDot(tp *Tape, out *Tensor, r []float32) *Tensor {
	l := New(Activation)
	var s float64
	for i, v := range out.Data() {
		s += float64(v) * float64(r[i])
	}
	l.st.data[0] = float32(s)
	if tp.recording(out) {
		tp.Record(l, nil, func(dl *Tensor) {
			g := gradOf(out).Data()
			for i := range g {
				g[i] += dl.st.data[0] * r[i]
			}
		})
	}
	return l
}

// gcErr is ‖got − want‖₂ / max(‖want‖₂, floor) together with the
// elementwise max error over max(‖want‖∞, floor): the relative error in the
// two norms that matter (an overall wrong gradient, one wrong entry).
func gcErr(got, want []float64, floor float64) (l2, linf float64) {
	var d2, w2, dmax, wmax float64
	for i := range want {
		d := got[i] - want[i]
		d2 += d * d
		w2 += want[i] * want[i]
		dmax = math.Max(dmax, math.Abs(d))
		wmax = math.Max(wmax, math.Abs(want[i]))
	}
	return math.Sqrt(d2) / math.Max(math.Sqrt(w2), floor), dmax / math.Max(wmax, floor)
}

func gcAssertClose(t *testing.T, what string, got, want []float64, tol, floor float64) (l2, linf float64) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i, g := range got {
		require.False(t, math.IsNaN(g) || math.IsInf(g, 0), "%s: entry %d is %v", what, i, g)
	}
	l2, linf = gcErr(got, want, floor)
	assert.LessOrEqual(t, l2, tol, "%s: relative L2 error", what)
	assert.LessOrEqual(t, linf, tol, "%s: relative max error", what)
	return l2, linf
}

// gcCheck runs one op on a fresh tape over inputs (float32 leaves; those
// with RequiresGrad are differentiated), checks its forward against ref and
// its input gradients against central differences of Σ ref(inputs)·R.
// Inputs that do not require a gradient must end with no Grad. It releases
// everything it created (the op output, the loss, the gradients) and checks
// that nothing else stays accounted.
func gcCheck(t *testing.T, seed uint64, inputs []*Tensor, run func(tp *Tape) *Tensor, ref func(in [][]float64) []float64) {
	t.Helper()
	before := MemStats().LiveTotal
	vals := make([][]float64, len(inputs))
	for i, in := range inputs {
		vals[i] = gcF64(in)
	}
	tp := NewTape()
	out := run(tp)
	want := ref(vals)
	fl2, _ := gcAssertClose(t, "forward", gcF64(out), want, gcFwdTol, 1e-30)

	rng := gcRNG(seed ^ 0x5eed)
	r := make([]float32, out.Len())
	for i := range r {
		r[i] = float32(2*rng.Float64() - 1)
	}
	loss := gcDot(tp, out, r)
	tp.Backward(loss, 1)
	assert.Zero(t, tp.Len(), "tape not empty after Backward")

	lossOf := func() float64 {
		y := ref(vals)
		var s float64
		for i := range y {
			s += y[i] * float64(r[i])
		}
		return s
	}
	worst := 0.0
	for i, in := range inputs {
		if !in.RequiresGrad() {
			assert.Nil(t, in.Grad, "input %d is frozen but got a gradient", i)
			continue
		}
		if !assert.NotNil(t, in.Grad, "input %d has no gradient", i) {
			continue
		}
		require.True(t, SameShape(in, in.Grad), "input %d: gradient shape %v", i, in.Grad.Shape())
		num := make([]float64, len(vals[i]))
		for j, old := range vals[i] {
			vals[i][j] = old + gcStep
			lp := lossOf()
			vals[i][j] = old - gcStep
			lm := lossOf()
			vals[i][j] = old
			num[j] = (lp - lm) / (2 * gcStep)
		}
		l2, linf := gcAssertClose(t, fmt.Sprintf("gradient of input %d", i), gcF64(in.Grad), num, gcGradTol, gcFloor)
		worst = math.Max(worst, math.Max(l2, linf))
	}
	t.Logf("forward err %.2g, worst gradient err %.2g", fl2, worst)

	gcRelease(out, loss)
	for _, in := range inputs {
		gcRelease(in.Grad)
		in.Grad = nil
	}
	assert.Equal(t, before, MemStats().LiveTotal, "bytes left accounted after the check")
}

// gcMasks enumerates which of n inputs require a gradient: every non-empty
// subset.
func gcMasks(n int) [][]bool {
	var ms [][]bool
	for m := 1; m < 1<<n; m++ {
		mask := make([]bool, n)
		for i := range mask {
			mask[i] = m&(1<<i) != 0
		}
		ms = append(ms, mask)
	}
	return ms
}

func gcMaskName(m []bool) string {
	s := ""
	for _, b := range m {
		if b {
			s += "T"
		} else {
			s += "F"
		}
	}
	return s
}

func gcSetGrad(ts []*Tensor, mask []bool) {
	for i, t := range ts {
		t.SetRequiresGrad(mask[i])
		if mask[i] && t.Category() == Frozen {
			t.recategorize(Trainable)
		}
	}
}

func TestLinearGradients(t *testing.T) {
	shapes := []struct{ xs []int }{
		{[]int{1, 1}}, {[]int{3, 17}}, {[]int{17, 3}}, {[]int{2, 5, 7}}, {[]int{1, 4}},
	}
	outs := []int{1, 5, 3, 4, 17}
	for si, sh := range shapes {
		for _, bias := range []bool{false, true} {
			n := 1
			for _, d := range sh.xs[:len(sh.xs)-1] {
				n *= d
			}
			in, out := sh.xs[len(sh.xs)-1], outs[si]
			k := 2
			if bias {
				k = 3
			}
			for mi, mask := range gcMasks(k) {
				name := fmt.Sprintf("x%v_out%d_bias%v_%s", sh.xs, out, bias, gcMaskName(mask))
				t.Run(name, func(t *testing.T) {
					seed := uint64(100*si + 10*mi + k)
					rng := gcRNG(seed)
					x := gcTensor(rng, Activation, 0, 1, sh.xs...)
					w := gcTensor(rng, Frozen, 0, 0.5, out, in)
					ins := []*Tensor{x, w}
					var b *Tensor
					if bias {
						b = gcTensor(rng, Frozen, 0.1, 0.5, out)
						ins = append(ins, b)
					}
					defer gcRelease(ins...)
					gcSetGrad(ins, mask)
					gcCheck(t, seed, ins,
						func(tp *Tape) *Tensor {
							y := tp.Linear(x, w, b)
							require.Equal(t, append(append([]int(nil), sh.xs[:len(sh.xs)-1]...), out), y.Shape())
							return y
						},
						func(v [][]float64) []float64 {
							var bv []float64
							if bias {
								bv = v[2]
							}
							return refLinear(v[0], v[1], bv, n, in, out)
						})
				})
			}
		}
	}
}

// A frozen linear keeps no activation: with W frozen the tape takes no
// reference on x and Saved does not grow; with W trainable exactly x's
// bytes become Saved (x is an activation), and nothing else.
func TestLinearSavesExactlyWhatBackwardNeeds(t *testing.T) {
	rng := gcRNG(7)
	const n, in, out = 6, 9, 5
	xBytes := int64(n*in) * 4
	yBytes := int64(n*out) * 4

	t.Run("frozen W", func(t *testing.T) {
		x := gcTensor(rng, Activation, 0, 1, n, in).SetRequiresGrad(true)
		w := gcTensor(rng, Frozen, 0, 1, out, in)
		b := gcTensor(rng, Frozen, 0, 1, out)
		defer gcRelease(x, w, b)
		before := MemStats()
		tp := NewTape()
		y := tp.Linear(x, w, b)
		after := MemStats()
		assert.Equal(t, 1, tp.Len())
		assert.Equal(t, int64(0), after.Live[Saved]-before.Live[Saved], "Saved grew")
		assert.Equal(t, 1, x.st.refs, "the tape took a reference on x")
		assert.Equal(t, Activation, x.Category())
		assert.Equal(t, yBytes, after.LiveTotal-before.LiveTotal, "only y may be new")
		loss := gcDot(tp, y, make([]float32, y.Len()))
		tp.Backward(loss, 1)
		assert.Nil(t, w.Grad)
		assert.Nil(t, b.Grad)
		require.NotNil(t, x.Grad)
		assert.Equal(t, before.Live[Saved], MemStats().Live[Saved])
		gcRelease(y, loss, x.Grad)
		x.Grad = nil
	})

	for _, xGrad := range []bool{false, true} {
		t.Run(fmt.Sprintf("trainable W, x requires grad %v", xGrad), func(t *testing.T) {
			x := gcTensor(rng, Activation, 0, 1, n, in).SetRequiresGrad(xGrad)
			w := gcTensor(rng, Trainable, 0, 1, out, in).SetRequiresGrad(true)
			b := gcTensor(rng, Trainable, 0, 1, out).SetRequiresGrad(true)
			defer gcRelease(w, b)
			before := MemStats()
			tp := NewTape()
			y := tp.Linear(x, w, b)
			after := MemStats()
			assert.Equal(t, xBytes, after.Live[Saved]-before.Live[Saved], "Saved should grow by x exactly")
			assert.Equal(t, -xBytes, after.Live[Activation]-before.Live[Activation]-yBytes)
			assert.Equal(t, yBytes, after.LiveTotal-before.LiveTotal, "only y may be new")
			assert.Equal(t, 2, x.st.refs)
			x.Release() // the caller is done with x: only the tape holds it now
			loss := gcDot(tp, y, make([]float32, y.Len()))
			tp.Backward(loss, 1)
			end := MemStats()
			assert.Equal(t, before.Live[Saved], end.Live[Saved], "x must be freed by Backward")
			if xGrad {
				require.NotNil(t, x.Grad)
			} else {
				assert.Nil(t, x.Grad)
			}
			require.NotNil(t, w.Grad)
			require.NotNil(t, b.Grad)
			gcRelease(y, loss, x.Grad, w.Grad, b.Grad)
			x.Grad, w.Grad, b.Grad = nil, nil, nil
		})
	}
}

func TestAddGradients(t *testing.T) {
	for si, shape := range [][]int{{1}, {3, 17}, {2, 5, 3}, {17}} {
		for mi, mask := range gcMasks(2) {
			t.Run(fmt.Sprintf("%v_%s", shape, gcMaskName(mask)), func(t *testing.T) {
				seed := uint64(200 + 10*si + mi)
				rng := gcRNG(seed)
				a := gcTensor(rng, Activation, 0, 1, shape...)
				b := gcTensor(rng, Activation, 0, 1, shape...)
				ins := []*Tensor{a, b}
				defer gcRelease(ins...)
				gcSetGrad(ins, mask)
				gcCheck(t, seed, ins,
					func(tp *Tape) *Tensor { return tp.Add(a, b) },
					func(v [][]float64) []float64 { return refAdd(v[0], v[1]) })
			})
		}
	}
}

func TestEmbeddingGradients(t *testing.T) {
	cases := []struct {
		v, c int
		ids  []int32
	}{
		{1, 1, []int32{0}},
		{5, 3, []int32{4, 0, 4, 2, 4}}, // repeated ids must accumulate
		{17, 6, nil},                   // random ids below
		{3, 17, []int32{2, 2, 2}},
	}
	for ci, tc := range cases {
		t.Run(fmt.Sprintf("V%d_C%d", tc.v, tc.c), func(t *testing.T) {
			seed := uint64(300 + ci)
			rng := gcRNG(seed)
			ids := tc.ids
			if ids == nil {
				for range 23 {
					ids = append(ids, int32(rng.IntN(tc.v)))
				}
			}
			table := gcTensor(rng, Trainable, 0, 1, tc.v, tc.c).SetRequiresGrad(true)
			defer table.Release()
			gcCheck(t, seed, []*Tensor{table},
				func(tp *Tape) *Tensor { return tp.Embedding(table, ids) },
				func(v [][]float64) []float64 { return refEmbedding(v[0], ids, tc.c) })
		})
	}
	t.Run("ids out of range", func(t *testing.T) {
		table := New(Frozen, 4, 2)
		defer table.Release()
		var tp *Tape
		assert.Panics(t, func() { tp.Embedding(table, []int32{4}) })
		assert.Panics(t, func() { tp.Embedding(table, []int32{-1}) })
	})
}

func TestRMSNormGradients(t *testing.T) {
	cases := []struct {
		shape []int
		eps   float32
	}{
		// With one column dx ∝ eps/(x²+eps)^{3/2} comes out of a float32
		// cancellation (1 − x̂²); a larger eps keeps that case well-posed.
		{[]int{3, 1}, 0.1}, {[]int{1, 1}, 1}, {[]int{3, 17}, 1e-6}, {[]int{17, 3}, 1e-5}, {[]int{2, 3, 64}, 1e-5}, {[]int{4, 2}, 0.5},
	}
	for ci, tc := range cases {
		for mi, mask := range gcMasks(2) {
			t.Run(fmt.Sprintf("%v_eps%g_%s", tc.shape, tc.eps, gcMaskName(mask)), func(t *testing.T) {
				seed := uint64(400 + 10*ci + mi)
				rng := gcRNG(seed)
				c := tc.shape[len(tc.shape)-1]
				x := gcTensor(rng, Activation, 0, 1, tc.shape...)
				w := gcTensor(rng, Frozen, 1, 0.3, c)
				ins := []*Tensor{x, w}
				defer gcRelease(ins...)
				gcSetGrad(ins, mask)
				gcCheck(t, seed, ins,
					func(tp *Tape) *Tensor { return tp.RMSNorm(x, w, tc.eps) },
					func(v [][]float64) []float64 { return refRMSNorm(v[0], v[1], c, float64(tc.eps)) })
			})
		}
	}
}

// gcRoPETables returns (rows, d/2) cos and sin tables for positions
// 0..rows-1 with the usual inverse frequencies theta^(-2i/d).
func gcRoPETables(rows, d int, theta float64) (cos, sin *Tensor) {
	half := d / 2
	cos, sin = New(Frozen, rows, half), New(Frozen, rows, half)
	for p := 0; p < rows; p++ {
		for i := 0; i < half; i++ {
			a := float64(p) * math.Pow(theta, -float64(2*i)/float64(d))
			cos.Data()[p*half+i] = float32(math.Cos(a))
			sin.Data()[p*half+i] = float32(math.Sin(a))
		}
	}
	return cos, sin
}

func TestRoPEGradients(t *testing.T) {
	cases := []struct{ b, t, heads, d, tableRows int }{
		{1, 1, 1, 2, 1},
		{2, 5, 3, 4, 5},
		{1, 17, 2, 6, 20}, // tables longer than the sequence
		{3, 3, 1, 8, 3},
		{2, 7, 4, 2, 7},
	}
	for ci, tc := range cases {
		t.Run(fmt.Sprintf("B%d_T%d_heads%d_D%d", tc.b, tc.t, tc.heads, tc.d), func(t *testing.T) {
			seed := uint64(500 + ci)
			rng := gcRNG(seed)
			rows, cols := tc.b*tc.t, tc.heads*tc.d
			cos, sin := gcRoPETables(tc.tableRows, tc.d, 10)
			x := gcTensor(rng, Activation, 0, 1, rows, cols).SetRequiresGrad(true)
			defer gcRelease(x, cos, sin)
			cv, sv := gcF64(cos), gcF64(sin)
			gcCheck(t, seed, []*Tensor{x},
				func(tp *Tape) *Tensor { return tp.RoPE(x, cos, sin, tc.t, tc.d) },
				func(v [][]float64) []float64 { return refRoPE(v[0], cv, sv, rows, cols, tc.t, tc.d) })
		})
	}
}

// RoPE with arbitrary (non-unit) tables still has an exact transpose as its
// backward; this checks the kernel's indexing independently of the
// rotation's orthogonality.
func TestRoPEGradientsArbitraryTables(t *testing.T) {
	const b, T, heads, d = 2, 3, 2, 4
	rng := gcRNG(550)
	cos := gcTensor(rng, Frozen, 0, 1, T, d/2)
	sin := gcTensor(rng, Frozen, 0, 1, T, d/2)
	x := gcTensor(rng, Activation, 0, 1, b*T, heads*d).SetRequiresGrad(true)
	defer gcRelease(x, cos, sin)
	cv, sv := gcF64(cos), gcF64(sin)
	gcCheck(t, 550, []*Tensor{x},
		func(tp *Tape) *Tensor { return tp.RoPE(x, cos, sin, T, d) },
		func(v [][]float64) []float64 { return refRoPE(v[0], cv, sv, b*T, heads*d, T, d) })
}

func TestAttentionGradients(t *testing.T) {
	shapes := []AttnShape{
		{B: 1, T: 1, H: 1, KV: 1, D: 2},
		{B: 2, T: 5, H: 4, KV: 2, D: 6},
		{B: 1, T: 17, H: 3, KV: 1, D: 4},
		{B: 2, T: 3, H: 6, KV: 3, D: 8},
		{B: 1, T: 4, H: 2, KV: 2, D: 1},
	}
	for si, s := range shapes {
		for mi, mask := range gcMasks(3) {
			t.Run(fmt.Sprintf("%+v_%s", s, gcMaskName(mask)), func(t *testing.T) {
				seed := uint64(600 + 10*si + mi)
				rng := gcRNG(seed)
				q := gcTensor(rng, Activation, 0, 1, s.B*s.T, s.H*s.D)
				k := gcTensor(rng, Activation, 0, 1, s.B*s.T, s.KV*s.D)
				v := gcTensor(rng, Activation, 0, 1, s.B*s.T, s.KV*s.D)
				ins := []*Tensor{q, k, v}
				defer gcRelease(ins...)
				gcSetGrad(ins, mask)
				gcCheck(t, seed, ins,
					func(tp *Tape) *Tensor { return tp.Attention(q, k, v, s) },
					func(in [][]float64) []float64 { return refAttention(in[0], in[1], in[2], s) })
			})
		}
	}
}

func TestSwiGLUGradients(t *testing.T) {
	for si, shape := range [][]int{{1}, {3, 17}, {2, 5, 7}, {1, 64}} {
		for mi, mask := range gcMasks(2) {
			t.Run(fmt.Sprintf("%v_%s", shape, gcMaskName(mask)), func(t *testing.T) {
				seed := uint64(700 + 10*si + mi)
				rng := gcRNG(seed)
				g := gcTensor(rng, Activation, 0, 3, shape...) // reach σ's flat tails
				u := gcTensor(rng, Activation, 0, 1, shape...)
				ins := []*Tensor{g, u}
				defer gcRelease(ins...)
				gcSetGrad(ins, mask)
				gcCheck(t, seed, ins,
					func(tp *Tape) *Tensor { return tp.SwiGLU(g, u) },
					func(v [][]float64) []float64 { return refSwiGLU(v[0], v[1]) })
			})
		}
	}
}

func TestCrossEntropyGradients(t *testing.T) {
	cases := []struct {
		n, v    int
		targets []int32
		sd      float64
	}{
		{1, 1, []int32{0}, 1},
		{3, 17, []int32{5, -100, 16}, 1},
		{17, 3, nil, 2},
		{4, 5, []int32{0, 4, -1, 2}, 30}, // large logits: the log-sum-exp must be stable
		{2, 64, []int32{63, 0}, 1},
	}
	for ci, tc := range cases {
		t.Run(fmt.Sprintf("N%d_V%d", tc.n, tc.v), func(t *testing.T) {
			seed := uint64(800 + ci)
			rng := gcRNG(seed)
			targets := tc.targets
			if targets == nil {
				for i := range tc.n {
					if i%4 == 1 {
						targets = append(targets, -100)
					} else {
						targets = append(targets, int32(rng.IntN(tc.v)))
					}
				}
			}
			wantN := 0
			for _, tg := range targets {
				if tg >= 0 {
					wantN++
				}
			}
			logits := gcTensor(rng, Activation, 0, tc.sd, tc.n, tc.v).SetRequiresGrad(true)
			defer logits.Release()
			gcCheck(t, seed, []*Tensor{logits},
				func(tp *Tape) *Tensor {
					loss, n := tp.CrossEntropy(logits, targets)
					assert.Equal(t, wantN, n)
					assert.Equal(t, 1, loss.Len())
					return loss
				},
				func(v [][]float64) []float64 {
					l, _ := refCrossEntropy(v[0], targets, tc.v)
					return []float64{l}
				})
		})
	}
}

// Ignored rows get an exactly zero gradient; the gradient scales with dLoss.
func TestCrossEntropyIgnoredRowsAndScale(t *testing.T) {
	rng := gcRNG(850)
	const n, v = 5, 7
	targets := []int32{3, -100, 6, -100, 0}
	logits := gcTensor(rng, Activation, 0, 1, n, v).SetRequiresGrad(true)
	defer logits.Release()
	grads := make([][]float32, 2)
	for i, dLoss := range []float32{1, 0.25} {
		tp := NewTape()
		loss, cnt := tp.CrossEntropy(logits, targets)
		require.Equal(t, 3, cnt)
		tp.Backward(loss, dLoss)
		require.NotNil(t, logits.Grad)
		grads[i] = append([]float32(nil), logits.Grad.Data()...)
		gcRelease(loss, logits.Grad)
		logits.Grad = nil
	}
	for r, tg := range targets {
		var rowSum float64
		for j := 0; j < v; j++ {
			g := grads[0][r*v+j]
			if tg < 0 {
				assert.Zero(t, g, "ignored row %d has gradient", r)
			}
			rowSum += float64(g)
			assert.InDelta(t, 0.25*g, grads[1][r*v+j], 1e-7)
		}
		assert.InDelta(t, 0, rowSum, 1e-6, "softmax − onehot sums to 0 in row %d", r)
	}
}

// With every target ignored the loss is 0 (not NaN), no row counts, and
// Backward leaves no gradient on the logits and no bytes behind.
func TestCrossEntropyAllIgnored(t *testing.T) {
	rng := gcRNG(860)
	logits := gcTensor(rng, Activation, 0, 1, 4, 5).SetRequiresGrad(true)
	defer logits.Release()
	before := MemStats()
	tp := NewTape()
	loss, n := tp.CrossEntropy(logits, []int32{-100, -100, -1, -100})
	assert.Equal(t, 0, n)
	assert.Equal(t, float32(0), loss.Item())
	assert.False(t, loss.HasNaN())
	tp.Backward(loss, 1)
	assert.Nil(t, logits.Grad)
	assert.Zero(t, tp.Len())
	loss.Release()
	after := MemStats()
	assert.Equal(t, before.LiveTotal, after.LiveTotal, "bytes left accounted")
	assert.Equal(t, before.Live[Gradient], after.Live[Gradient], "gradient bytes left accounted")

	var nilTape *Tape
	loss, n = nilTape.CrossEntropy(logits, []int32{-100, -100, -100, -100})
	assert.Equal(t, 0, n)
	assert.Equal(t, float32(0), loss.Item())
	loss.Release()
}

func TestCrossEntropyTargetOutOfRangePanics(t *testing.T) {
	logits := New(Activation, 2, 3)
	defer logits.Release()
	var tp *Tape
	assert.Panics(t, func() { tp.CrossEntropy(logits, []int32{0, 3}) })
	assert.Panics(t, func() { tp.CrossEntropy(logits, []int32{0}) })
}

// When no input requires a gradient an op records nothing, takes no
// reference on its inputs and its output does not require a gradient.
func TestOpsWithFrozenInputsRecordNothing(t *testing.T) {
	rng := gcRNG(900)
	s := AttnShape{B: 1, T: 3, H: 2, KV: 1, D: 4}
	x := gcTensor(rng, Activation, 0, 1, 3, 8)
	w := gcTensor(rng, Frozen, 0, 1, 8, 8)
	kv := gcTensor(rng, Activation, 0, 1, 3, 4)
	nw := gcTensor(rng, Frozen, 1, 0.1, 8)
	cos, sin := gcRoPETables(3, 4, 10000)
	defer gcRelease(x, w, kv, nw, cos, sin)
	ops := map[string]func(tp *Tape) *Tensor{
		"Linear":    func(tp *Tape) *Tensor { return tp.Linear(x, w, nil) },
		"Add":       func(tp *Tape) *Tensor { return tp.Add(x, x) },
		"Embedding": func(tp *Tape) *Tensor { return tp.Embedding(w, []int32{1, 7}) },
		"RMSNorm":   func(tp *Tape) *Tensor { return tp.RMSNorm(x, nw, 1e-5) },
		"RoPE":      func(tp *Tape) *Tensor { return tp.RoPE(x, cos, sin, 3, 4) },
		"Attention": func(tp *Tape) *Tensor { return tp.Attention(x, kv, kv, s) },
		"SwiGLU":    func(tp *Tape) *Tensor { return tp.SwiGLU(x, x) },
		"CrossEntropy": func(tp *Tape) *Tensor {
			l, _ := tp.CrossEntropy(x, []int32{1, 2, 3})
			return l
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			before := MemStats()
			tp := NewTape()
			y := op(tp)
			assert.Zero(t, tp.Len())
			assert.False(t, y.RequiresGrad())
			assert.Equal(t, 1, x.st.refs)
			assert.Equal(t, 1, w.st.refs)
			assert.Equal(t, 1, kv.st.refs)
			assert.Equal(t, before.Live[Saved], MemStats().Live[Saved])
			y.Release()
			assert.Equal(t, before.LiveTotal, MemStats().LiveTotal)
		})
	}
}

// The checks above must be able to fail: a gradient with one entry off by
// a little, or with one term missing, is rejected by the tolerance.
func TestGradientCheckDiscriminates(t *testing.T) {
	rng := gcRNG(950)
	want := make([]float64, 200)
	for i := range want {
		want[i] = rng.NormFloat64()
	}
	got := append([]float64(nil), want...)
	got[17] += 1e-3 * math.Abs(want[17]+1)
	l2, linf := gcErr(got, want, gcFloor)
	assert.Greater(t, math.Max(l2, linf), gcGradTol)
	ok := append([]float64(nil), want...)
	for i := range ok {
		ok[i] *= 1 + 1e-6
	}
	l2, linf = gcErr(ok, want, gcFloor)
	assert.Less(t, math.Max(l2, linf), gcGradTol)
}
