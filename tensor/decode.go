package tensor

import (
	"math"
)

// Inference with a key/value cache: the kernels that let a decoder run T new
// positions against the keys and values of every earlier one. None of this
// is differentiable; the functions below check shapes and call the current
// backend, and the CPU versions of the kernels live here too.

// CacheShape describes attention of new positions against a KV cache:
// B sequences, each with T new positions at Start…Start+T−1, H query heads
// and KV key/value heads of size D. The cache holds Cap rows per sequence,
// (B·Cap, KV·D) row-major, of which the first Start+T are valid once the new
// keys have been written.
type CacheShape struct{ B, T, Start, Cap, H, KV, D int }

func (s CacheShape) check(op string) {
	mustMatch(op, s.B > 0 && s.T > 0 && s.Start >= 0 && s.D > 0, "bad shape %+v", s)
	mustMatch(op, s.Start+s.T <= s.Cap, "positions %d…%d do not fit a cache of %d", s.Start, s.Start+s.T-1, s.Cap)
	mustMatch(op, s.KV > 0 && s.H%s.KV == 0, "%d heads do not group into %d KV heads", s.H, s.KV)
}

// RoPEAt rotates x (B·T, heads·D) in place like RoPE, but row r is at
// position start + r mod seqLen: the new positions of a cached decoder.
// cos and sin must cover positions up to start+seqLen−1.
func RoPEAt(x, cos, sin *Tensor, start, seqLen, headDim int) {
	mustMatch("RoPEAt", headDim > 0 && headDim%2 == 0 && x.Cols()%headDim == 0, "x has %d columns, head dim %d", x.Cols(), headDim)
	mustMatch("RoPEAt", seqLen > 0 && x.Rows()%seqLen == 0, "x has %d rows, sequence length %d", x.Rows(), seqLen)
	mustMatch("RoPEAt", start >= 0 && cos.Len() >= (start+seqLen)*headDim/2 && sin.Len() == cos.Len(), "tables too short for positions up to %d", start+seqLen)
	backend.RoPEAt(x, x, cos, sin, start, seqLen, headDim)
}

// CacheWrite copies the new keys (or values) x (B·T, KV·D) into rows
// Start…Start+T−1 of each sequence's block of cache (B·Cap, KV·D).
func CacheWrite(cache, x *Tensor, s CacheShape) {
	s.check("CacheWrite")
	mustMatch("CacheWrite", x.Rows() == s.B*s.T && x.Cols() == s.KV*s.D, "x is %v, want (%d, %d)", x.shape, s.B*s.T, s.KV*s.D)
	mustMatch("CacheWrite", cache.Rows() == s.B*s.Cap && cache.Cols() == s.KV*s.D, "cache is %v, want (%d, %d)", cache.shape, s.B*s.Cap, s.KV*s.D)
	backend.CacheWrite(cache, x, s)
}

// AttentionCached is causal grouped-query attention of the T new queries
// q (B·T, H·D) against the first Start+T rows of each sequence's keys and
// values in k, v (B·Cap, KV·D): query t sees cache rows 0…Start+t. The
// result goes to out (B·T, H·D). With Start = 0 and Cap = T it is the
// forward of Attention.
func AttentionCached(out, q, k, v *Tensor, s CacheShape) {
	s.check("AttentionCached")
	mustMatch("AttentionCached", q.Rows() == s.B*s.T && q.Cols() == s.H*s.D && SameShape(q, out), "q %v, out %v, want (%d, %d)", q.shape, out.shape, s.B*s.T, s.H*s.D)
	mustMatch("AttentionCached", k.Rows() == s.B*s.Cap && k.Cols() == s.KV*s.D && SameShape(k, v), "k %v, v %v, want (%d, %d)", k.shape, v.shape, s.B*s.Cap, s.KV*s.D)
	backend.AttentionCached(out, q, k, v, s)
}

func (cpuBackend) RoPEAt(dst, x, cos, sin *Tensor, startPos, seqLen, headDim int) {
	half, cols := headDim/2, x.Cols()
	xs, ds, cs, ss := x.Data(), dst.Data(), cos.Data(), sin.Data()
	parallelFor(x.Rows(), 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			pos := startPos + r%seqLen
			ct, st := cs[pos*half:(pos+1)*half], ss[pos*half:(pos+1)*half]
			for h := 0; h < cols; h += headDim {
				in, out := xs[r*cols+h:r*cols+h+headDim], ds[r*cols+h:r*cols+h+headDim]
				for i := 0; i < half; i++ {
					x1, x2, c, s := in[i], in[i+half], ct[i], st[i]
					out[i] = x1*c - x2*s
					out[i+half] = x2*c + x1*s
				}
			}
		}
	})
}

func (cpuBackend) CacheWrite(cache, x *Tensor, s CacheShape) {
	cols, cs, xs := x.Cols(), cache.Data(), x.Data()
	for b := 0; b < s.B; b++ {
		dst := cs[(b*s.Cap+s.Start)*cols:][:s.T*cols]
		copy(dst, xs[b*s.T*cols:][:s.T*cols])
	}
}

// AttentionCached on the CPU, one (batch, head, new query) at a time: the
// scores of query t against cache rows 0…Start+t are one row-vector
// product on the GEMM (s = q Kᵀ/√D), the softmax is rowMax and expSub as in
// Attention, and the output one more product, o = (p/Σp) V.
func (cpuBackend) AttentionCached(out, q, k, v *Tensor, s CacheShape) {
	qs, ks, vs, os := q.Data(), k.Data(), v.Data(), out.Data()
	qc, kc, group := s.H*s.D, s.KV*s.D, s.H/s.KV
	scale := float32(1 / math.Sqrt(float64(s.D)))
	n := s.Start + s.T
	parallelFor(s.B*s.H, 1, func(lo, hi int) {
		p := make([]float32, n)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/s.H, bh%s.H
			g := h / group
			kb, vb := ks[(b*s.Cap*kc)+g*s.D:], vs[(b*s.Cap*kc)+g*s.D:]
			for t := 0; t < s.T; t++ {
				row := p[:s.Start+t+1]              // keys 0…Start+t
				qt := qs[(b*s.T+t)*qc+h*s.D:][:s.D] // (1, D)
				ot := os[(b*s.T+t)*qc+h*s.D:][:s.D] // (1, D)
				attnGemm(false, true, 1, len(row), s.D, scale, qt, qc, kb, kc, 0, row, len(row))
				sum := expSub(row, row, rowMax(row))
				attnGemm(false, false, 1, s.D, len(row), float32(1/sum), row, len(row), vb, kc, 0, ot, qc)
			}
		}
	})
}
