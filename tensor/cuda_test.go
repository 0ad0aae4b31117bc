//go:build cuda

package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With -tags cuda the tests of this package run on the GPU when one is
// usable: UseCUDA installs the CUDA backend and GPU memory for every tensor
// (so the op, tape and decode tests exercise it too), and the tests below
// compare each kernel of the CUDA backend with the CPU backend's on the
// same inputs. Without a GPU they skip, and the rest runs on the CPU.
//
// Tolerances, as the maximum absolute difference relative to the largest
// CPU value: float32 kernels 1e-5, bfloat16 GEMMs 1e-2; AdamW, NF4,
// dropout and the gathers must match bit for bit.

var (
	gpu    *cudaBackend // nil without a usable GPU
	gpuErr error
)

func init() {
	if os.Getenv("PACA_DEVICE") == "cpu" {
		gpuErr = fmt.Errorf("PACA_DEVICE=cpu")
	} else if _, gpuErr = UseCUDA(); gpuErr == nil {
		gpu = backend.(*cudaBackend)
	}
	if os.Getenv("PACA_CUDATEST_QUIET") == "" { // not in a test's child process
		on := fmt.Sprintf("cpu (no usable CUDA GPU: %v)", gpuErr)
		if gpu != nil {
			on = gpu.Name()
		}
		fmt.Fprintf(os.Stderr, "tests on %s\n", on)
		os.Setenv("PACA_CUDATEST_QUIET", "1")
	}
}

// needGPU returns the CUDA backend, or skips the test without one.
func needGPU(t *testing.T) Backend {
	t.Helper()
	if gpu == nil {
		t.Skipf("no usable CUDA GPU: %v", gpuErr)
	}
	return gpu
}

// setNaive makes g run the naive attention kernels (or the tiled ones).
func setNaive(g Backend, on bool) {
	if c, ok := g.(*cudaBackend); ok {
		c.naiveAttention = on
	}
}

const (
	tolF32  = 1e-5
	tolBF16 = 1e-2
)

// gpuRand returns a tensor of the shape with normal values times scale.
func gpuRand(rng *rand.Rand, scale float32, shape ...int) *Tensor {
	t := New(Scratch, shape...)
	d := t.Data()
	for i := range d {
		d[i] = scale * float32(rng.NormFloat64())
	}
	return t
}

// relErr is max |got − want| / max |want| (max |got − want| when want is 0).
func relErr(got, want []float32) float64 {
	var diff, ref float64
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		diff = max(diff, d)
		ref = max(ref, math.Abs(float64(want[i])))
	}
	if ref == 0 {
		return diff
	}
	return diff / ref
}

func assertClose(t *testing.T, got, want *Tensor, tol float64, what string, args ...any) {
	t.Helper()
	require.Equal(t, want.Len(), got.Len())
	e := relErr(got.Data(), want.Data())
	assert.LessOrEqual(t, e, tol, "%s: relative error %.3g", fmt.Sprintf(what, args...), e)
}

func assertSame(t *testing.T, got, want *Tensor, what string, args ...any) {
	t.Helper()
	g, w := got.Data(), want.Data()
	require.Equal(t, len(w), len(g))
	bad := 0
	for i := range w {
		if math.Float32bits(g[i]) != math.Float32bits(w[i]) && !(g[i] != g[i] && w[i] != w[i]) {
			if bad == 0 {
				t.Errorf("%s: element %d is %v, want %v", fmt.Sprintf(what, args...), i, g[i], w[i])
			}
			bad++
		}
	}
	if bad > 1 {
		t.Errorf("%s: %d elements differ", fmt.Sprintf(what, args...), bad)
	}
}

// pair returns two copies of t (for the CPU and the GPU run) and
// releases t.
func pair(t *Tensor) (*Tensor, *Tensor) {
	a, b := t.Clone(Scratch), t.Clone(Scratch)
	t.Release()
	return a, b
}

func release(ts ...*Tensor) {
	for _, t := range ts {
		t.Release()
	}
}

var cpuRef cpuBackend

