package tensor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A one-layer LLaMA-shaped model built from every op, used to test the tape
// as a whole: memory released by Backward and Reset, gradient accumulation
// (a tensor used several times, two backward passes), and the nil tape.
// Not parallel: the tests measure the process-wide allocator.

type tbModel struct {
	s                      AttnShape
	v, c, f                int
	ids, targets           []int32
	cos, sin               *Tensor
	emb, n1, n2, nf        *Tensor
	wq, wk, wv, wo         *Tensor
	wg, wu, wd, head, bias *Tensor
}

func (m *tbModel) params() []*Tensor {
	return []*Tensor{m.emb, m.n1, m.wq, m.wk, m.wv, m.wo, m.n2, m.wg, m.wu, m.wd, m.nf, m.head, m.bias}
}

func newTBModel(seed uint64) *tbModel {
	rng := gcRNG(seed)
	m := &tbModel{s: AttnShape{B: 2, T: 5, H: 4, KV: 2, D: 2}, v: 11, c: 8, f: 12}
	hd, kvd := m.s.H*m.s.D, m.s.KV*m.s.D
	p := func(mean, sd float64, shape ...int) *Tensor {
		return gcTensor(rng, Trainable, mean, sd, shape...).SetRequiresGrad(true)
	}
	m.emb = p(0, 1, m.v, m.c)
	m.n1, m.n2, m.nf = p(1, 0.2, m.c), p(1, 0.2, m.c), p(1, 0.2, m.c)
	m.wq, m.wk, m.wv, m.wo = p(0, 0.5, hd, m.c), p(0, 0.5, kvd, m.c), p(0, 0.5, kvd, m.c), p(0, 0.5, m.c, hd)
	m.wg, m.wu, m.wd = p(0, 0.5, m.f, m.c), p(0, 0.5, m.f, m.c), p(0, 0.5, m.c, m.f)
	m.head, m.bias = p(0, 0.5, m.v, m.c), p(0, 0.1, m.v)
	m.cos, m.sin = gcRoPETables(m.s.T, m.s.D, 10000)
	for i := range m.s.B * m.s.T {
		m.ids = append(m.ids, int32(rng.IntN(m.v)))
		if i%m.s.T == m.s.T-1 || i == 3 {
			m.targets = append(m.targets, -100)
		} else {
			m.targets = append(m.targets, int32(rng.IntN(m.v)))
		}
	}
	return m
}

func (m *tbModel) release() {
	gcRelease(m.cos, m.sin)
	for _, p := range m.params() {
		gcRelease(p, p.Grad)
		p.Grad = nil
	}
}

// forward runs the model on tp, releasing every intermediate as soon as it
// has been consumed (the tape keeps what backward needs). It returns the
// loss and, in mids, every intermediate it created.
func (m *tbModel) forward(tp *Tape, mids *[]*Tensor) *Tensor {
	keep := func(ts ...*Tensor) {
		if mids != nil {
			*mids = append(*mids, ts...)
		}
	}
	s := m.s
	h0 := tp.Embedding(m.emb, m.ids)
	a := tp.RMSNorm(h0, m.n1, 1e-5)
	q, k, v := tp.Linear(a, m.wq, nil), tp.Linear(a, m.wk, nil), tp.Linear(a, m.wv, nil)
	a.Release()
	qr, kr := tp.RoPE(q, m.cos, m.sin, s.T, s.D), tp.RoPE(k, m.cos, m.sin, s.T, s.D)
	q.Release()
	k.Release()
	att := tp.Attention(qr, kr, v, s)
	qr.Release()
	kr.Release()
	v.Release()
	o := tp.Linear(att, m.wo, nil)
	att.Release()
	h1 := tp.Add(h0, o) // h0 also feeds the first RMSNorm: two gradients meet
	h0.Release()
	o.Release()
	b := tp.RMSNorm(h1, m.n2, 1e-5)
	g, u := tp.Linear(b, m.wg, nil), tp.Linear(b, m.wu, nil)
	b.Release()
	mlp := tp.SwiGLU(g, u)
	g.Release()
	u.Release()
	d := tp.Linear(mlp, m.wd, nil)
	mlp.Release()
	h2 := tp.Add(h1, d)
	h1.Release()
	d.Release()
	fn := tp.RMSNorm(h2, m.nf, 1e-5)
	h2.Release()
	logits := tp.Linear(fn, m.head, m.bias)
	fn.Release()
	loss, _ := tp.CrossEntropy(logits, m.targets)
	logits.Release()
	keep(h0, a, q, k, v, qr, kr, att, o, h1, b, g, u, mlp, d, h2, fn, logits)
	return loss
}

