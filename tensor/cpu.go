package tensor

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// cpuBackend is the pure-Go Backend: its own GEMM (gemm.go), vector e^x
// for SwiGLU and cross-entropy (activation.go on exp.go), plain loops split
// across cores for everything else.
type cpuBackend struct{}

func (cpuBackend) Name() string { return "cpu" }

// parallelFor runs fn over [0, n) split into contiguous chunks, one per
// core. Work smaller than minWork items runs on the calling goroutine.
func parallelFor(n, minWork int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n/max(minWork, 1) {
		workers = n / max(minWork, 1)
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() { defer wg.Done(); fn(lo, hi) }()
	}
	wg.Wait()
}

func (cpuBackend) Gemm(transA, transB bool, alpha float32, a, b *Tensor, beta float32, c *Tensor) {
	m, n, k := gemmShape(transA, transB, a, b, c)
	if b.DType() != Float32 {
		sgemmHalfB(transA, transB, m, n, k, alpha, a.Data(), a.Cols(), b.Halves(), b.DType(), b.Cols(), beta, c.Data(), n)
		return
	}
	sgemm(transA, transB, m, n, k, alpha, a.Data(), a.Cols(), b.Data(), b.Cols(), beta, c.Data(), n)
}

// gemmShape returns the m, n, k of c = op(a)·op(b), panicking when the
// shapes do not fit (every backend's Gemm checks them alike).
func gemmShape(transA, transB bool, a, b, c *Tensor) (m, n, k int) {
	m, k = a.Rows(), a.Cols()
	if transA {
		m, k = k, m
	}
	kb, n := b.Rows(), b.Cols()
	if transB {
		kb, n = n, kb
	}
	if k != kb || c.Rows() != m || c.Cols() != n {
		panic(fmt.Sprintf("tensor: Gemm shapes %v%s · %v%s → %v", a.shape, tstr(transA), b.shape, tstr(transB), c.shape))
	}
	return m, n, k
}

func tstr(t bool) string {
	if t {
		return "ᵀ"
	}
	return ""
}

func scale(x []float32, beta float32) {
	if beta == 0 {
		clear(x)
		return
	}
	for i := range x {
		x[i] *= beta
	}
}

func (cpuBackend) Add(dst, a, b *Tensor) {
	d, x, y := dst.Data(), a.Data(), b.Data()
	for i := range d {
		d[i] = x[i] + y[i]
	}
}

func (cpuBackend) AddScaled(dst *Tensor, alpha float32, src *Tensor) {
	d, s := dst.Data(), src.Data()
	if len(d) != len(s) {
		panic(fmt.Sprintf("tensor: AddScaled %v += %v", dst.shape, src.shape))
	}
	for i := range d {
		d[i] += alpha * s[i]
	}
}

func (cpuBackend) AddRowVector(dst, v *Tensor) {
	d, b, c := dst.Data(), v.Data(), dst.Cols()
	for r := 0; r < len(d); r += c {
		row := d[r : r+c]
		for j := range row {
			row[j] += b[j]
		}
	}
}

func (cpuBackend) SumRows(dst, src *Tensor) {
	d, s, c := dst.Data(), src.Data(), src.Cols()
	for r := 0; r < len(s); r += c {
		row := s[r : r+c]
		for j := range row {
			d[j] += row[j]
		}
	}
}

func (cpuBackend) GatherRows(dst, table *Tensor, ids []int32) {
	c, d := table.Cols(), dst.Data()
	if dt := table.DType(); dt != Float32 {
		h := table.Halves()
		for i, id := range ids {
			halfToF32(d[i*c:(i+1)*c], h[int(id)*c:(int(id)+1)*c], dt)
		}
		return
	}
	t := table.Data()
	for i, id := range ids {
		copy(d[i*c:(i+1)*c], t[int(id)*c:(int(id)+1)*c])
	}
}

func (cpuBackend) ScatterAddRows(dst, src *Tensor, ids []int32) {
	c, d, s := dst.Cols(), dst.Data(), src.Data()
	for i, id := range ids {
		row, g := d[int(id)*c:(int(id)+1)*c], s[i*c:(i+1)*c]
		for j := range row {
			row[j] += g[j]
		}
	}
}

func (cpuBackend) GatherCols(dst, src *Tensor, idx []int) {
	r, sc, d, s := len(idx), src.Cols(), dst.Data(), src.Data()
	for i := 0; i < src.Rows(); i++ {
		row := s[i*sc : (i+1)*sc]
		out := d[i*r : (i+1)*r]
		for j, c := range idx {
			out[j] = row[c]
		}
	}
}

