package tensor

import (
	"math"
	"runtime"
	"sync/atomic"
)

// Causal grouped-query attention on the CPU, flash-attention style: the
// T×T scores of a head are never formed. Queries and keys are cut into
// tiles of attnTile rows; each product of two tiles runs through the
// packed GEMM (gemm.go) on one goroutine, and the goroutines share out
// heads and query tiles. Tiles wholly above the diagonal are skipped, the
// diagonal ones masked.
//
// Shapes, per sequence b and query head h reading key/value head
// g = h / (H/KV) (all matrices row-major, rows strided by H·D or KV·D):
//
//	Q, O, dO, dQ   (T, D)   columns h·D… of q, out, dout, dq (B·T, H·D)
//	K, V, dK, dV   (T, D)   columns g·D… of k, v, dk, dv (B·T, KV·D)
//	lse            (T)      row (b, h) of lse (B, H, T)
//	S, P, dP, dS   (TQ, TK) one query tile × one key tile, TQ, TK ≤ attnTile,
//	                        in a per-goroutine scratch buffer

// attnTile is the rows of a query or key tile. A multiple of both sides of
// the GEMM's micro-tile (6×16), so that full tiles have no edge panels;
// measured against 48 and 64, it is a little faster (the tile products run
// longer between calls) and S still fits in L2.
const attnTile = 96

// attnGemm is one tile product on the calling goroutine:
// C (m×n, row stride ldc) = alpha·op(A)·op(B) + beta·C.
func attnGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmDefault.gemm(1, gemmArgs{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc})
}

// attnJob holds the arguments of a forward or backward call. Its work items
// are handed out through next, so that a goroutine slowed down by
// something else does fewer of them instead of holding up the rest.
type attnJob struct {
	s                  AttnShape
	qs, ks, vs, os, ls []float32
	dqs, dks, dvs, dos []float32 // backward
	part               []float32 // backward: dK, dV of the heads after each group's first
	next               int32     // the next work item, taken atomically
}

// take returns the next work item, or false when all n are taken.
func (j *attnJob) take(n int) (int, bool) {
	it := int(atomic.AddInt32(&j.next, 1) - 1)
	return it, it < n
}

// attnWorkers is how many goroutines share n work items: one per core, at
// most one per item. Each runs Range once, taking items until none are left.
func attnWorkers(n int) int { return min(n, runtime.GOMAXPROCS(0)) }

type attnForwardJob attnJob

var attnForwardJobs Jobs[attnForwardJob]

// Attention computes, for each sequence b, head h and query row t,
//
//	s_j = q_t·k_j / √D  (j ≤ t),   lse_t = log Σ_j e^{s_j},   out_t = Σ_j e^{s_j − lse_t} v_j
//
// a query tile at a time with the online softmax: over the key tiles, the
// running row maximum m, sum l = Σ e^{s−m} and unnormalised output O are
// rescaled by e^{m_old − m_new} whenever the maximum grows; at the end
// out = O / l and lse = m + log l. The work items are (query tile, b, h),
// the tiles with the most keys first.
func (cpuBackend) Attention(out, lse, q, k, v *Tensor, s AttnShape) {
	n := ceilDiv(s.T, attnTile) * s.B * s.H
	RunJob(&attnForwardJobs, attnWorkers(n), 1, attnForwardJob{s: s, qs: q.Data(), ks: k.Data(), vs: v.Data(), os: out.Data(), ls: lse.Data()})
}

func (j *attnForwardJob) Range(_, _ int) {
	s := j.s
	const n = attnTile
	nq, bh := ceilDiv(s.T, n), s.B*s.H
	buf := New(Scratch, n*n+4*n)
	defer buf.Release()
	sc, stats := buf.Data()[:n*n], buf.Data()[n*n:]
	for {
		it, ok := (*attnJob)(j).take(nq * bh)
		if !ok {
			return
		}
		i := nq - 1 - it/bh
		b, h := it%bh/s.H, it%s.H
		j.tile(b, h, i*n, min((i+1)*n, s.T), sc, stats)
	}
}

