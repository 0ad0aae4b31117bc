package tensor

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// The scalar attention kernels the tiled ones in attention.go replaced,
// unchanged but for their names: the reference of TestAttentionMatchesNaive
// and the baseline of BenchmarkAttention.

type naiveAttnJob struct {
	s                  AttnShape
	qs, ks, vs, os, ls []float32
	dqs, dks, dvs, dos []float32 // backward
}

var naiveAttnJobs Jobs[naiveAttnJob]

// naiveAttention is the scalar attention that the tiled kernels replaced,
// kept as their reference and as the baseline of BenchmarkAttention: one
// (batch, head) at a time. For query row t the scores s_j = q_t·k_j/√D,
// j ≤ t, are computed once into a length-T scratch row; the output is
// Σ_j softmax(s)_j v_j and lse_t = log Σ_j exp(s_j).
func naiveAttention(out, lse, q, k, v *Tensor, s AttnShape) {
	RunJob(&naiveAttnJobs, s.B*s.H, 1, naiveAttnJob{s: s, qs: q.Data(), ks: k.Data(), vs: v.Data(), os: out.Data(), ls: lse.Data()})
}

func (j *naiveAttnJob) Range(lo, hi int) {
	s, qs, ks, vs, os, ls := j.s, j.qs, j.ks, j.vs, j.os, j.ls
	qc, kc, group := s.H*s.D, s.KV*s.D, s.H/s.KV
	scale := float32(1 / math.Sqrt(float64(s.D)))
	scratch := New(Scratch, s.T)
	defer scratch.Release()
	p := scratch.Data()
	for bh := lo; bh < hi; bh++ {
		b, h := bh/s.H, bh%s.H
		g := h / group
		for t := 0; t < s.T; t++ {
			qt := qs[(b*s.T+t)*qc+h*s.D:][:s.D]
			m := float32(math.Inf(-1))
			for j := 0; j <= t; j++ {
				kj := ks[(b*s.T+j)*kc+g*s.D:][:s.D]
				var dot float32
				for i, x := range qt {
					dot += x * kj[i]
				}
				p[j] = dot * scale
				m = max(m, p[j])
			}
			var sum float32
			for j := 0; j <= t; j++ {
				p[j] = float32(math.Exp(float64(p[j] - m)))
				sum += p[j]
			}
			ot := os[(b*s.T+t)*qc+h*s.D:][:s.D]
			clear(ot)
			for j := 0; j <= t; j++ {
				vj := vs[(b*s.T+j)*kc+g*s.D:][:s.D]
				w := p[j] / sum
				for i := range ot {
					ot[i] += w * vj[i]
				}
			}
			ls[(b*s.H+h)*s.T+t] = m + float32(math.Log(float64(sum)))
		}
	}
}

type naiveAttnBackwardJob naiveAttnJob

var naiveAttnBackwardJobs Jobs[naiveAttnBackwardJob]

// naiveAttentionBackward recomputes p_j = exp(s_j − lse_t) row by row. With
// δ_t = dout_t·out_t: ds_j = p_j (dout_t·v_j − δ_t), dq_t = Σ ds_j k_j/√D,
// dk_j += ds_j q_t/√D, dv_j += p_j dout_t. Work is split by (batch, KV head)
// so that no two goroutines write the same dk, dv rows.
func naiveAttentionBackward(dq, dk, dv, dout, q, k, v, out, lse *Tensor, s AttnShape) {
	RunJob(&naiveAttnBackwardJobs, s.B*s.KV, 1, naiveAttnBackwardJob{s: s,
		qs: q.Data(), ks: k.Data(), vs: v.Data(), os: out.Data(), ls: lse.Data(),
		dqs: dq.Data(), dks: dk.Data(), dvs: dv.Data(), dos: dout.Data()})
}