func (cpuBackend) ScatterAddCols(dst *Tensor, alpha float32, src *Tensor, idx []int) {
	r, dc, d, s := len(idx), dst.Cols(), dst.Data(), src.Data()
	for i := 0; i < dst.Rows(); i++ {
		row := d[i*dc : (i+1)*dc]
		in := s[i*r : (i+1)*r]
		for j, c := range idx {
			row[c] += alpha * in[j]
		}
	}
}

// The kernels below split their rows across cores with Parallel. Each one's
// loop is the Range method of a struct holding its arguments, recycled
// through a free list (RunJob), so that a kernel call allocates
// nothing.

type rmsNormJob struct {
	c              int
	xs, ys, rs, ws []float32
	eps            float32
}

var rmsNormJobs Jobs[rmsNormJob]

func (cpuBackend) RMSNorm(out, rstd, x, w *Tensor, eps float32) {
	RunJob(&rmsNormJobs, x.Rows(), 16, rmsNormJob{c: x.Cols(), xs: x.Data(), ys: out.Data(), rs: rstd.Data(), ws: w.Data(), eps: eps})
}

func (j *rmsNormJob) Range(lo, hi int) {
	c, xs, ys, rs, ws, eps := j.c, j.xs, j.ys, j.rs, j.ws, j.eps
	for r := lo; r < hi; r++ {
		row, y := xs[r*c:(r+1)*c], ys[r*c:(r+1)*c]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss/float64(c)+float64(eps)))
		rs[r] = inv
		for j, v := range row {
			y[j] = v * inv * ws[j]
		}
	}
}

type rmsNormBackwardJob struct {
	c                    int
	xs, dys, rs, ws, dxs []float32
}

var rmsNormBackwardJobs Jobs[rmsNormBackwardJob]

// RMSNormBackward: with x̂ = x·rstd and g = dy ⊙ w,
//
//	dx = rstd · (g − x̂ · mean(g ⊙ x̂)),   dw = Σ_rows dy ⊙ x̂.
func (cpuBackend) RMSNormBackward(dx, dw, dout, x, w, rstd *Tensor) {
	c, xs, dys, rs, ws := x.Cols(), x.Data(), dout.Data(), rstd.Data(), w.Data()
	if dx != nil {
		RunJob(&rmsNormBackwardJobs, x.Rows(), 16, rmsNormBackwardJob{c: c, xs: xs, dys: dys, rs: rs, ws: ws, dxs: dx.Data()})
	}
	if dw != nil {
		dws := dw.Data()
		for r := 0; r < x.Rows(); r++ {
			row, dy, inv := xs[r*c:(r+1)*c], dys[r*c:(r+1)*c], rs[r]
			for j, v := range row {
				dws[j] += dy[j] * v * inv
			}
		}
	}
}

func (j *rmsNormBackwardJob) Range(lo, hi int) {
	c, xs, dys, rs, ws, dxs := j.c, j.xs, j.dys, j.rs, j.ws, j.dxs
	for r := lo; r < hi; r++ {
		row, dy, d := xs[r*c:(r+1)*c], dys[r*c:(r+1)*c], dxs[r*c:(r+1)*c]
		inv := rs[r]
		var dot float64
		for j, v := range row {
			dot += float64(dy[j]*ws[j]) * float64(v*inv)
		}
		m := float32(dot / float64(c))
		for j, v := range row {
			d[j] += inv * (dy[j]*ws[j] - v*inv*m)
		}
	}
}

type ropeJob struct {
	half, cols, seqLen, headDim int
	xs, ds, cs, ss              []float32
	sign                        float32
}

var ropeJobs Jobs[ropeJob]

func (cpuBackend) RoPE(dst, x, cos, sin *Tensor, seqLen, headDim int, inverse bool) {
	sign := float32(1)
	if inverse {
		sign = -1
	}
	RunJob(&ropeJobs, x.Rows(), 16, ropeJob{half: headDim / 2, cols: x.Cols(), seqLen: seqLen, headDim: headDim,
		xs: x.Data(), ds: dst.Data(), cs: cos.Data(), ss: sin.Data(), sign: sign})
}

func (j *ropeJob) Range(lo, hi int) {
	half, cols, seqLen, headDim := j.half, j.cols, j.seqLen, j.headDim
	xs, ds, cs, ss, sign := j.xs, j.ds, j.cs, j.ss, j.sign
	for r := lo; r < hi; r++ {
		pos := r % seqLen
		ct, st := cs[pos*half:(pos+1)*half], ss[pos*half:(pos+1)*half]
		for h := 0; h < cols; h += headDim {
			in, out := xs[r*cols+h:r*cols+h+headDim], ds[r*cols+h:r*cols+h+headDim]
			for i := 0; i < half; i++ {
				x1, x2, c, s := in[i], in[i+half], ct[i], sign*st[i]
				out[i] = x1*c - x2*s
				out[i+half] = x2*c + x1*s
			}
		}
	}
}
