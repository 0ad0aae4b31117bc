package tensor

import (
	"math/rand/v2"
	"unsafe"
)

// Small elementwise ops the adapter methods (LoRA, DoRA) are built from.
// Like the ops in ops.go, each saves exactly what its backward reads and
// returns a new Activation owned by the caller.
//
// Every op runs on the Backend's kernels (Mul, MulCols and Dropout on
// those of backend_extra.go).

// Scale returns s·x. It saves nothing.
func (tp *Tape) Scale(x *Tensor, s float32) *Tensor {
	y := New(Activation, x.shape...)
	backend.AddScaled(y, s, x)
	if tp.recording(x) {
		tp.record(y, scaleBackward, x).scale = s
	}
	return y
}

func scaleBackward(_ *Tape, n *node, dy *Tensor) {
	backend.AddScaled(gradOf(n.in[0]), n.scale, dy)
}

// AddScaled returns a + s·b (same shape): the scaled adapter branch added
// to the base output. It saves nothing.
func (tp *Tape) AddScaled(a, b *Tensor, s float32) *Tensor {
	if !SameShape(a, b) {
		mismatch("AddScaled", "shapes %v and %v differ", a.shape, b.shape)
	}
	y := New(Activation, a.shape...)
	backend.AddScaled(y, 1, a)
	backend.AddScaled(y, s, b)
	if tp.recording(a, b) {
		tp.record(y, addScaledBackward, a, b).scale = s
	}
	return y
}

func addScaledBackward(_ *Tape, n *node, dy *Tensor) {
	a, b := n.in[0], n.in[1]
	if a.requiresGrad {
		backend.AddScaled(gradOf(a), 1, dy)
	}
	if b.requiresGrad {
		backend.AddScaled(gradOf(b), n.scale, dy)
	}
}

// AddBias returns y + b with b (Cols) added to every row of y.
// Backward: dy passes to y, db += Σ_rows dy. It saves nothing.
func (tp *Tape) AddBias(y, b *Tensor) *Tensor {
	if b.Len() != y.Cols() {
		mismatch("AddBias", "bias has %d values, y is %v", b.Len(), y.shape)
	}
	out := New(Activation, y.shape...)
	backend.AddScaled(out, 1, y)
	backend.AddRowVector(out, b)
	if tp.recording(y, b) {
		tp.record(out, addBiasBackward, y, b)
	}
	return out
}

func addBiasBackward(_ *Tape, n *node, dy *Tensor) {
	y, b := n.in[0], n.in[1]
	if y.requiresGrad {
		backend.AddScaled(gradOf(y), 1, dy)
	}
	if b.requiresGrad {
		backend.SumRows(gradOf(b), dy)
	}
}

// Mul returns a ⊙ b, elementwise (same shape). Backward: da += dy ⊙ b,
// db += dy ⊙ a; it saves b when a needs a gradient and a when b does.
func (tp *Tape) Mul(a, b *Tensor) *Tensor {
	if !SameShape(a, b) {
		mismatch("Mul", "shapes %v and %v differ", a.shape, b.shape)
	}
	y := New(Activation, a.shape...)
	backend.MulElems(y, a, b, false)
	if !tp.recording(a, b) {
		return y
	}
	n := tp.record(y, mulBackward, a, b)
	if a.requiresGrad {
		n.save(b)
	}
	if b.requiresGrad {
		n.save(a)
	}
	return y
}

func mulBackward(_ *Tape, n *node, dy *Tensor) {
	a, b := n.in[0], n.in[1]
	if a.requiresGrad {
		backend.MulElems(gradOf(a), dy, b, true)
	}
	if b.requiresGrad {
		backend.MulElems(gradOf(b), dy, a, true)
	}
}

type mulColsJob struct {
	c          int
	os, ys, vs []float32
	accumulate bool // os += ys ⊙ vs (backward) instead of os = ys ⊙ vs
}

var mulColsJobs Jobs[mulColsJob]

func (j *mulColsJob) Range(lo, hi int) {
	c, os, ys, vs := j.c, j.os, j.ys, j.vs
	for r := lo; r < hi; r++ {
		o, yr := os[r*c:(r+1)*c], ys[r*c:(r+1)*c]
		if j.accumulate {
			for j := range o {
				o[j] += yr[j] * vs[j]
			}
		} else {
			for j := range o {
				o[j] = yr[j] * vs[j]
			}
		}
	}
}

