package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The scalar kernels that activation.go replaced, kept as the reference the
// vector ones are tested and benchmarked against: float64 math.Exp per
// element, split across cores the same way.

func scalarSigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

type scalarSwiGLUJob swiGLUJob

func (j *scalarSwiGLUJob) Range(lo, hi int) {
	g, u := j.g, j.u
	if !j.backward {
		o := j.o
		for i := lo; i < hi; i++ {
			o[i] = g[i] * scalarSigmoid(g[i]) * u[i]
		}
		return
	}
	dg, du, dy := j.dg, j.du, j.dy
	for i := lo; i < hi; i++ {
		sg := scalarSigmoid(g[i])
		dg[i] += dy[i] * u[i] * sg * (1 + g[i]*(1-sg))
		du[i] += dy[i] * g[i] * sg
	}
}

func scalarSwiGLU(out, gate, up *Tensor) {
	Parallel(out.Len(), 4096, &scalarSwiGLUJob{o: out.Data(), g: gate.Data(), u: up.Data()})
}

func scalarSwiGLUBackward(dgate, dup, dout, gate, up *Tensor) {
	Parallel(dout.Len(), 4096, &scalarSwiGLUJob{dg: dgate.Data(), du: dup.Data(), dy: dout.Data(), g: gate.Data(), u: up.Data(), backward: true})
}

type scalarCrossEntropyJob crossEntropyJob

func (j *scalarCrossEntropyJob) Range(lo, hi int) {
	v, zs, ls := j.v, j.zs, j.ls
	if !j.backward {
		for r := lo; r < hi; r++ {
			row := zs[r*v : (r+1)*v]
			m := float32(math.Inf(-1))
			for _, z := range row {
				m = max(m, z)
			}
			var sum float64
			for _, z := range row {
				sum += math.Exp(float64(z - m))
			}
			ls[r] = m + float32(math.Log(sum))
		}
		return
	}
	ds, targets, scale := j.ds, j.targets, j.scale
	for r := lo; r < hi; r++ {
		t := targets[r]
		if t < 0 {
			continue
		}
		row, d := zs[r*v:(r+1)*v], ds[r*v:(r+1)*v]
		for j, z := range row {
			d[j] += scale * float32(math.Exp(float64(z-ls[r])))
		}
		d[t] -= scale
	}
}

func scalarCrossEntropy(lse, logits *Tensor, targets []int32) (float64, int) {
	v, zs, ls := logits.Cols(), logits.Data(), lse.Data()
	Parallel(len(targets), 4, &scalarCrossEntropyJob{v: v, zs: zs, ls: ls})
	return crossEntropySum(ls, zs, v, targets)
}

func scalarCrossEntropyBackward(dlogits, logits, lse *Tensor, targets []int32, scale float32) {
	Parallel(len(targets), 4, &scalarCrossEntropyJob{v: logits.Cols(), zs: logits.Data(), ls: lse.Data(), ds: dlogits.Data(),
		targets: targets, scale: scale, backward: true})
}

func randTensor(rng *rand.Rand, sd float64, shape ...int) *Tensor {
	t := New(Scratch, shape...)
	for i := range t.Data() {
		t.Data()[i] = float32(rng.NormFloat64() * sd)
	}
	return t
}

// closeTo reports whether got is within rel of want, relative to
// max(|want|, floor).
func closeTo(got, want float32, rel, floor float64) bool {
	if math.IsNaN(float64(want)) || math.IsInf(float64(want), 0) {
		return got == want || math.IsNaN(float64(got)) && math.IsNaN(float64(want))
	}
	return math.Abs(float64(got-want)) <= rel*max(math.Abs(float64(want)), floor)
}

// accumulatedClose reports whether got and want, both init + a kernel's
// contribution, have contributions within rel of each other, or of floor
// where the contribution itself is a cancellation, allowing for the
// rounding of the two float32 sums.
func accumulatedClose(got, want, init float32, rel, floor float64) bool {
	tol := rel*max(math.Abs(float64(want-init)), floor) + 0x1p-23*math.Abs(float64(want)) + 1e-30
	return math.Abs(float64(got-want)) <= tol
}

func TestSwiGLUMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 7, 8, 9, 1000, 1024, 1025, 4096*2 + 13, 512 * 1536 / 8} {
		for _, sd := range []float64{1, 4, 40} { // 40: σ's tails and beyond e^±88
			t.Run(fmt.Sprintf("%d_sd%g", n, sd), func(t *testing.T) {
				g, u, dy := randTensor(rng, sd, n), randTensor(rng, 1, n), randTensor(rng, 1, n)
				out, want := New(Scratch, n), New(Scratch, n)
				cpuBackend{}.SwiGLU(out, g, u)
				scalarSwiGLU(want, g, u)
				dg, du := randTensor(rng, 0.1, n), randTensor(rng, 0.1, n)
				wdg, wdu := dg.Clone(Scratch), du.Clone(Scratch)
				init := append(append([]float32(nil), dg.Data()...), du.Data()...)
				cpuBackend{}.SwiGLUBackward(dg, du, dy, g, u)
				scalarSwiGLUBackward(wdg, wdu, dy, g, u)
				for i := range n {
					// silu'(g) = σ(g)·(1 + g·(1 − σ(g))) cancels, in both
					// kernels: 1 − σ for large g, the sum near silu's
					// minimum at g ≈ −1.28. There dg is compared to the
					// size of the terms, dy·u·max(1, |g|).
					gi, dyu := float64(g.Data()[i]), math.Abs(float64(dy.Data()[i]*u.Data()[i]))
					if !closeTo(out.Data()[i], want.Data()[i], 1e-6, 1e-30) ||
						!accumulatedClose(dg.Data()[i], wdg.Data()[i], init[i], 1e-5, 0.1*dyu*max(1, math.Abs(gi))) ||
						!accumulatedClose(du.Data()[i], wdu.Data()[i], init[n+i], 1e-6, 0) {
						t.Fatalf("g=%g u=%g dy=%g: out %g, dg %g, du %g; scalar %g, %g, %g", g.Data()[i], u.Data()[i], dy.Data()[i],
							out.Data()[i], dg.Data()[i], du.Data()[i], want.Data()[i], wdg.Data()[i], wdu.Data()[i])
					}
				}
				inPlace := g.Clone(Scratch) // out may be gate
				cpuBackend{}.SwiGLU(inPlace, inPlace, u)
				for i, w := range out.Data() {
					if inPlace.Data()[i] != w {
						t.Fatalf("in place: %g, not %g", inPlace.Data()[i], w)
					}
				}
				for _, x := range []*Tensor{g, u, dy, out, want, dg, du, wdg, wdu, inPlace} {
					x.Release()
				}
			})
		}
	}
}

func TestCrossEntropyMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	cases := []struct {
		rows, v int
		sd      float64
	}{
		{3, 1, 1}, {5, 7, 1}, {4, 1000, 3}, {4, 1025, 30}, {6, 4096 + 3, 100}, {8, 49152, 3}, {2, 49152, 0.01},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d_sd%g", c.rows, c.v, c.sd), func(t *testing.T) {
			logits := randTensor(rng, c.sd, c.rows, c.v)
			defer logits.Release()
			targets := make([]int32, c.rows)
			for i := range targets {
				targets[i] = int32(rng.IntN(c.v))
			}
			targets[c.rows/2] = -100
			lse, wlse := New(Scratch, c.rows), New(Scratch, c.rows)
			defer lse.Release()
			defer wlse.Release()
			sum, n := cpuBackend{}.CrossEntropy(lse, logits, targets)
			wsum, wn := scalarCrossEntropy(wlse, logits, targets)
			if n != wn || math.Abs(sum-wsum) > 1e-6*max(math.Abs(wsum), 1) {
				t.Errorf("loss sum %g over %d rows, scalar %g over %d", sum, n, wsum, wn)
			}
			for r := range c.rows {
				if !closeTo(lse.Data()[r], wlse.Data()[r], 1e-6, 1) {
					t.Errorf("row %d: lse %.9g, scalar %.9g", r, lse.Data()[r], wlse.Data()[r])
				}
			}
			const scale = 0.37
			d := New(Scratch, c.rows, c.v)
			defer d.Release()
			for i := range d.Data() {
				d.Data()[i] = 0.25
			}
			wd := d.Clone(Scratch)
			defer wd.Release()
			// Both from the scalar lse, so that only the kernels differ.
			cpuBackend{}.CrossEntropyBackward(d, logits, wlse, targets, scale)
			scalarCrossEntropyBackward(wd, logits, wlse, targets, scale)
			for i, w := range wd.Data() {
				if got := d.Data()[i]; !accumulatedClose(got, w, 0.25, 1e-5, 0) {
					t.Fatalf("dlogits[%d] = %.9g, scalar %.9g", i, got, w)
				}
			}
		})
	}
}