// Every field of cudaKernels names a kernel of the sources (this needs no
// GPU: it checks the table against kernels/*.cu).
func TestCUDAKernelTable(t *testing.T) {
	src := kernelSource()
	ty := reflect.TypeOf(cudaKernels{})
	for i := 0; i < ty.NumField(); i++ {
		name := kernelName(ty.Field(i).Name)
		re := regexp.MustCompile(`extern "C" __global__ void ` + name + `\(`)
		assert.True(t, re.MatchString(src), "no kernel %s for field %s", name, ty.Field(i).Name)
	}
}

// Without a GPU UseCUDA says why and changes nothing.
func TestCUDAUnavailableKeepsCPU(t *testing.T) {
	if gpu != nil {
		t.Skip("a GPU is in use")
	}
	require.Error(t, gpuErr)
	assert.Equal(t, "cpu", CurrentBackend().Name())
	assert.False(t, OnDevice())
}

var sizes = []int{1, 3, 17, 64, 130}

func TestCUDAGemm(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, mnk := range [][3]int{{1, 1, 1}, {3, 17, 64}, {130, 3, 17}, {64, 130, 1}, {17, 64, 130}, {130, 130, 130}} {
				for _, ab := range [][2]float32{{1, 0}, {0.7, 1}, {-1.5, 0.5}} {
					m, n, k := mnk[0], mnk[1], mnk[2]
					ash, bsh := []int{m, k}, []int{k, n}
					if ta {
						ash = []int{k, m}
					}
					if tb {
						bsh = []int{n, k}
					}
					a, b := gpuRand(rng, 1, ash...), gpuRand(rng, 1, bsh...)
					c := gpuRand(rng, 1, m, n)
					if ab[1] == 0 {
						c.Data()[0] = float32(math.NaN()) // beta 0 must not read c
					}
					cc, cg := pair(c)
					cpuRef.Gemm(ta, tb, ab[0], a, b, ab[1], cc)
					g.Gemm(ta, tb, ab[0], a, b, ab[1], cg)
					assertClose(t, cg, cc, tolF32, "Gemm ta=%v tb=%v m,n,k=%v alpha,beta=%v", ta, tb, mnk, ab)
					release(a, b, cc, cg)
				}
			}
		}
	}
}

// With PACA_GEMM_BF16's rounding the GEMM is within bfloat16's precision.
func TestCUDAGemmBF16(t *testing.T) {
	g := needGPU(t)
	c, ok := g.(*cudaBackend)
	require.True(t, ok)
	c.bf16 = true
	defer func() { c.bf16 = false }()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, mnk := range [][3]int{{1, 3, 17}, {130, 64, 130}, {17, 130, 64}} {
		m, n, k := mnk[0], mnk[1], mnk[2]
		a, b := gpuRand(rng, 1, m, k), gpuRand(rng, 1, n, k)
		c := gpuRand(rng, 1, m, n)
		cc, cg := pair(c)
		cpuRef.Gemm(false, true, 1, a, b, 1, cc)
		g.Gemm(false, true, 1, a, b, 1, cg)
		assertClose(t, cg, cc, tolBF16, "bf16 Gemm %v", mnk)
		release(a, b, cc, cg)
	}
}

