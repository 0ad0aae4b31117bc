package tensor

import (
	"math/rand/v2"
)

// Small elementwise ops the adapter methods (LoRA, DoRA) are built from.
// Like the ops in ops.go, each saves exactly what its backward reads and
// returns a new Activation owned by the caller.
//
// Scale, AddScaled and AddBias run on the Backend's kernels. Mul, MulCols
// and Dropout have no Backend kernel yet and loop over Data() directly, so
// they assume host-visible storage (the CPU backend).

// Scale returns s·x. It saves nothing.
func (tp *Tape) Scale(x *Tensor, s float32) *Tensor {
	y := New(Activation, x.shape...)
	backend.AddScaled(y, s, x)
	if tp.recording(x) {
		tp.record(y, nil, func(dy *Tensor) {
			backend.AddScaled(gradOf(x), s, dy)
		})
	}
	return y
}

// AddScaled returns a + s·b (same shape): the scaled adapter branch added
// to the base output. It saves nothing.
func (tp *Tape) AddScaled(a, b *Tensor, s float32) *Tensor {
	mustMatch("AddScaled", SameShape(a, b), "shapes %v and %v differ", a.shape, b.shape)
	y := New(Activation, a.shape...)
	backend.AddScaled(y, 1, a)
	backend.AddScaled(y, s, b)
	if tp.recording(a, b) {
		tp.record(y, nil, func(dy *Tensor) {
			if a.requiresGrad {
				backend.AddScaled(gradOf(a), 1, dy)
			}
			if b.requiresGrad {
				backend.AddScaled(gradOf(b), s, dy)
			}
		})
	}
	return y
}

// AddBias returns y + b with b (Cols) added to every row of y.
// Backward: dy passes to y, db += Σ_rows dy. It saves nothing.
func (tp *Tape) AddBias(y, b *Tensor) *Tensor {
	mustMatch("AddBias", b.Len() == y.Cols(), "bias has %d values, y is %v", b.Len(), y.shape)
	out := New(Activation, y.shape...)
	backend.AddScaled(out, 1, y)
	backend.AddRowVector(out, b)
	if tp.recording(y, b) {
		tp.record(out, nil, func(dy *Tensor) {
			if y.requiresGrad {
				backend.AddScaled(gradOf(y), 1, dy)
			}
			if b.requiresGrad {
				backend.SumRows(gradOf(b), dy)
			}
		})
	}
	return out
}

// Mul returns a ⊙ b, elementwise (same shape). Backward: da += dy ⊙ b,
// db += dy ⊙ a; it saves b when a needs a gradient and a when b does.
func (tp *Tape) Mul(a, b *Tensor) *Tensor {
	mustMatch("Mul", SameShape(a, b), "shapes %v and %v differ", a.shape, b.shape)
	y := New(Activation, a.shape...)
	ys, as, bs := y.Data(), a.Data(), b.Data()
	for i := range ys {
		ys[i] = as[i] * bs[i]
	}
	if !tp.recording(a, b) {
		return y
	}
	var saved []*Tensor
	if a.requiresGrad {
		saved = append(saved, b)
	}
	if b.requiresGrad {
		saved = append(saved, a)
	}
	tp.record(y, saved, func(dy *Tensor) {
		d := dy.Data()
		if a.requiresGrad {
			g, bs := gradOf(a).Data(), b.Data()
			for i := range g {
				g[i] += d[i] * bs[i]
			}
		}
		if b.requiresGrad {
			g, as := gradOf(b).Data(), a.Data()
			for i := range g {
				g[i] += d[i] * as[i]
			}
		}
	})
	return y
}