// reference is forward in float64 over the parameter values p (in params
// order).
func (m *tbModel) reference(p [][]float64) float64 {
	s, c, f, n := m.s, m.c, m.f, m.s.B*m.s.T
	hd, kvd := s.H*s.D, s.KV*s.D
	cv, sv := gcF64(m.cos), gcF64(m.sin)
	h0 := refEmbedding(p[0], m.ids, c)
	a := refRMSNorm(h0, p[1], c, 1e-5)
	q, k, v := refLinear(a, p[2], nil, n, c, hd), refLinear(a, p[3], nil, n, c, kvd), refLinear(a, p[4], nil, n, c, kvd)
	q, k = refRoPE(q, cv, sv, n, hd, s.T, s.D), refRoPE(k, cv, sv, n, kvd, s.T, s.D)
	h1 := refAdd(h0, refLinear(refAttention(q, k, v, s), p[5], nil, n, hd, c))
	b := refRMSNorm(h1, p[6], c, 1e-5)
	mlp := refSwiGLU(refLinear(b, p[7], nil, n, c, f), refLinear(b, p[8], nil, n, c, f))
	h2 := refAdd(h1, refLinear(mlp, p[9], nil, n, f, c))
	logits := refLinear(refRMSNorm(h2, p[10], c, 1e-5), p[11], p[12], n, c, m.v)
	l, _ := refCrossEntropy(logits, m.targets, m.v)
	return l
}

func TestTapeModelGradients(t *testing.T) {
	m := newTBModel(1)
	defer m.release()
	gcCheck(t, 1, m.params(),
		func(tp *Tape) *Tensor { return m.forward(tp, nil) },
		func(p [][]float64) []float64 { return []float64{m.reference(p)} })
}

// Freezing most of the model (as PaCA does) changes no gradient that is
// still computed, and frozen parameters get none.
func TestTapeModelGradientsPartlyFrozen(t *testing.T) {
	m := newTBModel(2)
	defer m.release()
	for _, p := range []*Tensor{m.emb, m.n1, m.wk, m.wv, m.wg, m.wd, m.nf, m.bias} {
		p.SetRequiresGrad(false)
	}
	gcCheck(t, 2, m.params(),
		func(tp *Tape) *Tensor { return m.forward(tp, nil) },
		func(p [][]float64) []float64 { return []float64{m.reference(p)} })
}

// After Backward every saved byte, every scratch byte and every
// intermediate gradient is gone: what remains is the leaves' gradients (and
// the loss, until its owner releases it).
func TestTapeBackwardReleasesEverything(t *testing.T) {
	defer func(old bool) { reuseHeaders = old }(reuseHeaders)
	reuseHeaders = false // the test inspects released tensors
	m := newTBModel(3)
	defer m.release()
	before := MemStats()
	tp := NewTape()
	var mids []*Tensor
	loss := m.forward(tp, &mids)
	fwd := MemStats()
	assert.Greater(t, fwd.Live[Saved], before.Live[Saved], "the forward saved nothing")
	assert.Positive(t, tp.Len())

	tp.Backward(loss, 1)
	after := MemStats()
	assert.Zero(t, tp.Len())
	assert.Equal(t, before.Live[Saved], after.Live[Saved], "saved bytes survive Backward")
	assert.Equal(t, before.Live[Scratch], after.Live[Scratch], "scratch bytes survive Backward")
	assert.Equal(t, before.Live[Activation]+4, after.Live[Activation], "only the loss may stay")
	var gradBytes int64
	for _, p := range m.params() {
		require.NotNil(t, p.Grad)
		gradBytes += int64(p.Grad.Len()) * 4
	}
	assert.Equal(t, before.Live[Gradient]+gradBytes, after.Live[Gradient], "intermediate gradients survive Backward")
	for i, x := range mids {
		assert.Nil(t, x.Grad, "intermediate %d kept its gradient", i)
		assert.Zero(t, x.st.refs, "intermediate %d is still referenced", i)
	}
	assert.Nil(t, loss.Grad)

	loss.Release()
	for _, p := range m.params() {
		p.Grad.Release()
		p.Grad = nil
	}
	assert.Equal(t, before.Live, MemStats().Live)
}

// Leaf gradients accumulate: two forward/backward passes without clearing
// give twice the gradient of one. The tape is reusable after Backward.
func TestTapeGradientsAccumulateAcrossBackward(t *testing.T) {
	m := newTBModel(4)
	defer m.release()
	tp := NewTape()
	loss := m.forward(tp, nil)
	tp.Backward(loss, 1)
	loss.Release()
	once := make([][]float32, len(m.params()))
	for i, p := range m.params() {
		once[i] = append([]float32(nil), p.Grad.Data()...)
	}
	for range 1 {
		loss = m.forward(tp, nil)
		tp.Backward(loss, 1)
		loss.Release()
	}
	for i, p := range m.params() {
		var scale float64
		for _, g := range once[i] {
			scale = math.Max(scale, math.Abs(float64(g)))
		}
		for j, g := range p.Grad.Data() {
			assert.InDelta(t, 2*once[i][j], g, 1e-6*scale+1e-12, "param %d entry %d", i, j)
		}
	}
}

