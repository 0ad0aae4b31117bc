//go:build cuda

package tensor

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/gopaca/paca/tensor/internal/cudrv"
)

// cudaFunc is a compiled kernel.
type cudaFunc unsafe.Pointer

// cudaBackend runs the Backend's kernels on a GPU. Work is queued on one
// stream and runs in order; the host waits only where it reads a value
// (Tensor.Data, a loss sum, a gradient norm). A call whose tensors are not
// all in GPU memory (created before UseCUDA, or FromSlice of Go memory)
// runs on the CPU backend instead, after waiting for the queue.
//
// The integer arguments of a call (token ids, targets, PaCA's column
// indices) live in Go memory; they are copied to the device and kept
// there, keyed by the slice's address and compared value by value at each
// call, so that a layer's fixed column indices cross once while a batch's
// new ids cross once per step.
type cudaBackend struct {
	mu   sync.Mutex
	dev  *cudrv.Device
	mem  *cudaMemory
	cpu  cpuBackend
	k    cudaKernels
	name string
	bf16 bool // GEMM operands rounded to bfloat16 (PACA_GEMM_BF16)

	// naiveAttention runs the naive attention kernels at every head size
	// (tests compare both kinds).
	naiveAttention bool

	args  [cudrv.MaxArgs]uint64 // the next launch's parameters
	nargs int

	ints    map[uintptr]*intBuf
	scratch unsafe.Pointer // device scratch for float64 partial sums
	scrCap  int            // its capacity in float64s
	result  [1]float64     // where a scalar lands on the host
}

// intBuf is the device copy of one slice of integers.
type intBuf struct {
	host   []int32
	dev    unsafe.Pointer
	devCap int
}

func (b *cudaBackend) Name() string { return b.name }

// on reports whether every non-nil tensor of ts is in GPU memory (empty
// tensors count as being there).
func (b *cudaBackend) on(ts ...*Tensor) bool {
	for _, t := range ts {
		if t == nil {
			continue
		}
		if w := t.st.words(); len(w) > 0 && !b.mem.owns(w) {
			return false
		}
	}
	return true
}

// dptr is t's device address (nil for a nil tensor), whatever its dtype.
func dptr(t *Tensor) unsafe.Pointer {
	if t == nil {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(t.st.words()))
}

// f16 is the kernels' flag for a 16-bit dtype: 1 for binary16, 0 for
// bfloat16.
func f16(dt DType) int { return flag(dt == Float16) }

