package tensor

import "fmt"

// The autograd ops. Each op checks shapes, runs its forward kernel on the
// current backend and, when recording, saves exactly what its backward needs
// and registers its backward, a function written right after it that finds
// its inputs, saved tensors and parameters in the node. Op outputs are new
// tensors accounted as Activation, owned by the caller (Release when done).

// mismatch panics with an op's shape error. Ops call it only once a check
// has failed, so that the arguments are not boxed on the good path.
func mismatch(op string, format string, args ...any) {
	panic(fmt.Sprintf("tensor: %s: %s", op, fmt.Sprintf(format, args...)))
}

// mustMatch panics with an op's shape error unless cond holds. Its
// arguments are boxed on every call: hot paths test first and call
// mismatch.
func mustMatch(op string, cond bool, format string, args ...any) {
	if !cond {
		mismatch(op, format, args...)
	}
}

// Linear computes y = x Wᵀ + b, the HF nn.Linear convention.
//
//	x (N, in) · W (out, in)ᵀ + b (out) → y (N, out)
//
// Backward: dx = dy W, dW += dyᵀ x, db += Σ_n dy. x is saved only when W
// needs a gradient: a frozen linear keeps no activation at all.
func (tp *Tape) Linear(x, w, b *Tensor) *Tensor {
	in, out := w.Dim(1), w.Dim(0)
	if x.Cols() != in {
		mismatch("Linear", "x has %d columns, W is %v", x.Cols(), w.shape)
	}
	y := newRows(Activation, x.shape, out)
	backend.Gemm(false, true, 1, x, w, 0, y)
	if b != nil {
		if b.Len() != out {
			mismatch("Linear", "bias has %d values, W is %v", b.Len(), w.shape)
		}
		backend.AddRowVector(y, b)
	}
	if !tp.recording(x, w, b) {
		return y
	}
	n := tp.record(y, linearBackward, x, w, b)
	if w.requiresGrad {
		n.save(x)
	}
	if x.requiresGrad {
		n.save(w)
	}
	return y
}

func linearBackward(_ *Tape, n *node, dy *Tensor) {
	x, w, b := n.in[0], n.in[1], n.in[2]
	if x.requiresGrad {
		backend.Gemm(false, false, 1, dy, w, 1, gradOf(x)) // (N,out)·(out,in)
	}
	if w.requiresGrad {
		backend.Gemm(true, false, 1, dy, x, 1, gradOf(w)) // (out,N)·(N,in)
	}
	if b != nil && b.requiresGrad {
		backend.SumRows(gradOf(b), dy)
	}
}

// Add returns a + b (same shape): the residual connection.
func (tp *Tape) Add(a, b *Tensor) *Tensor {
	if !SameShape(a, b) {
		mismatch("Add", "shapes %v and %v differ", a.shape, b.shape)
	}
	y := New(Activation, a.shape...)
	backend.Add(y, a, b)
	if tp.recording(a, b) {
		tp.record(y, addBackward, a, b)
	}
	return y
}

func addBackward(_ *Tape, n *node, dy *Tensor) {
	for _, x := range n.in[:2] {
		if x.requiresGrad {
			backend.AddScaled(gradOf(x), 1, dy)
		}
	}
}

// Embedding looks up rows of table (V, C) for ids (N) → (N, C).
// Backward scatters dy back into the rows it came from; ids must stay
// unchanged until then.
func (tp *Tape) Embedding(table *Tensor, ids []int32) *Tensor {
	v := table.Dim(0)
	for i, id := range ids {
		if id < 0 || int(id) >= v {
			mismatch("Embedding", "id %d at %d outside vocabulary of %d", id, i, v)
		}
	}
	y := New(Activation, len(ids), table.Dim(1))
	backend.GatherRows(y, table, ids)
	if tp.recording(table) {
		tp.record(y, embeddingBackward, table).ids = ids
	}
	return y
}

