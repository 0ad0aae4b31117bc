package tensor

import (
	"fmt"
	"math"
	"unsafe"
)

// The CPU versions of extraKernels (backend_extra.go). They are also the
// references the GPU kernels are tested against.

// sumSqChunk is the unit of SumSquares' and Scale's loops. It is fixed, so
// the partial sums, and hence the result, do not depend on the number of
// cores.
const sumSqChunk = 1 << 16

func numSumSqChunks(n int) int { return (n + sumSqChunk - 1) / sumSqChunk }

// sumSqJob is SumSquares' loop (partial[c] = Σ x² over chunk c) or, with
// sum unset, Scale's (x *= scale), over the sumSqChunk-sized chunks of x.
type sumSqJob struct {
	x       []float32
	sum     bool
	partial []float64
	scale   float32
}

var sumSqJobs Jobs[sumSqJob]

func (j *sumSqJob) Range(clo, chi int) {
	for c := clo; c < chi; c++ {
		x := j.x[c*sumSqChunk : min(len(j.x), (c+1)*sumSqChunk)]
		if !j.sum {
			for i := range x {
				x[i] *= j.scale
			}
			continue
		}
		var s float64
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		j.partial[c] = s
	}
}

// sumSqPartials holds the per-chunk partial sums between calls, so that
// SumSquares allocates nothing once warm.
var sumSqPartials Jobs[[]float64]

func (cpuBackend) SumSquares(xs []*Tensor) float64 {
	var total float64
	for _, t := range xs {
		total += sumSquares(t.Data())
	}
	return total
}

// sumSquares returns Σ x² in float64, summing per-chunk partials in order.
func sumSquares(x []float32) float64 {
	chunks := numSumSqChunks(len(x))
	if chunks <= 1 {
		var s float64
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		return s
	}
	p := sumSqPartials.get()
	if cap(*p) < chunks {
		*p = make([]float64, chunks)
	}
	partial := (*p)[:chunks]
	RunJob(&sumSqJobs, chunks, 1, sumSqJob{x: x, sum: true, partial: partial})
	var s float64
	for _, v := range partial {
		s += v
	}
	sumSqPartials.put(p)
	return s
}

func (cpuBackend) Scale(x *Tensor, alpha float32) {
	d := x.Data()
	RunJob(&sumSqJobs, numSumSqChunks(len(d)), 1, sumSqJob{x: d, scale: alpha})
}

func (cpuBackend) MulElems(dst, a, b *Tensor, accumulate bool) {
	ds, as, bs := dst.Data(), a.Data(), b.Data()
	if len(as) != len(ds) || len(bs) != len(ds) {
		panic(fmt.Sprintf("tensor: MulElems shapes %v, %v, %v", dst.shape, a.shape, b.shape))
	}
	if accumulate {
		for i := range ds {
			ds[i] += as[i] * bs[i]
		}
		return
	}
	for i := range ds {
		ds[i] = as[i] * bs[i]
	}
}

func (cpuBackend) MulCols(dst, y, v *Tensor, accumulate bool) {
	RunJob(&mulColsJobs, y.Rows(), 64, mulColsJob{c: y.Cols(), os: dst.Data(), ys: y.Data(), vs: v.Data(), accumulate: accumulate})
}

func (cpuBackend) SumRowsMul(dst, a, b *Tensor) {
	c, as, bs := a.Cols(), a.Data(), b.Data()
	accT := New(Scratch, 2*c) // c float64s
	acc := unsafeFloat64s(accT.Data())
	for r := 0; r < a.Rows(); r++ {
		ar, br := as[r*c:(r+1)*c], bs[r*c:(r+1)*c]
		for j := range acc {
			acc[j] += float64(ar[j]) * float64(br[j])
		}
	}
	g := dst.Data()
	for j := range g {
		g[j] += float32(acc[j])
	}
	accT.Release()
}

func (cpuBackend) Dropout(dst, x *Tensor, p float64, seed uint64, accumulate bool) {
	keepScale := float32(0)
	if p < 1 {
		keepScale = float32(1 / (1 - p))
	}
	n := x.Len()
	chunks := (n + dropoutChunk - 1) / dropoutChunk
	RunJob(&dropoutJobs, chunks, 4, dropoutJob{n: n, p: p, seed: seed, keepScale: keepScale, ys: dst.Data(), xs: x.Data(), accumulate: accumulate})
}

type nf4Job struct {
	dst, code, scales []float32
	codes             []byte
}

var nf4Jobs Jobs[nf4Job]

func (cpuBackend) DequantizeNF4(dst, packed *Tensor) {
	n := dst.Len()
	if packed.Len() != NF4PackedLen(n) {
		panic(fmt.Sprintf("tensor: DequantizeNF4: %d packed values for %d weights, want %d", packed.Len(), n, NF4PackedLen(n)))
	}
	p := packed.Data()
	blocks := (n + NF4Block - 1) / NF4Block
	RunJob(&nf4Jobs, blocks, 256, nf4Job{dst: dst.Data(), code: p[:16], scales: p[16 : 16+blocks], codes: float32Bytes(p[16+blocks:])})
}

func (j *nf4Job) Range(lo, hi int) {
	n := len(j.dst)
	for b := lo; b < hi; b++ {
		s := j.scales[b]
		for i := b * NF4Block; i < min((b+1)*NF4Block, n); i++ {
			c := j.codes[i>>1]
			if i&1 == 0 {
				c >>= 4
			}
			j.dst[i] = j.code[c&15] * s
		}
	}
}

// float32Bytes views float32 storage as bytes.
func float32Bytes(f []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

func (cpuBackend) DoRANorms(inv, w2, wa, g, b *Tensor, s float64) {
	out, r := b.Rows(), b.Cols()
	is, w2s, was, gs, bs := inv.Data(), w2.Data(), wa.Data(), g.Data(), b.Data()
	for o := 0; o < out; o++ {
		bo, wao := bs[o*r:(o+1)*r], was[o*r:(o+1)*r]
		var cross, quad float64
		for i, bi := range bo {
			cross += float64(bi) * float64(wao[i])
			var gb float64
			for j, bj := range bo {
				gb += float64(gs[i*r+j]) * float64(bj)
			}
			quad += float64(bi) * gb
		}
		is[o] = float32(1 / math.Sqrt(max(float64(w2s[o])+2*s*cross+s*s*quad, 0)))
	}
}