// MulCols returns y ⊙ v with v (Cols) multiplying every row of y (N, C):
// out[n, c] = y[n, c]·v[c], a per-output-feature scale (DoRA's m/‖W‖).
// Backward: dy_in = dout ⊙ v, dv += Σ_n dout ⊙ y. It saves v when y needs
// a gradient and y when v does.
func (tp *Tape) MulCols(y, v *Tensor) *Tensor {
	mustMatch("MulCols", v.Len() == y.Cols(), "v has %d values, y is %v", v.Len(), y.shape)
	out := New(Activation, y.shape...)
	c := y.Cols()
	os, ys, vs := out.Data(), y.Data(), v.Data()
	parallelFor(y.Rows(), 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o, yr := os[r*c:(r+1)*c], ys[r*c:(r+1)*c]
			for j := range o {
				o[j] = yr[j] * vs[j]
			}
		}
	})
	if !tp.recording(y, v) {
		return out
	}
	var saved []*Tensor
	if y.requiresGrad {
		saved = append(saved, v)
	}
	if v.requiresGrad {
		saved = append(saved, y)
	}
	tp.record(out, saved, func(dout *Tensor) {
		d := dout.Data()
		if y.requiresGrad {
			g, vs := gradOf(y).Data(), v.Data()
			parallelFor(y.Rows(), 64, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					gr, dr := g[r*c:(r+1)*c], d[r*c:(r+1)*c]
					for j := range gr {
						gr[j] += dr[j] * vs[j]
					}
				}
			})
		}
		if v.requiresGrad {
			// Column sums in float64: they run over every row.
			acc := make([]float64, c)
			ys := y.Data()
			for r := 0; r < y.Rows(); r++ {
				dr, yr := d[r*c:(r+1)*c], ys[r*c:(r+1)*c]
				for j := range acc {
					acc[j] += float64(dr[j]) * float64(yr[j])
				}
			}
			g := gradOf(v).Data()
			for j := range g {
				g[j] += float32(acc[j])
			}
		}
	})
	return out
}

// dropoutChunk is how many elements share one random stream. The mask is
// a function of (seed, element index) alone, never of the number of
// workers, so a run is reproducible on any machine.
const dropoutChunk = 4096

// dropoutMask calls fn(i, keep) for every element index i of n in chunks
// run in parallel, with keep drawn as PyTorch draws it: an element is
// dropped with probability p.
func dropoutMask(n int, p float64, seed uint64, fn func(lo, hi int, keep func() bool)) {
	chunks := (n + dropoutChunk - 1) / dropoutChunk
	parallelFor(chunks, 4, func(clo, chi int) {
		for c := clo; c < chi; c++ {
			rng := rand.New(rand.NewPCG(splitmix64(seed^uint64(c)*0x9e3779b97f4a7c15), splitmix64(seed+uint64(c))))
			lo, hi := c*dropoutChunk, min((c+1)*dropoutChunk, n)
			fn(lo, hi, func() bool { return rng.Float64() >= p })
		}
	})
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Dropout zeroes each element of x with probability p and scales the kept
// ones by 1/(1−p), as torch.nn.Dropout in training mode (p = 1 zeroes
// everything). The mask is a pure function of seed: backward draws it
// again instead of saving it, so the op saves nothing. The same (x, p,
// seed) always gives the same result.
func (tp *Tape) Dropout(x *Tensor, p float64, seed uint64) *Tensor {
	mustMatch("Dropout", p >= 0 && p <= 1, "p = %v outside [0, 1]", p)
	keepScale := float32(0)
	if p < 1 {
		keepScale = float32(1 / (1 - p))
	}
	y := New(Activation, x.shape...)
	ys, xs := y.Data(), x.Data()
	dropoutMask(len(xs), p, seed, func(lo, hi int, keep func() bool) {
		for i := lo; i < hi; i++ {
			if keep() {
				ys[i] = xs[i] * keepScale
			}
		}
	})
	if tp.recording(x) {
		tp.record(y, nil, func(dy *Tensor) {
			g, d := gradOf(x).Data(), dy.Data()
			dropoutMask(len(g), p, seed, func(lo, hi int, keep func() bool) {
				for i := lo; i < hi; i++ {
					if keep() {
						g[i] += d[i] * keepScale
					}
				}
			})
		})
	}
	return y
}