func embeddingBackward(_ *Tape, n *node, dy *Tensor) {
	backend.ScatterAddRows(gradOf(n.in[0]), dy, n.ids)
}

// RMSNorm normalizes each row of x (N, C) by its root mean square and scales
// by w (C), in float32 as HF does:
//
//	y = x · rsqrt(mean(x²) + eps) · w
//
// It saves x, w and the per-row rsqrt (N).
func (tp *Tape) RMSNorm(x, w *Tensor, eps float32) *Tensor {
	if w.Len() != x.Cols() {
		mismatch("RMSNorm", "weight has %d values, x has %d columns", w.Len(), x.Cols())
	}
	y := New(Activation, x.shape...)
	rstd := New(Activation, x.Rows())
	backend.RMSNorm(y, rstd, x, w, eps)
	if tp.recording(x, w) {
		tp.record(y, rmsNormBackward, x, w).save(x, w, rstd)
	}
	rstd.Release() // the node holds its own reference when recording
	return y
}

func rmsNormBackward(_ *Tape, n *node, dy *Tensor) {
	x, w, rstd := n.saved[0], n.saved[1], n.saved[2]
	var dx, dw *Tensor
	if x.requiresGrad {
		dx = gradOf(x)
	}
	if w.requiresGrad {
		dw = gradOf(w)
	}
	backend.RMSNormBackward(dx, dw, dy, x, w, rstd)
}

// RoPE applies rotary position embeddings in rotate-half layout to x
// (B·T, heads·D): for each head and i < D/2, with θ = pos·invFreq[i],
//
//	y[i]     = x[i]·cos θ − x[i+D/2]·sin θ
//	y[i+D/2] = x[i+D/2]·cos θ + x[i]·sin θ
//
// cos and sin are (T, D/2) tables of cos θ and sin θ (nn builds them). Rotation is orthogonal,
// so backward rotates dy by −θ and saves nothing but the tables.
func (tp *Tape) RoPE(x, cos, sin *Tensor, seqLen, headDim int) *Tensor {
	if headDim%2 != 0 || x.Cols()%headDim != 0 {
		mismatch("RoPE", "x has %d columns, head dim %d", x.Cols(), headDim)
	}
	if x.Rows()%seqLen != 0 {
		mismatch("RoPE", "x has %d rows, sequence length %d", x.Rows(), seqLen)
	}
	if cos.Len() < seqLen*headDim/2 || sin.Len() != cos.Len() {
		mismatch("RoPE", "tables too short for %d positions", seqLen)
	}
	y := New(Activation, x.shape...)
	backend.RoPE(y, x, cos, sin, seqLen, headDim, false)
	if tp.recording(x) {
		n := tp.record(y, ropeBackward, x)
		n.save(cos, sin)
		n.ints = [2]int{seqLen, headDim}
	}
	return y
}

func ropeBackward(_ *Tape, n *node, dy *Tensor) {
	x, cos, sin := n.in[0], n.saved[0], n.saved[1]
	dx := New(Scratch, dy.shape...)
	backend.RoPE(dx, dy, cos, sin, n.ints[0], n.ints[1], true)
	backend.AddScaled(gradOf(x), 1, dx)
	dx.Release()
}

// Attention is causal grouped-query self-attention:
//
//	out_h = softmax(q_h k_gᵀ / √D + causal mask) v_g,  g = h / (H/KV)
//
// q (B·T, H·D), k and v (B·T, KV·D) → (B·T, H·D). It saves q, k, v, the
// output and one log-sum-exp per row — never the T×T probabilities, which
// backward recomputes.
func (tp *Tape) Attention(q, k, v *Tensor, s AttnShape) *Tensor {
	if s.KV <= 0 || s.H%s.KV != 0 {
		mismatch("Attention", "%d heads do not group into %d KV heads", s.H, s.KV)
	}
	if q.Rows() != s.B*s.T || q.Cols() != s.H*s.D {
		mismatch("Attention", "q is %v, want (%d, %d)", q.shape, s.B*s.T, s.H*s.D)
	}
	if k.Rows() != s.B*s.T || k.Cols() != s.KV*s.D || !SameShape(k, v) {
		mismatch("Attention", "k %v, v %v, want (%d, %d)", k.shape, v.shape, s.B*s.T, s.KV*s.D)
	}
	out := New(Activation, q.shape...)
	lse := New(Activation, s.B, s.H, s.T)
	backend.Attention(out, lse, q, k, v, s)
	if tp.recording(q, k, v) {
		n := tp.record(out, attentionBackward, q, k, v)
		n.save(q, k, v, out, lse)
		n.attn = s
	}
	lse.Release()
	return out
}