func TestCUDAElementwise(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, rows := range sizes {
		for _, cols := range []int{1, 17, 130} {
			x, y := gpuRand(rng, 1, rows, cols), gpuRand(rng, 1, rows, cols)
			v := gpuRand(rng, 1, cols)
			two := func(name string, f func(be Backend, d *Tensor)) {
				dc, dg := pair(gpuRand(rng, 1, rows, cols))
				f(cpuRef, dc)
				f(g, dg)
				assertClose(t, dg, dc, tolF32, "%s %dx%d", name, rows, cols)
				release(dc, dg)
			}
			two("Add", func(be Backend, d *Tensor) { be.Add(d, x, y) })
			two("AddScaled", func(be Backend, d *Tensor) { be.AddScaled(d, -0.3, x) })
			two("AddRowVector", func(be Backend, d *Tensor) { be.AddRowVector(d, v) })
			two("Scale", func(be Backend, d *Tensor) { be.Scale(d, 0.25) })
			two("MulElems", func(be Backend, d *Tensor) { be.MulElems(d, x, y, false) })
			two("MulElems+=", func(be Backend, d *Tensor) { be.MulElems(d, x, y, true) })
			two("MulCols", func(be Backend, d *Tensor) { be.MulCols(d, x, v, false) })
			two("MulCols+=", func(be Backend, d *Tensor) { be.MulCols(d, x, v, true) })
			two("SwiGLU", func(be Backend, d *Tensor) { be.SwiGLU(d, x, y) })
			sc, sg := pair(gpuRand(rng, 1, cols))
			cpuRef.SumRows(sc, x)
			g.SumRows(sg, x)
			assertClose(t, sg, sc, tolF32, "SumRows %dx%d", rows, cols)
			cpuRef.SumRowsMul(sc, x, y)
			g.SumRowsMul(sg, x, y)
			assertClose(t, sg, sc, tolF32, "SumRowsMul %dx%d", rows, cols)
			gc, gg := pair(gpuRand(rng, 1, rows, cols))
			uc, ug := pair(gpuRand(rng, 1, rows, cols))
			dy := gpuRand(rng, 1, rows, cols)
			cpuRef.SwiGLUBackward(gc, uc, dy, x, y)
			g.SwiGLUBackward(gg, ug, dy, x, y)
			assertClose(t, gg, gc, tolF32, "SwiGLUBackward dgate %dx%d", rows, cols)
			assertClose(t, ug, uc, tolF32, "SwiGLUBackward dup %dx%d", rows, cols)
			release(x, y, v, sc, sg, gc, gg, uc, ug, dy)
		}
	}
}

func TestCUDAGathers(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range sizes {
		for _, c := range []int{1, 17, 130} {
			vocab := 40
			table := gpuRand(rng, 1, vocab, c)
			ids := make([]int32, n)
			for i := range ids {
				ids[i] = int32(rng.IntN(vocab)) // repeats
			}
			dc, dg := New(Scratch, n, c), New(Scratch, n, c)
			cpuRef.GatherRows(dc, table, ids)
			g.GatherRows(dg, table, ids)
			assertSame(t, dg, dc, "GatherRows n=%d c=%d", n, c)
			src := gpuRand(rng, 1, n, c)
			tc, tg := pair(gpuRand(rng, 1, vocab, c))
			cpuRef.ScatterAddRows(tc, src, ids)
			g.ScatterAddRows(tg, src, ids)
			assertClose(t, tg, tc, tolF32, "ScatterAddRows n=%d c=%d", n, c)

			in := c + 5
			idx := rng.Perm(in)[:min(c, in)]
			x := gpuRand(rng, 1, n, in)
			xc, xg := New(Scratch, n, len(idx)), New(Scratch, n, len(idx))
			cpuRef.GatherCols(xc, x, idx)
			g.GatherCols(xg, x, idx)
			assertSame(t, xg, xc, "GatherCols n=%d r=%d", n, len(idx))
			// Same slice, new values: the cached device copy is refreshed.
			idx[0] = (idx[0] + 1) % in
			for j := 1; j < len(idx); j++ {
				if idx[j] == idx[0] {
					idx[j] = (idx[j] + in - 1) % in
				}
			}
			cpuRef.ScatterAddCols(x, 0.5, xc, idx)
			wc, wg := pair(x)
			cpuRef.ScatterAddCols(wc, -1.5, xc, idx)
			g.ScatterAddCols(wg, -1.5, xc, idx)
			assertClose(t, wg, wc, tolF32, "ScatterAddCols n=%d r=%d", n, len(idx))
			release(table, dc, dg, src, tc, tg, xc, xg, wc, wg)
		}
	}
}

