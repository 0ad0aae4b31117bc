package tensor

import "fmt"

// The autograd ops. Each op checks shapes, runs its forward kernel on the
// current backend and, when recording, saves exactly what its backward needs
// and registers that backward right beside the forward. Op outputs are new
// tensors accounted as Activation, owned by the caller (Release when done).

func mustMatch(op string, cond bool, format string, args ...any) {
	if !cond {
		panic(fmt.Sprintf("tensor: %s: %s", op, fmt.Sprintf(format, args...)))
	}
}

// rowsShape returns shape with its last dimension replaced by cols.
func rowsShape(shape []int, cols int) []int {
	s := append([]int(nil), shape...)
	s[len(s)-1] = cols
	return s
}

// Linear computes y = x Wᵀ + b, the HF nn.Linear convention.
//
//	x (N, in) · W (out, in)ᵀ + b (out) → y (N, out)
//
// Backward: dx = dy W, dW += dyᵀ x, db += Σ_n dy. x is saved only when W
// needs a gradient: a frozen linear keeps no activation at all.
func (tp *Tape) Linear(x, w, b *Tensor) *Tensor {
	in, out := w.Dim(1), w.Dim(0)
	mustMatch("Linear", x.Cols() == in, "x has %d columns, W is %v", x.Cols(), w.shape)
	y := New(Activation, rowsShape(x.shape, out)...)
	backend.Gemm(false, true, 1, x, w, 0, y)
	if b != nil {
		mustMatch("Linear", b.Len() == out, "bias has %d values, W is %v", b.Len(), w.shape)
		backend.AddRowVector(y, b)
	}
	if !tp.recording(x, w, b) {
		return y
	}
	var saved []*Tensor
	if w.requiresGrad {
		saved = append(saved, x)
	}
	if x.requiresGrad {
		saved = append(saved, w)
	}
	tp.record(y, saved, func(dy *Tensor) {
		if x.requiresGrad {
			backend.Gemm(false, false, 1, dy, w, 1, gradOf(x)) // (N,out)·(out,in)
		}
		if w.requiresGrad {
			backend.Gemm(true, false, 1, dy, x, 1, gradOf(w)) // (out,N)·(N,in)
		}
		if b != nil && b.requiresGrad {
			backend.SumRows(gradOf(b), dy)
		}
	})
	return y
}

// Add returns a + b (same shape): the residual connection.
func (tp *Tape) Add(a, b *Tensor) *Tensor {
	mustMatch("Add", SameShape(a, b), "shapes %v and %v differ", a.shape, b.shape)
	y := New(Activation, a.shape...)
	backend.Add(y, a, b)
	if tp.recording(a, b) {
		tp.record(y, nil, func(dy *Tensor) {
			if a.requiresGrad {
				backend.AddScaled(gradOf(a), 1, dy)
			}
			if b.requiresGrad {
				backend.AddScaled(gradOf(b), 1, dy)
			}
		})
	}
	return y
}

// Embedding looks up rows of table (V, C) for ids (N) → (N, C).
// Backward scatters dy back into the rows it came from.
func (tp *Tape) Embedding(table *Tensor, ids []int32) *Tensor {
	v := table.Dim(0)
	for i, id := range ids {
		mustMatch("Embedding", id >= 0 && int(id) < v, "id %d at %d outside vocabulary of %d", id, i, v)
	}
	y := New(Activation, len(ids), table.Dim(1))
	backend.GatherRows(y, table, ids)
	if tp.recording(table) {
		tp.record(y, nil, func(dy *Tensor) {
			backend.ScatterAddRows(gradOf(table), dy, ids)
		})
	}
	return y
}

// RMSNorm normalizes each row of x (N, C) by its root mean square and scales
// by w (C), in float32 as HF does:
//
//	y = x · rsqrt(mean(x²) + eps) · w
//
// It saves x and the per-row rsqrt (N), and w when x needs a gradient.
func (tp *Tape) RMSNorm(x, w *Tensor, eps float32) *Tensor {
	mustMatch("RMSNorm", w.Len() == x.Cols(), "weight has %d values, x has %d columns", w.Len(), x.Cols())
	y := New(Activation, x.shape...)
	rstd := New(Activation, x.Rows())
	backend.RMSNorm(y, rstd, x, w, eps)
	if tp.recording(x, w) {
		tp.record(y, []*Tensor{x, w, rstd}, func(dy *Tensor) {
			var dx, dw *Tensor
			if x.requiresGrad {
				dx = gradOf(x)
			}
			if w.requiresGrad {
				dw = gradOf(w)
			}
			backend.RMSNormBackward(dx, dw, dy, x, w, rstd)
		})
	}
	rstd.Release() // the node holds its own reference when recording
	return y
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
	mustMatch("RoPE", headDim%2 == 0 && x.Cols()%headDim == 0, "x has %d columns, head dim %d", x.Cols(), headDim)
	mustMatch("RoPE", x.Rows()%seqLen == 0, "x has %d rows, sequence length %d", x.Rows(), seqLen)
	mustMatch("RoPE", cos.Len() >= seqLen*headDim/2 && sin.Len() == cos.Len(), "tables too short for %d positions", seqLen)
	y := New(Activation, x.shape...)
	backend.RoPE(y, x, cos, sin, seqLen, headDim, false)
	if tp.recording(x) {
		tp.record(y, nil, func(dy *Tensor) {
			dx := New(Scratch, dy.shape...)
			backend.RoPE(dx, dy, cos, sin, seqLen, headDim, true)
			backend.AddScaled(gradOf(x), 1, dx)
			dx.Release()
		})
	}
	return y
}