// tile computes query rows q0…q1−1 of head h of sequence b, with sc an
// attnTile² buffer and stats room for 4·attnTile floats.
func (j *attnForwardJob) tile(b, h, q0, q1 int, sc, stats []float32) {
	s := j.s
	const n = attnTile
	d, qc, kc := s.D, s.H*s.D, s.KV*s.D
	g := h / (s.H / s.KV)
	rs := float32(1 / math.Sqrt(float64(d))) // 1/√D
	mq := q1 - q0
	q := j.qs[(b*s.T+q0)*qc+h*d:] // Q rows q0…q1−1   (mq, D)
	o := j.os[(b*s.T+q0)*qc+h*d:] // O rows q0…q1−1   (mq, D)
	ks := j.ks[b*s.T*kc+g*d:]     // K   (T, D)
	vs := j.vs[b*s.T*kc+g*d:]     // V   (T, D)
	m := stats[:mq]               // running row maxima
	l := stats[n : n+mq]          // running Σ e^{s−m}
	corr := stats[2*n : 2*n+mq]   // e^{m_old − m_new}
	rowSum := stats[3*n : 3*n+mq] // Σ of a row of this tile's P
	for r := range m {
		m[r], l[r] = float32(math.Inf(-1)), 0
	}
	for k0 := 0; k0 <= q0; k0 += n {
		nk := min(n, q1-k0) // keys k0…k0+nk−1
		// S = Q Kᵀ / √D   (mq, nk)
		attnGemm(false, true, mq, nk, d, rs, q, qc, ks[k0*kc:], kc, 0, sc, n)
		// P = e^{S − m_new} on and below the diagonal, 0 above.
		for r := range mq {
			row := sc[r*n : r*n+nk]
			valid := min(nk, q0+r-k0+1) // keys up to q0+r: at least one
			mx := max(rowMax(row[:valid]), m[r])
			corr[r], m[r] = m[r]-mx, mx
			rowSum[r] = float32(expSub(row[:valid], row[:valid], mx))
			clear(row[valid:])
		}
		expSub(corr, corr, 0)
		for r := range l {
			l[r] = l[r]*corr[r] + rowSum[r]
		}
		beta := float32(0) // the first key tile sets O
		if k0 > 0 {
			beta = 1
			for r, c := range corr {
				if c != 1 {
					scale(o[r*qc:r*qc+d], c)
				}
			}
		}
		// O = diag(corr)·O + P V   (mq, D)
		attnGemm(false, false, mq, d, nk, 1, sc, n, vs[k0*kc:], kc, beta, o, qc)
	}
	lse := j.ls[(b*s.H+h)*s.T+q0:][:mq]
	for r := range lse {
		scale(o[r*qc:r*qc+d], 1/l[r])
		lse[r] = m[r] + float32(math.Log(float64(l[r])))
	}
}

type attnBackwardJob attnJob

var attnBackwardJobs Jobs[attnBackwardJob]

// AttentionBackward recomputes each tile of probabilities from lse,
// P = e^{S − lse}, and with δ_t = dO_t·O_t accumulates
//
//	dV += Pᵀ dO,   dP = dO Vᵀ,   dS = P ∘ (dP − δ),
//	dQ += dS K / √D,   dK += dSᵀ Q / √D.
//
// The work items are the heads (b, h). Each owns its rows of dq; the first
// head of each KV group accumulates into dk, dv directly and the others
// into partial buffers, added afterwards in head order, so that no two
// goroutines write the same rows and the result does not depend on which
// goroutine did what.
func (cpuBackend) AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse *Tensor, s AttnShape) {
	args := attnBackwardJob{s: s, qs: q.Data(), ks: k.Data(), vs: v.Data(), os: out.Data(), ls: lse.Data(),
		dqs: dq.Data(), dks: dk.Data(), dvs: dv.Data(), dos: dout.Data()}
	var part *Tensor
	if s.H > s.KV {
		part = New(Scratch, s.B*(s.H-s.KV), 2, s.T, s.D)
		args.part = part.Data()
	}
	RunJob(&attnBackwardJobs, attnWorkers(s.B*s.H), 1, args)
	if part != nil {
		RunJob(&attnReduceJobs, s.B*s.T, 64, attnReduceJob{s: s, part: part.Data(), dks: dk.Data(), dvs: dv.Data()})
		part.Release()
	}
}

// attnPart returns the offset in part of the partial dK (T, D), followed by
// dV (T, D), of head r > 0 of KV group g of sequence b.
func attnPart(s AttnShape, b, g, r int) int {
	group := s.H / s.KV
	return ((b*s.KV+g)*(group-1) + r - 1) * 2 * s.T * s.D
}

func (j *attnBackwardJob) Range(_, _ int) {
	s := j.s
	const n = attnTile
	buf := New(Scratch, 2*n*n+s.T)
	defer buf.Release()
	data := buf.Data()
	for {
		it, ok := (*attnJob)(j).take(s.B * s.H)
		if !ok {
			return
		}
		j.head(it/s.H, it%s.H, data[:n*n], data[n*n:2*n*n], data[2*n*n:])
	}
}