func TestCUDARMSNorm(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, rows := range sizes {
		for _, cols := range []int{1, 17, 576, 1030} {
			x, w := gpuRand(rng, 2, rows, cols), gpuRand(rng, 1, cols)
			yc, yg := New(Scratch, rows, cols), New(Scratch, rows, cols)
			rc, rg := New(Scratch, rows), New(Scratch, rows)
			cpuRef.RMSNorm(yc, rc, x, w, 1e-5)
			g.RMSNorm(yg, rg, x, w, 1e-5)
			assertClose(t, yg, yc, tolF32, "RMSNorm y %dx%d", rows, cols)
			assertClose(t, rg, rc, tolF32, "RMSNorm rstd %dx%d", rows, cols)
			dy := gpuRand(rng, 1, rows, cols)
			dxc, dxg := pair(gpuRand(rng, 1, rows, cols))
			dwc, dwg := pair(gpuRand(rng, 1, cols))
			cpuRef.RMSNormBackward(dxc, dwc, dy, x, w, rc)
			g.RMSNormBackward(dxg, dwg, dy, x, w, rc)
			assertClose(t, dxg, dxc, tolF32, "RMSNormBackward dx %dx%d", rows, cols)
			assertClose(t, dwg, dwc, tolF32, "RMSNormBackward dw %dx%d", rows, cols)
			cpuRef.RMSNormBackward(nil, dwc, dy, x, w, rc)
			g.RMSNormBackward(nil, dwg, dy, x, w, rc)
			assertClose(t, dwg, dwc, tolF32, "RMSNormBackward dw only %dx%d", rows, cols)
			release(x, w, yc, yg, rc, rg, dy, dxc, dxg, dwc, dwg)
		}
	}
}

func TestCUDARoPE(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct{ B, T, heads, D, start int }{{1, 1, 1, 2, 0}, {2, 17, 3, 16, 0}, {1, 130, 9, 64, 5}, {3, 3, 2, 128, 1}} {
		npos := tc.start + tc.T
		cs, sn := New(Scratch, npos, tc.D/2), New(Scratch, npos, tc.D/2)
		for p := 0; p < npos; p++ {
			for i := 0; i < tc.D/2; i++ {
				th := float64(p) * math.Pow(10000, -2*float64(i)/float64(tc.D))
				cs.Data()[p*tc.D/2+i], sn.Data()[p*tc.D/2+i] = float32(math.Cos(th)), float32(math.Sin(th))
			}
		}
		x := gpuRand(rng, 1, tc.B*tc.T, tc.heads*tc.D)
		for _, inv := range []bool{false, true} {
			yc, yg := New(Scratch, x.Shape()...), New(Scratch, x.Shape()...)
			cpuRef.RoPE(yc, x, cs, sn, tc.T, tc.D, inv)
			g.RoPE(yg, x, cs, sn, tc.T, tc.D, inv)
			assertClose(t, yg, yc, tolF32, "RoPE %+v inverse=%v", tc, inv)
			release(yc, yg)
		}
		xc, xg := pair(x.Clone(Scratch))
		cpuRef.RoPEAt(xc, xc, cs, sn, tc.start, tc.T, tc.D) // in place
		g.RoPEAt(xg, xg, cs, sn, tc.start, tc.T, tc.D)
		assertClose(t, xg, xc, tolF32, "RoPEAt %+v", tc)
		release(cs, sn, x, xc, xg)
	}
}

// attnShapes has GQA and plain heads, lengths across tile edges, and a
// head size above the tiled kernels' limit (the naive kernels run it).
var attnShapes = []AttnShape{
	{B: 1, T: 1, H: 1, KV: 1, D: 16},
	{B: 2, T: 17, H: 4, KV: 2, D: 16},
	{B: 1, T: 33, H: 3, KV: 1, D: 64},
	{B: 1, T: 130, H: 9, KV: 3, D: 64},
	{B: 2, T: 64, H: 2, KV: 2, D: 128},
	{B: 1, T: 40, H: 2, KV: 1, D: 160},
}