// Attention is causal grouped-query self-attention:
//
//	out_h = softmax(q_h k_gᵀ / √D + causal mask) v_g,  g = h / (H/KV)
//
// q (B·T, H·D), k and v (B·T, KV·D) → (B·T, H·D). It saves q, k, v, the
// output and one log-sum-exp per row — never the T×T probabilities, which
// backward recomputes.
func (tp *Tape) Attention(q, k, v *Tensor, s AttnShape) *Tensor {
	mustMatch("Attention", s.KV > 0 && s.H%s.KV == 0, "%d heads do not group into %d KV heads", s.H, s.KV)
	mustMatch("Attention", q.Rows() == s.B*s.T && q.Cols() == s.H*s.D, "q is %v, want (%d, %d)", q.shape, s.B*s.T, s.H*s.D)
	mustMatch("Attention", k.Rows() == s.B*s.T && k.Cols() == s.KV*s.D && SameShape(k, v), "k %v, v %v, want (%d, %d)", k.shape, v.shape, s.B*s.T, s.KV*s.D)
	out := New(Activation, q.shape...)
	lse := New(Activation, s.B, s.H, s.T)
	backend.Attention(out, lse, q, k, v, s)
	if tp.recording(q, k, v) {
		tp.record(out, []*Tensor{q, k, v, out, lse}, func(dout *Tensor) {
			dq, dk, dv := New(Scratch, q.shape...), New(Scratch, k.shape...), New(Scratch, v.shape...)
			backend.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, s)
			for _, p := range [][2]*Tensor{{q, dq}, {k, dk}, {v, dv}} {
				if p[0].requiresGrad {
					backend.AddScaled(gradOf(p[0]), 1, p[1])
				}
				p[1].Release()
			}
		})
	}
	lse.Release()
	return out
}

// SwiGLU returns silu(gate) · up, elementwise: the LLaMA MLP's gate.
// silu(g) = g·σ(g). It saves gate and up.
func (tp *Tape) SwiGLU(gate, up *Tensor) *Tensor {
	mustMatch("SwiGLU", SameShape(gate, up), "shapes %v and %v differ", gate.shape, up.shape)
	y := New(Activation, gate.shape...)
	backend.SwiGLU(y, gate, up)
	if tp.recording(gate, up) {
		tp.record(y, []*Tensor{gate, up}, func(dy *Tensor) {
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
		})
	}
	return y
}

// CrossEntropy returns the mean softmax cross-entropy of logits (N, V)
// against targets (N), ignoring rows whose target is negative (HF's -100),
// as a one-element tensor, with the number of counted rows. With no counted
// row the loss is 0.
//
//	L = (1/n) Σ_counted (logsumexp(z) − z[target]);  dz = (softmax(z) − onehot)/n
func (tp *Tape) CrossEntropy(logits *Tensor, targets []int32) (*Tensor, int) {
	v := logits.Cols()
	mustMatch("CrossEntropy", len(targets) == logits.Rows(), "%d targets for %d rows", len(targets), logits.Rows())
	for i, t := range targets {
		mustMatch("CrossEntropy", int(t) < v, "target %d at %d outside vocabulary of %d", t, i, v)
	}
	lse := New(Activation, logits.Rows())
	sum, n := backend.CrossEntropy(lse, logits, targets)
	loss := New(Activation)
	if n > 0 {
		loss.st.data[0] = float32(sum / float64(n))
	}
	if tp.recording(logits) && n > 0 {
		tp.record(loss, []*Tensor{logits, lse}, func(dl *Tensor) {
			backend.CrossEntropyBackward(gradOf(logits), logits, lse, targets, dl.st.data[0]/float32(n))
		})
	}
	lse.Release()
	return loss, n
}
