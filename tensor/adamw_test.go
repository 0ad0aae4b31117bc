package tensor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// adamwRef is the float64 reference of one AdamW update (torch.optim.AdamW).
func adamwRef(p, g, m, v []float64, lr, b1, b2, eps, wd float64, t int) {
	bc1 := 1 - math.Pow(b1, float64(t))
	bc2 := 1 - math.Pow(b2, float64(t))
	for i := range p {
		p[i] *= 1 - lr*wd
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		p[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + eps)
	}
}

func TestAdamWKernel(t *testing.T) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	for _, tc := range []struct {
		name   string
		n      int
		lr, wd float64
	}{
		{"small", 37, 1e-2, 0.1},
		{"no-decay", 37, 3e-3, 0},
		{"zero-lr", 37, 0, 0.1},
		{"parallel", 3*adamwMinWork + 17, 1e-3, 0.01}, // several chunks
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := gcRNG(7)
			p := gcTensor(rng, Trainable, 0, 1, tc.n)
			m, v := New(Optimizer, tc.n), New(Optimizer, tc.n)
			defer gcRelease(p, m, v)
			pr, mr, vr := gcF64(p), make([]float64, tc.n), make([]float64, tc.n)
			for step := 1; step <= 4; step++ {
				g := gcTensor(rng, Gradient, 0, 0.5, tc.n)
				g.Data()[0] = 0 // a zero gradient keeps m, v at their decayed values
				gr := gcF64(g)
				bc1 := 1 - math.Pow(b1, float64(step))
				bc2 := 1 - math.Pow(b2, float64(step))
				cpuBackend{}.AdamW(p, g, m, v, tc.lr, b1, b2, eps, tc.wd, bc1, bc2)
				adamwRef(pr, gr, mr, vr, tc.lr, b1, b2, eps, tc.wd, step)
				require.Equal(t, gr, gcF64(g), "gradient must be read only")
				// Absolute floors: m and v are sums of float32 terms of size
				// ~|g| and ~|g|²·(1−β2), whose rounding survives cancellation.
				// (Checked by hand: testify per element is slow on 100k values.)
				for i := range pr {
					if d := math.Abs(float64(p.Data()[i]) - pr[i]); d > 1e-6*max(1, math.Abs(pr[i])) {
						t.Fatalf("p[%d] at step %d: got %v want %v", i, step, p.Data()[i], pr[i])
					}
					if d := math.Abs(float64(m.Data()[i]) - mr[i]); d > 1e-7+1e-6*math.Abs(mr[i]) {
						t.Fatalf("m[%d] at step %d: got %v want %v", i, step, m.Data()[i], mr[i])
					}
					if d := math.Abs(float64(v.Data()[i]) - vr[i]); d > 1e-10+1e-6*math.Abs(vr[i]) {
						t.Fatalf("v[%d] at step %d: got %v want %v", i, step, v.Data()[i], vr[i])
					}
				}
				g.Release()
			}
		})
	}
}

// The split across cores must not change a single bit.
func TestAdamWKernelParallelDeterministic(t *testing.T) {
	n := 4*adamwMinWork + 3
	rng := gcRNG(11)
	p := gcTensor(rng, Trainable, 0, 1, n)
	g := gcTensor(rng, Gradient, 0, 1, n)
	m := gcTensor(rng, Optimizer, 0, 0.1, n)
	v := gcTensor(rng, Optimizer, 1, 0.1, n)
	p2, m2, v2 := p.Clone(Trainable), m.Clone(Optimizer), v.Clone(Optimizer)
	defer gcRelease(p, g, m, v, p2, m2, v2)
	cpuBackend{}.AdamW(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.5, 0.25)
	for lo := 0; lo < n; lo += 1000 { // serial reference, in small pieces
		hi := min(lo+1000, n)
		sl := func(t *Tensor) *Tensor { return FromSlice(Scratch, t.Data()[lo:hi], hi-lo) }
		ps, gs, ms, vs := sl(p2), sl(g), sl(m2), sl(v2)
		cpuBackend{}.AdamW(ps, gs, ms, vs, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.5, 0.25)
		gcRelease(ps, gs, ms, vs)
	}
	require.Equal(t, p2.Data(), p.Data())
	require.Equal(t, m2.Data(), m.Data())
	require.Equal(t, v2.Data(), v.Data())
}

func TestAdamWKernelShapeMismatch(t *testing.T) {
	p, g := New(Trainable, 4), New(Gradient, 5)
	m, v := New(Optimizer, 4), New(Optimizer, 4)
	defer gcRelease(p, g, m, v)
	require.Panics(t, func() { cpuBackend{}.AdamW(p, g, m, v, 1, 0.9, 0.999, 1e-8, 0, 1, 1) })
	g2 := New(Gradient, 4)
	defer g2.Release()
	require.Panics(t, func() { cpuBackend{}.AdamW(p, g2, m, v, 1, 0.9, 0.999, 1e-8, 0, 0, 1) }, "bc1 = 0")
}