// MulCols returns y ⊙ v with v (Cols) multiplying every row of y (N, C):
// out[n, c] = y[n, c]·v[c], a per-output-feature scale (DoRA's m/‖W‖).
// Backward: dy_in = dout ⊙ v, dv += Σ_n dout ⊙ y. It saves v when y needs
// a gradient and y when v does.
func (tp *Tape) MulCols(y, v *Tensor) *Tensor {
	if v.Len() != y.Cols() {
		mismatch("MulCols", "v has %d values, y is %v", v.Len(), y.shape)
	}
	out := New(Activation, y.shape...)
	backend.MulCols(out, y, v, false)
	if !tp.recording(y, v) {
		return out
	}
	n := tp.record(out, mulColsBackward, y, v)
	if y.requiresGrad {
		n.save(v)
	}
	if v.requiresGrad {
		n.save(y)
	}
	return out
}

func mulColsBackward(_ *Tape, n *node, dout *Tensor) {
	y, v := n.in[0], n.in[1]
	if y.requiresGrad {
		backend.MulCols(gradOf(y), dout, v, true)
	}
	if v.requiresGrad {
		backend.SumRowsMul(gradOf(v), dout, y) // column sums in float64
	}
}

// unsafeFloat64s views the storage of 2n float32s as n float64s (pooled
// storage is 64-byte aligned).
func unsafeFloat64s(f []float32) []float64 {
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(f))), len(f)/2)
}

// dropoutChunk is how many elements share one random stream. The mask is
// a function of (seed, element index) alone, never of the number of
// workers, so a run is reproducible on any machine.
const dropoutChunk = 4096

// dropoutJob applies the mask of dropout(p, seed) to chunks of elements:
// ys[i] = xs[i]·keepScale for kept elements, or ys[i] += xs[i]·keepScale
// when accumulating (backward). Dropped elements are left alone. Each
// chunk draws its own stream, keep = Float64() ≥ p as PyTorch draws it.
type dropoutJob struct {
	n          int
	p          float64
	seed       uint64
	keepScale  float32
	ys, xs     []float32
	accumulate bool
}

var dropoutJobs Jobs[dropoutJob]

func (j *dropoutJob) Range(clo, chi int) {
	ys, xs, s := j.ys, j.xs, j.keepScale
	for c := clo; c < chi; c++ {
		var rng rand.PCG // rand.New(&rng).Float64(), without the allocation
		rng.Seed(splitmix64(j.seed^uint64(c)*0x9e3779b97f4a7c15), splitmix64(j.seed+uint64(c)))
		lo, hi := c*dropoutChunk, min((c+1)*dropoutChunk, j.n)
		for i := lo; i < hi; i++ {
			if float64(rng.Uint64()<<11>>11)/(1<<53) >= j.p {
				if j.accumulate {
					ys[i] += xs[i] * s
				} else {
					ys[i] = xs[i] * s
				}
			}
		}
	}
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// dropoutMask calls fn for the chunks of n elements with keep drawing the
// mask of dropout(p, seed) through rand.Rand, element by element: the
// reference that dropoutJob, which draws the same numbers without
// allocating, is tested against.
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

// Dropout zeroes each element of x with probability p and scales the kept
// ones by 1/(1−p), as torch.nn.Dropout in training mode (p = 1 zeroes
// everything). The mask is a pure function of seed: backward draws it
// again instead of saving it, so the op saves nothing. The same (x, p,
// seed) always gives the same result.
func (tp *Tape) Dropout(x *Tensor, p float64, seed uint64) *Tensor {
	if !(p >= 0 && p <= 1) {
		mismatch("Dropout", "p = %v outside [0, 1]", p)
	}
	keepScale := float32(0)
	if p < 1 {
		keepScale = float32(1 / (1 - p))
	}
	y := New(Activation, x.shape...)
	backend.Dropout(y, x, p, seed, false)
	if tp.recording(x) {
		nd := tp.record(y, dropoutBackward, x)
		nd.p, nd.seed, nd.scale = p, seed, keepScale
	}
	return y
}

func dropoutBackward(_ *Tape, n *node, dy *Tensor) {
	backend.Dropout(gradOf(n.in[0]), dy, n.p, n.seed, true)
}