// widen is Convert's float32 widening of 16-bit values on the device.
func (b *cudaBackend) widen(dst []float32, src []uint16, dt DType) {
	n := len(src)
	b.mu.Lock()
	b.ptr(unsafe.Pointer(unsafe.SliceData(dst))).ptr(unsafe.Pointer(unsafe.SliceData(src))).i64(n).i(f16(dt)).
		launch(b.k.halfToF32, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

// Kernel parameters, appended in order; each takes one 8-byte slot.

func (b *cudaBackend) p(t *Tensor) *cudaBackend          { return b.u(uint64(uintptr(dptr(t)))) }
func (b *cudaBackend) ptr(p unsafe.Pointer) *cudaBackend { return b.u(uint64(uintptr(p))) }
func (b *cudaBackend) i(v int) *cudaBackend              { return b.u(uint64(uint32(int32(v)))) }
func (b *cudaBackend) i64(v int) *cudaBackend            { return b.u(uint64(int64(v))) }
func (b *cudaBackend) f(v float32) *cudaBackend          { return b.u(uint64(math.Float32bits(v))) }
func (b *cudaBackend) d(v float64) *cudaBackend          { return b.u(math.Float64bits(v)) }

func (b *cudaBackend) u(v uint64) *cudaBackend {
	b.args[b.nargs] = v
	b.nargs++
	return b
}

// launch queues kernel f on a grid of (gx, gy, gz) blocks of bx threads.
func (b *cudaBackend) launch(f cudaFunc, gx, gy, gz, bx int) {
	n := b.nargs
	b.nargs = 0
	if gx == 0 || gy == 0 || gz == 0 {
		return
	}
	cudrv.Launch(unsafe.Pointer(f), gx, gy, gz, bx, 0, &b.args, n)
	deviceQueued.Add(1)
}

// threads per block of the 1-D kernels.
const blockThreads = 256

// grid is the number of blocks for n items, one per thread, capped for the
// grid-stride kernels.
func (b *cudaBackend) grid(n int) int {
	g := (n + blockThreads - 1) / blockThreads
	return min(g, 64*b.dev.SMs)
}

// blocks is ⌈n/per⌉.
func blocks(n, per int) int { return (n + per - 1) / per }

// uploadInt32 returns a device copy of ids.
func (b *cudaBackend) uploadInt32(ids []int32) unsafe.Pointer {
	if len(ids) == 0 {
		return nil
	}
	e := b.intEntry(uintptr(unsafe.Pointer(&ids[0])), len(ids))
	same := len(e.host) == len(ids)
	for i := 0; same && i < len(ids); i++ {
		same = e.host[i] == ids[i]
	}
	if !same {
		e.host = append(e.host[:0], ids...)
		b.sendInts(e)
	}
	return e.dev
}

// uploadInts returns a device copy of idx, as int32s.
func (b *cudaBackend) uploadInts(idx []int) unsafe.Pointer {
	if len(idx) == 0 {
		return nil
	}
	e := b.intEntry(uintptr(unsafe.Pointer(&idx[0])), len(idx))
	same := len(e.host) == len(idx)
	for i := 0; same && i < len(idx); i++ {
		same = e.host[i] == int32(idx[i])
	}
	if !same {
		e.host = e.host[:0]
		for _, v := range idx {
			e.host = append(e.host, int32(v))
		}
		b.sendInts(e)
	}
	return e.dev
}

// intEntry returns the cache entry of the slice at address key.
func (b *cudaBackend) intEntry(key uintptr, n int) *intBuf {
	e := b.ints[key]
	if e == nil {
		if len(b.ints) >= 4096 { // slices come and go: start over
			b.mem.sync()
			for _, old := range b.ints {
				cudrv.Free(old.dev)
			}
			clear(b.ints)
		}
		e = &intBuf{}
		b.ints[key] = e
	}
	return e
}

// sendInts queues the copy of e.host to the device.
func (b *cudaBackend) sendInts(e *intBuf) {
	n := len(e.host)
	if e.devCap < n {
		if e.dev != nil {
			b.mem.sync()
			cudrv.Free(e.dev)
		}
		c := max(n, 64)
		p, err := cudrv.Alloc(4*c, false)
		if err != nil {
			panic(fmt.Sprintf("tensor: CUDA: %v", err))
		}
		e.dev, e.devCap = p, c
	}
	cudrv.Upload(e.dev, unsafe.Pointer(&e.host[0]), 4*n)
	deviceQueued.Add(1)
}

// scratchF64 returns device scratch for n float64s.
func (b *cudaBackend) scratchF64(n int) unsafe.Pointer {
	if b.scrCap < n {
		if b.scratch != nil {
			b.mem.sync()
			cudrv.Free(b.scratch)
		}
		c := max(n, 4096)
		p, err := cudrv.Alloc(8*c, false)
		if err != nil {
			panic(fmt.Sprintf("tensor: CUDA: %v", err))
		}
		b.scratch, b.scrCap = p, c
	}
	return b.scratch
}

// readF64 waits for the queue and returns the float64 at device address p.
func (b *cudaBackend) readF64(p unsafe.Pointer) float64 {
	cudrv.Download(unsafe.Pointer(&b.result[0]), p, 8)
	return b.result[0]
}

// ---------------------------------------------------------------- GEMM

// Gemm: row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a
// row-major matrix is its transpose in column-major order: so cuBLAS gets
// B and A swapped, with the same transpose flags, and n, m swapped.
func (b *cudaBackend) Gemm(transA, transB bool, alpha float32, x, y *Tensor, beta float32, c *Tensor) {
	m, n, k := gemmShape(transA, transB, x, y, c)
	if !b.on(x, y, c) {
		b.cpu.Gemm(transA, transB, alpha, x, y, beta, c)
		return
	}
	if m == 0 || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if k == 0 { // C = beta·C
		if beta == 0 {
			cudrv.Memset32(dptr(c), 0, c.Len())
			deviceQueued.Add(1)
		} else {
			b.p(c).f(beta).i64(c.Len()).launch(b.k.scale, b.grid(c.Len()), 1, 1, blockThreads)
		}
		return
	}
	switch {
	case y.DType() == Float16: // widened: exactly the CPU's float32 product
		yw := New(Scratch, y.shape...)
		b.p(yw).p(y).i64(y.Len()).i(1).launch(b.k.halfToF32, b.grid(y.Len()), 1, 1, blockThreads)
		cudrv.Sgemm(transB, transA, n, m, k, alpha, dptr(yw), y.Cols(), dptr(x), x.Cols(), beta, dptr(c), n)
		deviceQueued.Add(1)
		yw.Release()
		return
	case y.DType() == BFloat16 || b.bf16:
		b.gemmBF16(transA, transB, m, n, k, alpha, x, y, beta, c)
		return
	}
	cudrv.Sgemm(transB, transA, n, m, k, alpha, dptr(y), y.Cols(), dptr(x), x.Cols(), beta, dptr(c), n)
	deviceQueued.Add(1)
}

// gemmBF16 is Gemm on bfloat16 tensor cores with float32 accumulation
// (cublasGemmEx): a bf16 weight y goes in as it is, a float32 operand is
// rounded to bfloat16 in scratch memory first. b.mu is held.
func (b *cudaBackend) gemmBF16(transA, transB bool, m, n, k int, alpha float32, x, y *Tensor, beta float32, c *Tensor) {
	xh, yh := b.castBF16(x), y
	if y.DType() == Float32 {
		yh = b.castBF16(y)
		defer yh.Release()
	}
	cudrv.GemmHalf(transB, transA, n, m, k, alpha, dptr(yh), y.Cols(), dptr(xh), x.Cols(), beta, dptr(c), n, cudrv.BF16)
	deviceQueued.Add(1)
	xh.Release()
}

// castBF16 returns t rounded to bfloat16, two values a float32 slot, in
// scratch memory. b.mu is held.
func (b *cudaBackend) castBF16(t *Tensor) *Tensor {
	h := New(Scratch, (t.Len()+1)/2)
	b.p(h).p(t).i64(t.Len()).launch(b.k.f32ToBF16, b.grid(t.Len()), 1, 1, blockThreads)
	return h
}

// ---------------------------------------------------------------- elementwise

func (b *cudaBackend) Add(dst, x, y *Tensor) {
	if !b.on(dst, x, y) {
		b.cpu.Add(dst, x, y)
		return
	}
	n := dst.Len()
	b.mu.Lock()
	b.p(dst).p(x).p(y).i64(n).launch(b.k.add, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) AddScaled(dst *Tensor, alpha float32, src *Tensor) {
	if dst.Len() != src.Len() {
		panic(fmt.Sprintf("tensor: AddScaled %v += %v", dst.shape, src.shape))
	}
	if !b.on(dst, src) {
		b.cpu.AddScaled(dst, alpha, src)
		return
	}
	n := dst.Len()
	b.mu.Lock()
	b.p(dst).f(alpha).p(src).i64(n).launch(b.k.addScaled, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) AddRowVector(dst, v *Tensor) {
	if !b.on(dst, v) {
		b.cpu.AddRowVector(dst, v)
		return
	}
	n := dst.Len()
	b.mu.Lock()
	b.p(dst).p(v).i64(n).i(dst.Cols()).launch(b.k.addRowVector, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) SumRows(dst, src *Tensor) {
	if !b.on(dst, src) {
		b.cpu.SumRows(dst, src)
		return
	}
	c := src.Cols()
	b.mu.Lock()
	b.p(dst).p(src).i(src.Rows()).i(c).launch(b.k.sumRows, blocks(c, blockThreads), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) Scale(x *Tensor, alpha float32) {
	if !b.on(x) {
		b.cpu.Scale(x, alpha)
		return
	}
	n := x.Len()
	b.mu.Lock()
	b.p(x).f(alpha).i64(n).launch(b.k.scale, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) MulElems(dst, x, y *Tensor, accumulate bool) {
	if x.Len() != dst.Len() || y.Len() != dst.Len() {
		panic(fmt.Sprintf("tensor: MulElems shapes %v, %v, %v", dst.shape, x.shape, y.shape))
	}
	if !b.on(dst, x, y) {
		b.cpu.MulElems(dst, x, y, accumulate)
		return
	}
	n := dst.Len()
	b.mu.Lock()
	b.p(dst).p(x).p(y).i64(n).i(flag(accumulate)).launch(b.k.mulElems, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) MulCols(dst, y, v *Tensor, accumulate bool) {
	if !b.on(dst, y, v) {
		b.cpu.MulCols(dst, y, v, accumulate)
		return
	}
	n := y.Len()
	b.mu.Lock()
	b.p(dst).p(y).p(v).i64(n).i(y.Cols()).i(flag(accumulate)).launch(b.k.mulCols, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) SumRowsMul(dst, x, y *Tensor) {
	if !b.on(dst, x, y) {
		b.cpu.SumRowsMul(dst, x, y)
		return
	}
	c := x.Cols()
	b.mu.Lock()
	b.p(dst).p(x).p(y).i(x.Rows()).i(c).launch(b.k.sumRowsMul, blocks(c, blockThreads), 1, 1, blockThreads)
	b.mu.Unlock()
}

func flag(v bool) int {
	if v {
		return 1
	}
	return 0
}

func (b *cudaBackend) SwiGLU(out, gate, up *Tensor) {
	if !b.on(out, gate, up) {
		b.cpu.SwiGLU(out, gate, up)
		return
	}
	n := out.Len()
	b.mu.Lock()
	b.p(out).p(gate).p(up).i64(n).launch(b.k.swigluFwd, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) SwiGLUBackward(dgate, dup, dout, gate, up *Tensor) {
	if !b.on(dgate, dup, dout, gate, up) {
		b.cpu.SwiGLUBackward(dgate, dup, dout, gate, up)
		return
	}
	n := dout.Len()
	b.mu.Lock()
	b.p(dgate).p(dup).p(dout).p(gate).p(up).i64(n).launch(b.k.swigluBwd, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

// ---------------------------------------------------------------- gathers

func (b *cudaBackend) GatherRows(dst, table *Tensor, ids []int32) {
	if !b.on(dst, table) {
		b.cpu.GatherRows(dst, table, ids)
		return
	}
	c := table.Cols()
	b.mu.Lock()
	d := b.uploadInt32(ids)
	if dt := table.DType(); dt != Float32 {
		b.p(dst).p(table).ptr(d).i(len(ids)).i(c).i(f16(dt)).launch(b.k.gatherRowsHalf, b.grid(len(ids)*c), 1, 1, blockThreads)
	} else {
		b.p(dst).p(table).ptr(d).i(len(ids)).i(c).launch(b.k.gatherRows, b.grid(len(ids)*c), 1, 1, blockThreads)
	}
	b.mu.Unlock()
}

func (b *cudaBackend) ScatterAddRows(dst, src *Tensor, ids []int32) {
	if !b.on(dst, src) {
		b.cpu.ScatterAddRows(dst, src, ids)
		return
	}
	c := dst.Cols()
	b.mu.Lock()
	d := b.uploadInt32(ids)
	b.p(dst).p(src).ptr(d).i(len(ids)).i(c).launch(b.k.scatterAddRows, blocks(c, blockThreads), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) GatherCols(dst, src *Tensor, idx []int) {
	if !b.on(dst, src) {
		b.cpu.GatherCols(dst, src, idx)
		return
	}
	rows, r := src.Rows(), len(idx)
	b.mu.Lock()
	d := b.uploadInts(idx)
	b.p(dst).p(src).ptr(d).i(rows).i(src.Cols()).i(r).launch(b.k.gatherCols, b.grid(rows*r), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) ScatterAddCols(dst *Tensor, alpha float32, src *Tensor, idx []int) {
	if !b.on(dst, src) {
		b.cpu.ScatterAddCols(dst, alpha, src, idx)
		return
	}
	rows := dst.Rows()
	b.mu.Lock()
	d := b.uploadInts(idx)
	b.p(dst).f(alpha).p(src).ptr(d).i(rows).i(dst.Cols()).i(len(idx)).launch(b.k.scatterAddCols, blocks(rows, blockThreads), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) CacheWrite(cache, x *Tensor, s CacheShape) {
	if !b.on(cache, x) {
		b.cpu.CacheWrite(cache, x, s)
		return
	}
	cols := x.Cols()
	b.mu.Lock()
	b.p(cache).p(x).i(s.B).i(s.T).i(s.Start).i(s.Cap).i(cols).launch(b.k.cacheWrite, b.grid(s.B*s.T*cols), 1, 1, blockThreads)
	b.mu.Unlock()
}

// ---------------------------------------------------------------- norms and RoPE

func (b *cudaBackend) RMSNorm(out, rstd, x, w *Tensor, eps float32) {
	if !b.on(out, rstd, x, w) {
		b.cpu.RMSNorm(out, rstd, x, w, eps)
		return
	}
	b.mu.Lock()
	b.p(out).p(rstd).p(x).p(w).i(x.Cols()).f(eps).launch(b.k.rmsnormFwd, x.Rows(), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) RMSNormBackward(dx, dw, dout, x, w, rstd *Tensor) {
	if !b.on(dx, dw, dout, x, w, rstd) {
		b.cpu.RMSNormBackward(dx, dw, dout, x, w, rstd)
		return
	}
	rows, c := x.Rows(), x.Cols()
	b.mu.Lock()
	if dx != nil {
		b.p(dx).p(dout).p(x).p(w).p(rstd).i(c).launch(b.k.rmsnormBwdDx, rows, 1, 1, blockThreads)
	}
	if dw != nil {
		b.p(dw).p(dout).p(x).p(rstd).i(rows).i(c).launch(b.k.rmsnormBwdDw, blocks(c, blockThreads), 1, 1, blockThreads)
	}
	b.mu.Unlock()
}

func (b *cudaBackend) RoPE(dst, x, cos, sin *Tensor, seqLen, headDim int, inverse bool) {
	if !b.on(dst, x, cos, sin) {
		b.cpu.RoPE(dst, x, cos, sin, seqLen, headDim, inverse)
		return
	}
	sign := float32(1)
	if inverse {
		sign = -1
	}
	b.rope(dst, x, cos, sin, 0, seqLen, headDim, sign)
}

func (b *cudaBackend) RoPEAt(dst, x, cos, sin *Tensor, startPos, seqLen, headDim int) {
	if !b.on(dst, x, cos, sin) {
		b.cpu.RoPEAt(dst, x, cos, sin, startPos, seqLen, headDim)
		return
	}
	b.rope(dst, x, cos, sin, startPos, seqLen, headDim, 1)
}

func (b *cudaBackend) rope(dst, x, cos, sin *Tensor, start, seqLen, headDim int, sign float32) {
	rows, cols := x.Rows(), x.Cols()
	b.mu.Lock()
	b.p(dst).p(x).p(cos).p(sin).i64(rows).i(cols).i(seqLen).i(start).i(headDim).f(sign).
		launch(b.k.rope, b.grid(rows*cols/2), 1, 1, blockThreads)
	b.mu.Unlock()
}

// ---------------------------------------------------------------- attention

// Tiled attention kernels: queries (keys) per block, and the largest head
// size (attention.cu's QW, KW, MAXD).
const (
	attnQW   = 8
	attnKW   = 8
	attnMaxD = 128
)

func (b *cudaBackend) tiled(d int) bool { return d <= attnMaxD && !b.naiveAttention }

func attnScale(d int) float32 { return float32(1 / math.Sqrt(float64(d))) }

func (b *cudaBackend) Attention(out, lse, q, k, v *Tensor, s AttnShape) {
	if !b.on(out, lse, q, k, v) {
		b.cpu.Attention(out, lse, q, k, v, s)
		return
	}
	b.attention(out, lse, q, k, v, s.B, s.T, s.H, s.KV, s.D, 0, s.T)
}

func (b *cudaBackend) AttentionCached(out, q, k, v *Tensor, s CacheShape) {
	if !b.on(out, q, k, v) {
		b.cpu.AttentionCached(out, q, k, v, s)
		return
	}
	b.attention(out, nil, q, k, v, s.B, s.T, s.H, s.KV, s.D, s.Start, s.Cap)
}

func (b *cudaBackend) attention(out, lse, q, k, v *Tensor, B, T, H, KV, D, start, cap int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tiled(D) {
		b.p(out).p(lse).p(q).p(k).p(v).i(T).i(H).i(KV).i(D).i(start).i(cap).f(attnScale(D)).
			launch(b.k.attnFwd, blocks(T, attnQW), H, B, 32*attnQW)
		return
	}
	b.p(out).p(lse).p(q).p(k).p(v).i(B).i(T).i(H).i(KV).i(D).i(start).i(cap).f(attnScale(D)).
		launch(b.k.attnFwdNaive, b.grid(B*H*T), 1, 1, blockThreads)
}

func (b *cudaBackend) AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse *Tensor, s AttnShape) {
	if !b.on(dq, dk, dv, dout, q, k, v, out, lse) {
		b.cpu.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, s)
		return
	}
	sc := attnScale(s.D)
	if !b.tiled(s.D) {
		b.mu.Lock()
		b.p(dq).p(q).p(k).p(v).p(dout).p(out).p(lse).i(s.B).i(s.T).i(s.H).i(s.KV).i(s.D).f(sc).
			launch(b.k.attnBwdDqNaive, b.grid(s.B*s.H*s.T), 1, 1, blockThreads)
		b.p(dk).p(dv).p(q).p(k).p(v).p(dout).p(out).p(lse).i(s.B).i(s.T).i(s.H).i(s.KV).i(s.D).f(sc).
			launch(b.k.attnBwdDkvNaive, b.grid(s.B*s.KV*s.T), 1, 1, blockThreads)
		b.mu.Unlock()
		return
	}
	delta := New(Scratch, s.B, s.H, s.T)
	b.mu.Lock()
	rows := s.B * s.T * s.H // one warp each
	b.p(delta).p(dout).p(out).i(s.B).i(s.T).i(s.H).i(s.D).
		launch(b.k.attnBwdDelta, min(blocks(rows, blockThreads/32), 64*b.dev.SMs), 1, 1, blockThreads)
	b.p(dq).p(q).p(k).p(v).p(dout).p(lse).p(delta).i(s.T).i(s.H).i(s.KV).i(s.D).f(sc).
		launch(b.k.attnBwdDq, blocks(s.T, attnQW), s.H, s.B, 32*attnQW)
	b.p(dk).p(dv).p(q).p(k).p(v).p(dout).p(lse).p(delta).i(s.T).i(s.H).i(s.KV).i(s.D).f(sc).
		launch(b.k.attnBwdDkv, blocks(s.T, attnKW), s.KV, s.B, 32*attnKW)
	b.mu.Unlock()
	delta.Release() // its memory is reused only by work queued after this
}

// ---------------------------------------------------------------- loss

// ceThreads per row block: vocabularies are tens of thousands wide.
const ceThreads = 512

func (b *cudaBackend) CrossEntropy(lse, logits *Tensor, targets []int32) (float64, int) {
	if !b.on(lse, logits) {
		return b.cpu.CrossEntropy(lse, logits, targets)
	}
	rows := len(targets)
	count := 0
	for _, t := range targets {
		if t >= 0 {
			count++
		}
	}
	if rows == 0 {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	tg := b.uploadInt32(targets)
	rowLoss := b.scratchF64(rows + 1)
	sum := unsafe.Add(rowLoss, 8*rows)
	b.p(lse).ptr(rowLoss).p(logits).ptr(tg).i(logits.Cols()).launch(b.k.ceFwd, rows, 1, 1, ceThreads)
	b.ptr(sum).ptr(rowLoss).i(rows).launch(b.k.sumF64, 1, 1, 1, 1024)
	return b.readF64(sum), count
}

func (b *cudaBackend) CrossEntropyBackward(dlogits, logits, lse *Tensor, targets []int32, scale float32) {
	if !b.on(dlogits, logits, lse) {
		b.cpu.CrossEntropyBackward(dlogits, logits, lse, targets, scale)
		return
	}
	b.mu.Lock()
	tg := b.uploadInt32(targets)
	b.p(dlogits).p(logits).p(lse).ptr(tg).i(logits.Cols()).f(scale).launch(b.k.ceBwd, len(targets), 1, 1, ceThreads)
	b.mu.Unlock()
}

// ---------------------------------------------------------------- optimizer and clipping

func (b *cudaBackend) AdamW(p, g, m, v *Tensor, lr, beta1, beta2, eps, weightDecay, bc1, bc2 float64) {
	if g.Len() != p.Len() || m.Len() != p.Len() || v.Len() != p.Len() {
		panic(fmt.Sprintf("tensor: AdamW shapes p %v, g %v, m %v, v %v", p.shape, g.shape, m.shape, v.shape))
	}
	if !(bc1 > 0) || !(bc2 > 0) {
		panic(fmt.Sprintf("tensor: AdamW bias corrections must be positive, got bc1=%v bc2=%v", bc1, bc2))
	}
	if !b.on(p, g, m, v) {
		b.cpu.AdamW(p, g, m, v, lr, beta1, beta2, eps, weightDecay, bc1, bc2)
		return
	}
	n := p.Len()
	b.mu.Lock()
	b.p(p).p(g).p(m).p(v).i64(n).
		f(float32(1-lr*weightDecay)).f(float32(lr/bc1)).f(float32(math.Sqrt(bc2))).
		f(float32(beta1)).f(float32(beta2)).f(float32(1-beta1)).f(float32(1-beta2)).f(float32(eps)).
		launch(b.k.adamw, b.grid(n), 1, 1, blockThreads)
	b.mu.Unlock()
}

// sumSqBlocks is how many partial sums SumSquares makes of n values.
func sumSqBlocks(n int) int { return max(1, min(blocks(n, 4*blockThreads), 256)) }

func (b *cudaBackend) SumSquares(xs []*Tensor) float64 {
	total := 0
	for _, t := range xs {
		if !b.on(t) {
			return b.cpu.SumSquares(xs)
		}
		if t.Len() > 0 {
			total += sumSqBlocks(t.Len())
		}
	}
	if total == 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	partial := b.scratchF64(total + 1)
	off := 0
	for _, t := range xs {
		if n := t.Len(); n > 0 {
			nb := sumSqBlocks(n)
			b.ptr(unsafe.Add(partial, 8*off)).p(t).i64(n).launch(b.k.sumsqPartial, nb, 1, 1, blockThreads)
			off += nb
		}
	}
	sum := unsafe.Add(partial, 8*total)
	b.ptr(sum).ptr(partial).i(total).launch(b.k.sumF64, 1, 1, 1, 1024)
	return b.readF64(sum)
}

// ---------------------------------------------------------------- adapters

func (b *cudaBackend) Dropout(dst, x *Tensor, p float64, seed uint64, accumulate bool) {
	if !b.on(dst, x) {
		b.cpu.Dropout(dst, x, p, seed, accumulate)
		return
	}
	keep := float32(0)
	if p < 1 {
		keep = float32(1 / (1 - p))
	}
	n := x.Len()
	b.mu.Lock()
	b.p(dst).p(x).i64(n).d(p).u(seed).f(keep).i(flag(accumulate)).
		launch(b.k.dropout, blocks(n, dropoutChunk), 1, 1, dropoutThreads)
	b.mu.Unlock()
}

// dropoutThreads per chunk (adapter.cu's DROP_THREADS).
const dropoutThreads = 64

func (b *cudaBackend) DequantizeNF4(dst, packed *Tensor) {
	n := dst.Len()
	if packed.Len() != NF4PackedLen(n) {
		panic(fmt.Sprintf("tensor: DequantizeNF4: %d packed values for %d weights, want %d", packed.Len(), n, NF4PackedLen(n)))
	}
	if !b.on(dst, packed) {
		b.cpu.DequantizeNF4(dst, packed)
		return
	}
	b.mu.Lock()
	b.p(dst).p(packed).i64(n).i(blocks(n, NF4Block)).launch(b.k.nf4Dequant, b.grid((n+1)/2), 1, 1, blockThreads)
	b.mu.Unlock()
}

func (b *cudaBackend) DoRANorms(inv, w2, wa, g, bm *Tensor, s float64) {
	if !b.on(inv, w2, wa, g, bm) {
		b.cpu.DoRANorms(inv, w2, wa, g, bm, s)
		return
	}
	out := bm.Rows()
	b.mu.Lock()
	b.p(inv).p(w2).p(wa).p(g).p(bm).i(out).i(bm.Cols()).d(s).launch(b.k.doraNorms, blocks(out, 128), 1, 1, 128)
	b.mu.Unlock()
}