func TestCUDAAttention(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(13, 14))
	for _, naive := range []bool{false, true} {
		setNaive(g, naive)
		for _, s := range attnShapes {
			q := gpuRand(rng, 1, s.B*s.T, s.H*s.D)
			k, v := gpuRand(rng, 1, s.B*s.T, s.KV*s.D), gpuRand(rng, 1, s.B*s.T, s.KV*s.D)
			oc, og := New(Scratch, q.Shape()...), New(Scratch, q.Shape()...)
			lc, lg := New(Scratch, s.B, s.H, s.T), New(Scratch, s.B, s.H, s.T)
			cpuRef.Attention(oc, lc, q, k, v, s)
			g.Attention(og, lg, q, k, v, s)
			assertClose(t, og, oc, tolF32, "Attention out %+v naive=%v", s, naive)
			assertClose(t, lg, lc, tolF32, "Attention lse %+v naive=%v", s, naive)

			dout := gpuRand(rng, 1, q.Shape()...)
			dqc, dqg := pair(gpuRand(rng, 1, q.Shape()...)) // backward accumulates
			dkc, dkg := pair(gpuRand(rng, 1, k.Shape()...))
			dvc, dvg := pair(gpuRand(rng, 1, v.Shape()...))
			cpuRef.AttentionBackward(dqc, dkc, dvc, dout, q, k, v, oc, lc, s)
			g.AttentionBackward(dqg, dkg, dvg, dout, q, k, v, oc, lc, s)
			assertClose(t, dqg, dqc, tolF32, "AttentionBackward dq %+v naive=%v", s, naive)
			assertClose(t, dkg, dkc, tolF32, "AttentionBackward dk %+v naive=%v", s, naive)
			assertClose(t, dvg, dvc, tolF32, "AttentionBackward dv %+v naive=%v", s, naive)
			release(q, k, v, oc, og, lc, lg, dout, dqc, dqg, dkc, dkg, dvc, dvg)
		}
	}
	setNaive(g, false)
}

func TestCUDAAttentionCached(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(15, 16))
	for _, naive := range []bool{false, true} {
		setNaive(g, naive)
		for _, s := range []CacheShape{{B: 1, T: 1, Start: 0, Cap: 1, H: 2, KV: 1, D: 16}, {B: 2, T: 3, Start: 5, Cap: 12, H: 4, KV: 2, D: 64},
			{B: 1, T: 1, Start: 70, Cap: 80, H: 9, KV: 3, D: 64}, {B: 1, T: 2, Start: 3, Cap: 9, H: 2, KV: 2, D: 160}} {
			kc, kg := pair(gpuRand(rng, 1, s.B*s.Cap, s.KV*s.D))
			vc, vg := pair(gpuRand(rng, 1, s.B*s.Cap, s.KV*s.D))
			xk, xv := gpuRand(rng, 1, s.B*s.T, s.KV*s.D), gpuRand(rng, 1, s.B*s.T, s.KV*s.D)
			cpuRef.CacheWrite(kc, xk, s)
			g.CacheWrite(kg, xk, s)
			assertSame(t, kg, kc, "CacheWrite %+v", s)
			cpuRef.CacheWrite(vc, xv, s)
			g.CacheWrite(vg, xv, s)
			q := gpuRand(rng, 1, s.B*s.T, s.H*s.D)
			oc, og := New(Scratch, q.Shape()...), New(Scratch, q.Shape()...)
			cpuRef.AttentionCached(oc, q, kc, vc, s)
			g.AttentionCached(og, q, kc, vc, s)
			assertClose(t, og, oc, tolF32, "AttentionCached %+v naive=%v", s, naive)
			release(kc, kg, vc, vg, xk, xv, q, oc, og)
		}
	}
	setNaive(g, false)
}

func TestCUDACrossEntropy(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(17, 18))
	for _, rows := range sizes {
		for _, vocab := range []int{1, 17, 130, 49152} {
			z := gpuRand(rng, 3, rows, vocab)
			targets := make([]int32, rows)
			for i := range targets {
				targets[i] = int32(rng.IntN(vocab))
				if i%3 == 1 {
					targets[i] = -1 // ignored
				}
			}
			lc, lg := New(Scratch, rows), New(Scratch, rows)
			sc, nc := cpuRef.CrossEntropy(lc, z, targets)
			sg, ng := g.CrossEntropy(lg, z, targets)
			assert.Equal(t, nc, ng)
			assert.InDelta(t, sc, sg, tolF32*max(math.Abs(sc), 1), "CrossEntropy sum %dx%d", rows, vocab)
			assertClose(t, lg, lc, tolF32, "CrossEntropy lse %dx%d", rows, vocab)
			dc, dg := pair(gpuRand(rng, 1e-3, rows, vocab))
			cpuRef.CrossEntropyBackward(dc, z, lc, targets, 0.37)
			g.CrossEntropyBackward(dg, z, lc, targets, 0.37)
			assertClose(t, dg, dc, tolF32, "CrossEntropyBackward %dx%d", rows, vocab)
			release(z, lc, lg, dc, dg)
		}
	}
}