// TestActivationKernelsAllocateNothing: the kernels' scratch lives on the
// stack and their arguments in recycled jobs.
func TestActivationKernelsAllocateNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	const rows, v = 8, 5000
	g, u, dy := randTensor(rng, 2, rows, v), randTensor(rng, 1, rows, v), randTensor(rng, 1, rows, v)
	out, dg, du, lse := New(Scratch, rows, v), New(Scratch, rows, v), New(Scratch, rows, v), New(Scratch, rows)
	defer func() {
		for _, x := range []*Tensor{g, u, dy, out, dg, du, lse} {
			x.Release()
		}
	}()
	targets := []int32{1, 2, -100, 3, 4, 5, 6, 7}
	be := cpuBackend{}
	step := func() {
		be.SwiGLU(out, g, u)
		be.SwiGLUBackward(dg, du, dy, g, u)
		be.CrossEntropy(lse, g, targets)
		be.CrossEntropyBackward(dg, g, lse, targets, 0.5)
	}
	step() // warm: worker goroutines started, jobs in their free lists
	if n := testing.AllocsPerRun(20, step); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

// BenchmarkSwiGLU times the SmolLM2-135M MLP gate (T = 512 tokens,
// intermediate 1536), forward and backward, scalar and vector kernels.
func BenchmarkSwiGLU(b *testing.B) {
	const n = 512 * 1536
	rng := rand.New(rand.NewPCG(15, 16))
	g, u, dy := randTensor(rng, 2, n), randTensor(rng, 1, n), randTensor(rng, 1, n)
	out, dg, du := New(Scratch, n), New(Scratch, n), New(Scratch, n)
	for _, k := range []struct {
		name string
		fwd  func(out, gate, up *Tensor)
		bwd  func(dgate, dup, dout, gate, up *Tensor)
	}{
		{"scalar", scalarSwiGLU, scalarSwiGLUBackward},
		{"vector", cpuBackend{}.SwiGLU, cpuBackend{}.SwiGLUBackward},
	} {
		b.Run("forward/"+k.name, func(b *testing.B) {
			for b.Loop() {
				k.fwd(out, g, u)
			}
		})
		b.Run("backward/"+k.name, func(b *testing.B) {
			for b.Loop() {
				k.bwd(dg, du, dy, g, u)
			}
		})
	}
}

// BenchmarkCrossEntropy times the SmolLM2-135M loss (T = 512 tokens,
// vocabulary 49152), forward and backward, scalar and vector kernels.
func BenchmarkCrossEntropy(b *testing.B) {
	const rows, v = 512, 49152
	rng := rand.New(rand.NewPCG(17, 18))
	logits := randTensor(rng, 3, rows, v)
	d := New(Scratch, rows, v)
	lse := New(Scratch, rows)
	targets := make([]int32, rows)
	for i := range targets {
		targets[i] = int32(rng.IntN(v))
	}
	for _, k := range []struct {
		name string
		fwd  func(lse, logits *Tensor, targets []int32) (float64, int)
		bwd  func(dlogits, logits, lse *Tensor, targets []int32, scale float32)
	}{
		{"scalar", scalarCrossEntropy, scalarCrossEntropyBackward},
		{"vector", cpuBackend{}.CrossEntropy, cpuBackend{}.CrossEntropyBackward},
	} {
		b.Run("forward/"+k.name, func(b *testing.B) {
			for b.Loop() {
				k.fwd(lse, logits, targets)
			}
		})
		b.Run("backward/"+k.name, func(b *testing.B) {
			for b.Loop() {
				k.bwd(d, logits, lse, targets, 1.0/rows)
			}
		})
	}
}