func (j *naiveAttnBackwardJob) Range(lo, hi int) {
	s, qs, ks, vs, os, ls := j.s, j.qs, j.ks, j.vs, j.os, j.ls
	dqs, dks, dvs, dos := j.dqs, j.dks, j.dvs, j.dos
	qc, kc, group := s.H*s.D, s.KV*s.D, s.H/s.KV
	scale := float32(1 / math.Sqrt(float64(s.D)))
	for bg := lo; bg < hi; bg++ {
		b, g := bg/s.KV, bg%s.KV
		for h := g * group; h < (g+1)*group; h++ {
			for t := 0; t < s.T; t++ {
				qt := qs[(b*s.T+t)*qc+h*s.D:][:s.D]
				dot := dos[(b*s.T+t)*qc+h*s.D:][:s.D]
				ot := os[(b*s.T+t)*qc+h*s.D:][:s.D]
				dqt := dqs[(b*s.T+t)*qc+h*s.D:][:s.D]
				var delta float32
				for i := range dot {
					delta += dot[i] * ot[i]
				}
				l := ls[(b*s.H+h)*s.T+t]
				for j := 0; j <= t; j++ {
					kj := ks[(b*s.T+j)*kc+g*s.D:][:s.D]
					vj := vs[(b*s.T+j)*kc+g*s.D:][:s.D]
					var sc, dp float32
					for i := range qt {
						sc += qt[i] * kj[i]
						dp += dot[i] * vj[i]
					}
					p := float32(math.Exp(float64(sc*scale - l)))
					ds := p * (dp - delta) * scale
					dkj := dks[(b*s.T+j)*kc+g*s.D:][:s.D]
					dvj := dvs[(b*s.T+j)*kc+g*s.D:][:s.D]
					for i := range qt {
						dqt[i] += ds * kj[i]
						dkj[i] += ds * qt[i]
						dvj[i] += p * dot[i]
					}
				}
			}
		}
	}
}

// attnCase is one attention problem with random inputs: q, k, v with
// standard deviation sd (large sd makes peaked softmax rows whose maximum
// moves from key tile to key tile), an output gradient, and non-zero
// starting gradients to check that backward accumulates.
type attnCase struct {
	s                         AttnShape
	q, k, v, dout, dq, dk, dv *Tensor
}

func newAttnCase(seed uint64, s AttnShape, sd float64) *attnCase {
	rng := gcRNG(seed)
	qs, ks := []int{s.B * s.T, s.H * s.D}, []int{s.B * s.T, s.KV * s.D}
	return &attnCase{s: s,
		q: gcTensor(rng, Activation, 0, sd, qs...), k: gcTensor(rng, Activation, 0, sd, ks...),
		v: gcTensor(rng, Activation, 0, 1, ks...), dout: gcTensor(rng, Activation, 0, 1, qs...),
		dq: gcTensor(rng, Gradient, 0, 1, qs...), dk: gcTensor(rng, Gradient, 0, 1, ks...),
		dv: gcTensor(rng, Gradient, 0, 1, ks...)}
}

func (c *attnCase) release() { gcRelease(c.q, c.k, c.v, c.dout, c.dq, c.dk, c.dv) }

// attnResult is what one implementation makes of an attnCase.
type attnResult struct{ out, lse, dq, dk, dv *Tensor }

func (c *attnCase) run(fwd func(out, lse, q, k, v *Tensor, s AttnShape),
	bwd func(dq, dk, dv, dout, q, k, v, out, lse *Tensor, s AttnShape)) attnResult {
	r := attnResult{out: New(Activation, c.q.Shape()...), lse: New(Activation, c.s.B, c.s.H, c.s.T),
		dq: c.dq.Clone(Gradient), dk: c.dk.Clone(Gradient), dv: c.dv.Clone(Gradient)}
	fwd(r.out, r.lse, c.q, c.k, c.v, c.s)
	bwd(r.dq, r.dk, r.dv, c.dout, c.q, c.k, c.v, r.out, r.lse, c.s)
	return r
}

func (r attnResult) tensors() []*Tensor { return []*Tensor{r.out, r.lse, r.dq, r.dk, r.dv} }

var attnResultNames = []string{"out", "lse", "dq", "dk", "dv"}

// requireAttnClose checks got against want elementwise, relative to each
// element's magnitude plus the tensor's root mean square (sums of terms of
// both signs can round far below their terms).
func requireAttnClose(t *testing.T, got, want attnResult, tol float64) {
	t.Helper()
	for i, w := range want.tensors() {
		g, wd := got.tensors()[i].Data(), w.Data()
		var ss float64
		for _, x := range wd {
			ss += float64(x) * float64(x)
		}
		rms := math.Sqrt(ss / float64(max(len(wd), 1)))
		for e := range wd {
			err := math.Abs(float64(g[e]) - float64(wd[e]))
			if !(err <= tol*(math.Abs(float64(wd[e]))+rms)) {
				require.Failf(t, "mismatch", "%s[%d] = %g, want %g (error %.2g, rms %.2g)",
					attnResultNames[i], e, g[e], wd[e], err, rms)
			}
		}
	}
}