func attentionBackward(_ *Tape, n *node, dout *Tensor) {
	q, k, v, out, lse := n.saved[0], n.saved[1], n.saved[2], n.saved[3], n.saved[4]
	dq, dk, dv := New(Scratch, q.shape...), New(Scratch, k.shape...), New(Scratch, v.shape...)
	backend.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, n.attn)
	for i, d := range [3]*Tensor{dq, dk, dv} {
		if x := n.saved[i]; x.requiresGrad {
			backend.AddScaled(gradOf(x), 1, d)
		}
		d.Release()
	}
}

// SwiGLU returns silu(gate) · up, elementwise: the LLaMA MLP's gate.
// silu(g) = g·σ(g). It saves gate and up.
func (tp *Tape) SwiGLU(gate, up *Tensor) *Tensor {
	if !SameShape(gate, up) {
		mismatch("SwiGLU", "shapes %v and %v differ", gate.shape, up.shape)
	}
	y := New(Activation, gate.shape...)
	backend.SwiGLU(y, gate, up)
	if tp.recording(gate, up) {
		tp.record(y, swiGLUBackward, gate, up).save(gate, up)
	}
	return y
}

func swiGLUBackward(_ *Tape, n *node, dy *Tensor) {
	gate, up := n.saved[0], n.saved[1]
	dg, du := New(Scratch, gate.shape...), New(Scratch, up.shape...)
	backend.SwiGLUBackward(dg, du, dy, gate, up)
	if gate.requiresGrad {
		backend.AddScaled(gradOf(gate), 1, dg)
	}
	if up.requiresGrad {
		backend.AddScaled(gradOf(up), 1, du)
	}
	dg.Release()
	du.Release()
}

// CrossEntropy returns the mean softmax cross-entropy of logits (N, V)
// against targets (N), ignoring rows whose target is negative (HF's -100),
// as a one-element tensor, with the number of counted rows. With no counted
// row the loss is 0. targets must stay unchanged until backward.
//
//	L = (1/n) Σ_counted (logsumexp(z) − z[target]);  dz = (softmax(z) − onehot)/n
func (tp *Tape) CrossEntropy(logits *Tensor, targets []int32) (*Tensor, int) {
	v := logits.Cols()
	if len(targets) != logits.Rows() {
		mismatch("CrossEntropy", "%d targets for %d rows", len(targets), logits.Rows())
	}
	for i, t := range targets {
		if int(t) >= v {
			mismatch("CrossEntropy", "target %d at %d outside vocabulary of %d", t, i, v)
		}
	}
	lse := New(Activation, logits.Rows())
	sum, count := backend.CrossEntropy(lse, logits, targets)
	loss := New(Activation)
	if count > 0 {
		loss.Data()[0] = float32(sum / float64(count))
	}
	if tp.recording(logits) && count > 0 {
		n := tp.record(loss, crossEntropyBackward, logits)
		n.save(logits, lse)
		n.ids = targets
		n.ints[0] = count
	}
	lse.Release()
	return loss, count
}

func crossEntropyBackward(_ *Tape, n *node, dl *Tensor) {
	logits, lse := n.saved[0], n.saved[1]
	backend.CrossEntropyBackward(gradOf(logits), logits, lse, n.ids, dl.Data()[0]/float32(n.ints[0]))
}