// head accumulates the gradients of head h of sequence b, with sc and dp
// two attnTile² buffers and delta room for T floats.
func (j *attnBackwardJob) head(b, h int, sc, dp, delta []float32) {
	s := j.s
	const n = attnTile
	d, qc, kc, group := s.D, s.H*s.D, s.KV*s.D, s.H/s.KV
	g := h / group
	rs := float32(1 / math.Sqrt(float64(d))) // 1/√D
	q := j.qs[b*s.T*qc+h*d:]                 // Q    (T, D)
	o := j.os[b*s.T*qc+h*d:]                 // O    (T, D)
	do := j.dos[b*s.T*qc+h*d:]               // dO   (T, D)
	dq := j.dqs[b*s.T*qc+h*d:]               // dQ   (T, D)
	ks := j.ks[b*s.T*kc+g*d:]                // K    (T, D)
	vs := j.vs[b*s.T*kc+g*d:]                // V    (T, D)
	dk, dv, ld := j.dks[b*s.T*kc+g*d:], j.dvs[b*s.T*kc+g*d:], kc
	if r := h % group; r > 0 {
		p := attnPart(s, b, g, r)
		dk, dv, ld = j.part[p:p+s.T*d], j.part[p+s.T*d:p+2*s.T*d], d
	}
	lse := j.ls[(b*s.H+h)*s.T:][:s.T]
	delta = delta[:s.T]
	for t := range delta {
		delta[t] = dotOf(do[t*qc:t*qc+d], o[t*qc:t*qc+d])
	}
	// Key tile by key tile, so that its rows of dK and dV stay in cache,
	// against the query tiles on and below the diagonal.
	for k0 := 0; k0 < s.T; k0 += n {
		nk := min(n, s.T-k0)
		for q0 := k0; q0 < s.T; q0 += n {
			mq := min(n, s.T-q0)
			// P = e^{Q Kᵀ/√D − lse} on and below the diagonal, 0 above   (mq, nk)
			attnGemm(false, true, mq, nk, d, rs, q[q0*qc:], qc, ks[k0*kc:], kc, 0, sc, n)
			for r := range mq {
				row := sc[r*n : r*n+nk]
				valid := min(nk, q0+r-k0+1)
				expSub(row[:valid], row[:valid], lse[q0+r])
				clear(row[valid:])
			}
			// dP = dO Vᵀ   (mq, nk)
			attnGemm(false, true, mq, nk, d, 1, do[q0*qc:], qc, vs[k0*kc:], kc, 0, dp, n)
			// dV += Pᵀ dO   (nk, D)
			attnGemm(true, false, nk, d, mq, 1, sc, n, do[q0*qc:], qc, 1, dv[k0*ld:], ld)
			// dS = P ∘ (dP − δ)   (mq, nk), in place of dP
			for r := range mq {
				ds, p, dl := dp[r*n:r*n+nk], sc[r*n:r*n+nk], delta[q0+r]
				for c := range ds {
					ds[c] = p[c] * (ds[c] - dl)
				}
			}
			// dK += dSᵀ Q / √D   (nk, D);   dQ += dS K / √D   (mq, D)
			attnGemm(true, false, nk, d, mq, rs, dp, n, q[q0*qc:], qc, 1, dk[k0*ld:], ld)
			attnGemm(false, false, mq, d, nk, rs, dp, n, ks[k0*kc:], kc, 1, dq[q0*qc:], qc)
		}
	}
}

// dotOf returns x·y.
func dotOf(x, y []float32) float32 {
	var s float32
	y = y[:len(x)]
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// attnReduceJob adds the partial dK, dV of the heads after each group's
// first into dk, dv, row by row in head order.
type attnReduceJob struct {
	s              AttnShape
	part, dks, dvs []float32
}

var attnReduceJobs Jobs[attnReduceJob]

func (j *attnReduceJob) Range(lo, hi int) {
	s := j.s
	d, kc, group := s.D, s.KV*s.D, s.H/s.KV
	for row := lo; row < hi; row++ {
		b, t := row/s.T, row%s.T
		for g := 0; g < s.KV; g++ {
			dk, dv := j.dks[row*kc+g*d:][:d], j.dvs[row*kc+g*d:][:d]
			for r := 1; r < group; r++ {
				p := attnPart(s, b, g, r) + t*d
				addTo(dk, j.part[p:p+d])
				addTo(dv, j.part[p+s.T*d:p+s.T*d+d])
			}
		}
	}
}

// addTo adds src to dst elementwise.
func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}