func TestAttentionMatchesNaive(t *testing.T) {
	seed := uint64(0)
	for _, hkv := range [][2]int{{1, 1}, {4, 2}, {9, 3}, {6, 1}} {
		for _, b := range []int{1, 2} {
			for _, T := range []int{1, 2, 5, 17, 64, 65, 96, 97, 130, 193, 300} {
				for _, d := range []int{1, 3, 16, 64, 80} {
					s := AttnShape{B: b, T: T, H: hkv[0], KV: hkv[1], D: d}
					// Every other shape gets peaked softmax rows. A float32
					// score is off by about 1e-7·|q||k|/√D, which scales
					// with sd², and so does the error of both kernels.
					seed++
					sd := float64(1 + 2*(seed%2))
					t.Run(fmt.Sprintf("B%d_T%d_H%d_KV%d_D%d_sd%g", b, T, s.H, s.KV, d, sd), func(t *testing.T) {
						c := newAttnCase(seed, s, sd)
						defer c.release()
						want := c.run(naiveAttention, naiveAttentionBackward)
						got := c.run(backend.Attention, backend.AttentionBackward)
						defer gcRelease(append(want.tensors(), got.tensors()...)...)
						requireAttnClose(t, got, want, 1e-5*sd*sd)
					})
				}
			}
		}
	}
}

// The kernels split their work among goroutines, but every value is
// computed in an order that does not depend on the split: one core or
// several give the same bits.
func TestAttentionDeterministic(t *testing.T) {
	c := newAttnCase(7, AttnShape{B: 2, T: 150, H: 6, KV: 2, D: 16}, 2)
	defer c.release()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var res [2]attnResult
	for i, procs := range []int{1, 4} {
		runtime.GOMAXPROCS(procs)
		res[i] = c.run(backend.Attention, backend.AttentionBackward)
		defer gcRelease(res[i].tensors()...)
	}
	for i, x := range res[0].tensors() {
		require.Equal(t, x.Data(), res[1].tensors()[i].Data(), attnResultNames[i])
	}
}

// BenchmarkAttention times forward and backward of one layer's attention
// at the SmolLM2-135M shape (9 heads, 3 KV heads of 64), the tiled kernels
// against the scalar ones they replaced. Besides wall time it reports the
// CPU time per call, which swings far less with the load of a shared
// machine.
func BenchmarkAttention(b *testing.B) {
	impls := []struct {
		name string
		fwd  func(out, lse, q, k, v *Tensor, s AttnShape)
		bwd  func(dq, dk, dv, dout, q, k, v, out, lse *Tensor, s AttnShape)
	}{
		{"tiled", backend.Attention, backend.AttentionBackward},
		{"naive", naiveAttention, naiveAttentionBackward},
	}
	for _, T := range []int{512, 2048} {
		s := AttnShape{B: 1, T: T, H: 9, KV: 3, D: 64}
		c := newAttnCase(1, s, 1)
		out, lse := New(Activation, c.q.Shape()...), New(Activation, s.B, s.H, s.T)
		for _, im := range impls {
			b.Run(fmt.Sprintf("T=%d/forward/%s", T, im.name), func(b *testing.B) {
				cpu0 := processCPUSeconds()
				for b.Loop() {
					im.fwd(out, lse, c.q, c.k, c.v, s)
				}
				reportCPUPerOp(b, cpu0)
			})
			b.Run(fmt.Sprintf("T=%d/backward/%s", T, im.name), func(b *testing.B) {
				im.fwd(out, lse, c.q, c.k, c.v, s)
				cpu0 := processCPUSeconds()
				for b.Loop() {
					im.bwd(c.dq, c.dk, c.dv, c.dout, c.q, c.k, c.v, out, lse, s)
				}
				reportCPUPerOp(b, cpu0)
			})
		}
		gcRelease(out, lse)
		c.release()
	}
}

// reportCPUPerOp reports the CPU time per iteration since cpu0.
func reportCPUPerOp(b *testing.B, cpu0 float64) {
	if cpu := processCPUSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(cpu*1e3/float64(b.N), "cpu-ms/op")
	}
}