// AdamW is the CPU's update bit for bit, step after step.
func TestCUDAAdamW(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(19, 20))
	for _, n := range []int{1, 3, 17, 130, 100003} {
		pc, pg := pair(gpuRand(rng, 1, n))
		mc, mg := New(Scratch, n), New(Scratch, n)
		vc, vg := New(Scratch, n), New(Scratch, n)
		for step := 1; step <= 3; step++ {
			gr := gpuRand(rng, 0.1, n)
			bc1, bc2 := 1-math.Pow(0.9, float64(step)), 1-math.Pow(0.999, float64(step))
			cpuRef.AdamW(pc, gr, mc, vc, 1e-3, 0.9, 0.999, 1e-8, 0.01, bc1, bc2)
			g.AdamW(pg, gr, mg, vg, 1e-3, 0.9, 0.999, 1e-8, 0.01, bc1, bc2)
			gr.Release()
		}
		assertSame(t, pg, pc, "AdamW p n=%d", n)
		assertSame(t, mg, mc, "AdamW m n=%d", n)
		assertSame(t, vg, vc, "AdamW v n=%d", n)
		release(pc, pg, mc, mg, vc, vg)
	}
}

func TestCUDASumSquares(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(21, 22))
	var xs []*Tensor
	for _, n := range []int{1, 3, 17, 130, 1 << 20, 5<<16 + 3} {
		xs = append(xs, gpuRand(rng, 1, n))
	}
	want, got := cpuRef.SumSquares(xs), g.SumSquares(xs)
	assert.InDelta(t, want, got, 1e-12*want)
	assert.Equal(t, 0.0, g.SumSquares(nil))
	release(xs...)
}

func TestCUDADropout(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(23, 24))
	for _, n := range []int{1, 17, 4096, 4097, 3*4096 + 130} {
		for _, p := range []float64{0, 0.1, 0.5, 1} {
			x := gpuRand(rng, 1, n)
			for _, acc := range []bool{false, true} {
				dc, dg := pair(gpuRand(rng, 1, n))
				cpuRef.Dropout(dc, x, p, 42+uint64(n), acc)
				g.Dropout(dg, x, p, 42+uint64(n), acc)
				assertSame(t, dg, dc, "Dropout n=%d p=%v acc=%v", n, p, acc)
				release(dc, dg)
			}
			x.Release()
		}
	}
}

func TestCUDADequantizeNF4(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(25, 26))
	var code [16]float32
	for i := range code {
		code[i] = float32(i-7) / 8
	}
	for _, n := range []int{1, 3, 64, 65, 130, 4096 + 17} {
		blocks := (n + NF4Block - 1) / NF4Block
		scales := make([]float32, blocks)
		for i := range scales {
			scales[i] = float32(rng.Float64())
		}
		codes := make([]byte, (n+1)/2)
		for i := range codes {
			codes[i] = byte(rng.IntN(256))
		}
		packed := New(Frozen, NF4PackedLen(n))
		NF4Packed(packed, &code, scales, codes)
		dc, dg := New(Scratch, n), New(Scratch, n)
		cpuRef.DequantizeNF4(dc, packed)
		g.DequantizeNF4(dg, packed)
		assertSame(t, dg, dc, "DequantizeNF4 n=%d", n)
		release(packed, dc, dg)
	}
}

func TestCUDADoRANorms(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(27, 28))
	for _, out := range sizes {
		for _, r := range []int{1, 3, 16} {
			w2 := New(Scratch, out)
			for i := range w2.Data() {
				w2.Data()[i] = 5 + float32(rng.Float64())
			}
			wa, gm, bm := gpuRand(rng, 1, out, r), gpuRand(rng, 1, r, r), gpuRand(rng, 0.1, out, r)
			ic, ig := New(Scratch, out), New(Scratch, out)
			cpuRef.DoRANorms(ic, w2, wa, gm, bm, 0.5)
			g.DoRANorms(ig, w2, wa, gm, bm, 0.5)
			assertClose(t, ig, ic, tolF32, "DoRANorms out=%d r=%d", out, r)
			release(w2, wa, gm, bm, ic, ig)
		}
	}
}

