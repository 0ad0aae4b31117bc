package tensor

import "math"

// The CPU backend's elementwise transcendental kernels: SwiGLU and softmax
// cross-entropy, forward beside backward. Both work through chunks of
// actChunk elements so that the vector exp (exp.go) writes into a buffer on
// the goroutine's stack that stays in L1 while the rest of the formula
// reads it back; nothing is allocated per call.

// actChunk is the length of the kernels' stack buffers (4 KiB).
const actChunk = 1024

type swiGLUJob struct {
	o, g, u, dg, du, dy []float32
	backward            bool
}

var swiGLUJobs Jobs[swiGLUJob]

// SwiGLU, elementwise, with σ(g) = 1/(1 + e^−g):
//
//	out = silu(g)·u = g·σ(g)·u
func (cpuBackend) SwiGLU(out, gate, up *Tensor) {
	RunJob(&swiGLUJobs, out.Len(), 4096, swiGLUJob{o: out.Data(), g: gate.Data(), u: up.Data()})
}

// SwiGLUBackward accumulates, with d silu(g)/dg = σ(g)·(1 + g·(1 − σ(g))),
//
//	dg += dy·u·σ(g)·(1 + g·(1 − σ(g))),   du += dy·g·σ(g)
func (cpuBackend) SwiGLUBackward(dgate, dup, dout, gate, up *Tensor) {
	RunJob(&swiGLUJobs, dout.Len(), 4096, swiGLUJob{dg: dgate.Data(), du: dup.Data(), dy: dout.Data(), g: gate.Data(), u: up.Data(), backward: true})
}

func (j *swiGLUJob) Range(lo, hi int) {
	var buf [actChunk]float32
	for ; lo < hi; lo += actChunk {
		n := min(actChunk, hi-lo)
		g, sg := j.g[lo:lo+n], buf[:n]
		sigmoid(sg, g)
		if !j.backward {
			o, u := j.o[lo:lo+n], j.u[lo:lo+n] // out may be gate or up
			for i, s := range sg {
				o[i] = g[i] * s * u[i]
			}
			continue
		}
		u, dy, dg, du := j.u[lo:lo+n], j.dy[lo:lo+n], j.dg[lo:lo+n], j.du[lo:lo+n]
		for i, s := range sg {
			dg[i] += dy[i] * u[i] * s * (1 + g[i]*(1-s))
			du[i] += dy[i] * g[i] * s
		}
	}
}

type crossEntropyJob struct {
	v          int
	zs, ls, ds []float32
	targets    []int32
	scale      float32
	backward   bool
}

var crossEntropyJobs Jobs[crossEntropyJob]

// CrossEntropy, per row z of logits with m = max z:
//
//	lse = m + log Σ_j e^(z_j − m),   loss_row = lse − z[target]
//
// The sum is taken in float32 within blocks of expBlock and in float64
// across them (expSub), which keeps lse to about 1e-7 relative over a
// 49k vocabulary.
func (cpuBackend) CrossEntropy(lse, logits *Tensor, targets []int32) (float64, int) {
	v, zs, ls := logits.Cols(), logits.Data(), lse.Data()
	RunJob(&crossEntropyJobs, len(targets), 4, crossEntropyJob{v: v, zs: zs, ls: ls})
	return crossEntropySum(ls, zs, v, targets)
}

// crossEntropySum returns Σ lse − z[target] over the rows (of v logits)
// whose target is ≥ 0, and the count of those rows.
func crossEntropySum(ls, zs []float32, v int, targets []int32) (total float64, n int) {
	for r, t := range targets {
		if t >= 0 {
			total += float64(ls[r]) - float64(zs[r*v+int(t)])
			n++
		}
	}
	return total, n
}

// CrossEntropyBackward accumulates, for counted rows (target ≥ 0),
//
//	dz_j += scale·(e^(z_j − lse) − [j = target])
func (cpuBackend) CrossEntropyBackward(dlogits, logits, lse *Tensor, targets []int32, scale float32) {
	RunJob(&crossEntropyJobs, len(targets), 4, crossEntropyJob{v: logits.Cols(), zs: logits.Data(), ls: lse.Data(), ds: dlogits.Data(),
		targets: targets, scale: scale, backward: true})
}

func (j *crossEntropyJob) Range(lo, hi int) {
	v, zs, ls := j.v, j.zs, j.ls
	var buf [actChunk]float32
	if !j.backward {
		for r := lo; r < hi; r++ {
			row := zs[r*v : (r+1)*v]
			m := rowMax(row)
			var sum float64
			for c := 0; c < v; c += actChunk {
				sum += expSub(buf[:], row[c:min(c+actChunk, v)], m)
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
		row, d, l := zs[r*v:(r+1)*v], ds[r*v:(r+1)*v], ls[r]
		for c := 0; c < v; c += actChunk {
			n := min(actChunk, v-c)
			p := buf[:n]
			expSub(p, row[c:c+n], l)
			dc := d[c : c+n]
			for i, e := range p {
				dc[i] += scale * e
			}
		}
		d[t] -= scale
	}
}