// Reset drops the recorded nodes and everything they saved, without
// computing a gradient.
func TestTapeResetReleasesSaved(t *testing.T) {
	m := newTBModel(5)
	defer m.release()
	before := MemStats()
	tp := NewTape()
	loss := m.forward(tp, nil)
	assert.Greater(t, MemStats().Live[Saved], before.Live[Saved])
	tp.Reset()
	after := MemStats()
	assert.Zero(t, tp.Len())
	assert.Equal(t, before.Live[Saved], after.Live[Saved])
	assert.Equal(t, before.Live[Gradient], after.Live[Gradient])
	assert.Equal(t, before.Live[Activation]+4, after.Live[Activation])
	for _, p := range m.params() {
		assert.Nil(t, p.Grad)
		assert.Equal(t, 1, p.st.refs)
	}
	loss.Release()
	assert.Equal(t, before.Live, MemStats().Live)
	tp.Reset() // an empty tape resets to itself
}

// A nil tape records nothing and keeps nothing, and computes the same loss.
func TestNilTapeRecordsNothing(t *testing.T) {
	m := newTBModel(6)
	defer m.release()
	tp := NewTape()
	want := m.forward(tp, nil)
	tp.Reset()

	before := MemStats()
	var nilTape *Tape
	var peakSaved int64
	loss := m.forward(nilTape, nil)
	peakSaved = MemStats().Live[Saved]
	assert.Equal(t, before.Live[Saved], peakSaved)
	assert.Equal(t, want.Item(), loss.Item())
	assert.False(t, loss.RequiresGrad())
	assert.Zero(t, nilTape.Len())
	nilTape.Reset()
	for _, p := range m.params() {
		assert.Equal(t, 1, p.st.refs)
		assert.Nil(t, p.Grad)
	}
	loss.Release()
	want.Release()
	assert.Equal(t, before.LiveTotal-4, MemStats().LiveTotal)
}

// A tensor used twice receives both contributions: d(x+x)/dx = 2.
func TestTapeAddSameTensorTwice(t *testing.T) {
	rng := gcRNG(20)
	x := gcTensor(rng, Activation, 0, 1, 3, 5).SetRequiresGrad(true)
	defer x.Release()
	gcCheck(t, 20, []*Tensor{x},
		func(tp *Tape) *Tensor { return tp.Add(x, x) },
		func(v [][]float64) []float64 { return refAdd(v[0], v[0]) })

	tp := NewTape()
	y := tp.Add(x, x)
	r := make([]float32, y.Len())
	for i := range r {
		r[i] = float32(i) - 3
	}
	loss := gcDot(tp, y, r)
	tp.Backward(loss, 1)
	for i, g := range x.Grad.Data() {
		assert.Equal(t, 2*r[i], g)
	}
	gcRelease(y, loss, x.Grad)
	x.Grad = nil
}

// Residual: y = x + x Wᵀ, so dx = R + R W.
func TestTapeResidualGradient(t *testing.T) {
	rng := gcRNG(21)
	const n, c = 4, 6
	x := gcTensor(rng, Activation, 0, 1, n, c).SetRequiresGrad(true)
	w := gcTensor(rng, Trainable, 0, 0.5, c, c).SetRequiresGrad(true)
	defer gcRelease(x, w)
	gcCheck(t, 21, []*Tensor{x, w},
		func(tp *Tape) *Tensor {
			l := tp.Linear(x, w, nil)
			defer l.Release()
			return tp.Add(x, l)
		},
		func(v [][]float64) []float64 { return refAdd(v[0], refLinear(v[0], v[1], nil, n, c, c)) })
}

func TestTapeBackwardNeedsScalarLoss(t *testing.T) {
	x := New(Activation, 2)
	defer x.Release()
	assert.Panics(t, func() { NewTape().Backward(x, 1) })
}

// A tensor the caller still holds after backward is an activation again,
// not saved memory.
func TestSavedReturnsToActivation(t *testing.T) {
	before := MemStats()
	x := New(Activation, 4, 3)
	w := New(Trainable, 2, 3).SetRequiresGrad(true)
	tp := NewTape()
	y := tp.Linear(x, w, nil)
	mid := MemStats()
	if got := mid.Live[Saved] - before.Live[Saved]; got != 4*3*4 {
		t.Fatalf("saved %d bytes, want %d", got, 4*3*4)
	}
	loss, _ := tp.CrossEntropy(y, []int32{0, 1, -100, 1})
	tp.Backward(loss, 1)
	after := MemStats()
	if after.Live[Saved] != before.Live[Saved] {
		t.Fatalf("saved bytes after backward: %d, want %d", after.Live[Saved], before.Live[Saved])
	}
	if got := after.Live[Activation] - before.Live[Activation]; got < 4*3*4 {
		t.Fatalf("x is no longer counted as an activation (%d bytes)", got)
	}
	for _, u := range []*Tensor{loss, y, x, w.Grad, w} {
		u.Release()
	}
}