// Tensors outside GPU memory (FromSlice of Go memory) run on the CPU.
func TestCUDAFallsBackForHostMemory(t *testing.T) {
	g := needGPU(t)
	a := FromSlice(Scratch, []float32{1, 2, 3}, 3)
	b := New(Scratch, 3)
	copy(b.Data(), []float32{10, 20, 30})
	d := New(Scratch, 3)
	g.Add(d, a, b)
	assert.Equal(t, []float32{11, 22, 33}, d.Data())
	release(a, b, d)
}

// A reused buffer comes back zeroed, and Data sees what kernels wrote.
func TestCUDAStorageZeroedAndSynced(t *testing.T) {
	needGPU(t)
	require.True(t, OnDevice())
	for range 3 {
		x := New(Scratch, 1000)
		for i, v := range x.Data() {
			require.Zero(t, v, "element %d", i)
		}
		ones := New(Scratch, 1000)
		for i := range ones.Data() {
			ones.Data()[i] = 1
		}
		CurrentBackend().AddScaled(x, 2, ones)
		assert.Equal(t, float32(2), x.Data()[999])
		c := x.Clone(Scratch)
		assert.Equal(t, float32(2), c.Data()[0])
		release(x, ones, c)
	}
}

// A bf16 weight multiplies on bfloat16 tensor cores (within bfloat16's
// precision of the CPU's float32 product); an f16 one is widened and
// multiplies in float32 (as on the CPU).
func TestCUDAGemmHalfWeight(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(29, 30))
	for _, dt := range []DType{BFloat16, Float16} {
		tol := tolF32
		if dt == BFloat16 {
			tol = tolBF16
		}
		for _, tb := range []bool{true, false} {
			for _, mnk := range [][3]int{{1, 3, 17}, {130, 64, 130}, {17, 130, 64}} {
				m, n, k := mnk[0], mnk[1], mnk[2]
				a := gpuRand(rng, 1, m, k)
				wsh := []int{k, n}
				if tb {
					wsh = []int{n, k}
				}
				w32 := gpuRand(rng, 1, wsh...)
				w := w32.Convert(Frozen, dt)
				cc, cg := pair(gpuRand(rng, 1, m, n))
				cpuRef.Gemm(false, tb, 0.5, a, w, 1, cc)
				g.Gemm(false, tb, 0.5, a, w, 1, cg)
				assertClose(t, cg, cc, tol, "Gemm with %s weight tb=%v %v", dt, tb, mnk)
				release(a, w32, w, cc, cg)
			}
		}
	}
}

// Embeddings in 16 bits gather widened, bit for bit; Convert widens on the
// device as on the host.
func TestCUDAHalfGatherAndConvert(t *testing.T) {
	g := needGPU(t)
	rng := rand.New(rand.NewPCG(31, 32))
	for _, dt := range []DType{BFloat16, Float16} {
		for _, c := range []int{1, 17, 130} {
			t32 := gpuRand(rng, 1, 40, c)
			table := t32.Convert(Frozen, dt)
			ids := []int32{3, 0, 39, 3, 7}
			dc, dg := New(Scratch, len(ids), c), New(Scratch, len(ids), c)
			cpuRef.GatherRows(dc, table, ids)
			g.GatherRows(dg, table, ids)
			assertSame(t, dg, dc, "GatherRows %s c=%d", dt, c)

			wide := table.Convert(Scratch, Float32) // on the device
			want := New(Scratch, 40, c)
			halfToF32(want.Data(), table.Halves(), dt)
			assertSame(t, wide, want, "Convert %s → f32, c=%d", dt, c)
			same := table.Clone(Scratch)
			assert.Equal(t, table.Halves(), same.Halves(), "Clone of %s", dt)
			release(t32, table, dc, dg, wide, want, same)
		}
	}
}
