package tensor

// Backend is the seam between the math and the machine: the kernels one
// training step needs. Everything above this package calls ops, ops call the
// current Backend, and a Backend never sees autograd. The pure-Go CPU
// backend is the default; a build with -tags cuda installs a GPU one.
//
// Matrices are tensors viewed as (Rows, Cols): all leading dimensions are
// rows. Kernels that produce gradients accumulate (+=) into their outputs,
// because a tensor used twice receives two contributions.
type Backend interface {
	Name() string

	// Gemm computes c = alpha·op(a)·op(b) + beta·c, where op(x) is x or xᵀ.
	// b may be bf16 or f16 (a frozen weight); a and c are float32.
	Gemm(transA, transB bool, alpha float32, a, b *Tensor, beta float32, c *Tensor)

	// Add sets dst = a + b (same length). AddScaled: dst += alpha·src.
	Add(dst, a, b *Tensor)
	AddScaled(dst *Tensor, alpha float32, src *Tensor)
	// AddRowVector adds v (Cols) to every row of dst; SumRows accumulates
	// the column sums of src into dst (its backward).
	AddRowVector(dst, v *Tensor)
	SumRows(dst, src *Tensor)

	// GatherRows sets dst[i,:] = table[ids[i],:] (embedding lookup; the
	// table may be bf16 or f16);
	// ScatterAddRows is its backward: dst[ids[i],:] += src[i,:].
	GatherRows(dst, table *Tensor, ids []int32)
	ScatterAddRows(dst, src *Tensor, ids []int32)
	// GatherCols sets dst[:,j] = src[:,idx[j]]; ScatterAddCols does
	// dst[:,idx[j]] += alpha·src[:,j]. PaCA lives on these two.
	GatherCols(dst, src *Tensor, idx []int)
	ScatterAddCols(dst *Tensor, alpha float32, src *Tensor, idx []int)

	// RMSNorm: out = x / rms(x) · w per row, rstd[r] = 1/rms(x[r]).
	RMSNorm(out, rstd, x, w *Tensor, eps float32)
	// RMSNormBackward accumulates dx and (when non-nil) dw.
	RMSNormBackward(dx, dw, dout, x, w, rstd *Tensor)

	// RoPE rotates each head of x (Rows = B·T, Cols = heads·D) by the
	// angles of its position (row r is position r mod T) in rotate-half
	// layout: cos, sin are (T, D/2). inverse rotates by −θ (the backward).
	// dst may be x.
	RoPE(dst, x, cos, sin *Tensor, seqLen, headDim int, inverse bool)

	// Attention is causal grouped-query attention. q is (B·T, H·D), k and
	// v are (B·T, KV·D), out is (B·T, H·D), lse (B, H, T) receives each
	// row's log-sum-exp so backward can recompute probabilities instead of
	// storing the T×T matrix.
	Attention(out, lse, q, k, v *Tensor, s AttnShape)
	// AttentionBackward accumulates dq, dk, dv.
	AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse *Tensor, s AttnShape)

	// SwiGLU: out = silu(gate)·up. Backward accumulates dgate, dup.
	SwiGLU(out, gate, up *Tensor)
	SwiGLUBackward(dgate, dup, dout, gate, up *Tensor)

	// CrossEntropy writes each row's log-sum-exp of logits into lse and
	// returns Σ over rows with target ≥ 0 of lse − logit[target], with the
	// count of those rows. Rows with target < 0 are ignored.
	CrossEntropy(lse, logits *Tensor, targets []int32) (sum float64, count int)
	// CrossEntropyBackward accumulates scale·(softmax − onehot) into
	// dlogits for counted rows.
	CrossEntropyBackward(dlogits, logits, lse *Tensor, targets []int32, scale float32)

	// AdamW applies one torch.optim.AdamW update in place to parameter p
	// with gradient g and moments m, v (all the same length), elementwise:
	//
	//	p ← p·(1 − lr·weightDecay)              decoupled weight decay
	//	m ← β1·m + (1 − β1)·g
	//	v ← β2·v + (1 − β2)·g²
	//	p ← p − (lr/bc1) · m / (√v/√bc2 + eps)
	//
	// where bc1 = 1 − β1ᵗ and bc2 = 1 − β2ᵗ are the bias corrections of
	// the t-th step of this parameter (t counted from 1), computed by the
	// caller. g is only read. The elementwise math is float32; the scalars
	// are float64 so that derived constants such as 1 − β2 are formed
	// before rounding (float32(0.999) alone would put 1e-5 of error in it).
	AdamW(p, g, m, v *Tensor, lr, beta1, beta2, eps, weightDecay, bc1, bc2 float64)

	// --- Inference with a KV cache (CPU versions in decode.go) ---

	// RoPEAt is RoPE's forward where row r is at position
	// startPos + r mod seqLen; cos, sin cover those positions. dst may be x.
	RoPEAt(dst, x, cos, sin *Tensor, startPos, seqLen, headDim int)
	// CacheWrite copies x (B·T, KV·D) into rows Start…Start+T−1 of each
	// sequence's Cap-row block of cache (B·Cap, KV·D).
	CacheWrite(cache, x *Tensor, s CacheShape)
	// AttentionCached is causal GQA of the T new queries q (B·T, H·D)
	// against cache rows 0…Start+t of k, v (B·Cap, KV·D) into out
	// (B·T, H·D). No log-sum-exp: there is no backward.
	AttentionCached(out, q, k, v *Tensor, s CacheShape)

	// Clipping, 4-bit weights, adapters (backend_extra.go).
	extraKernels
}

// AttnShape describes a batch of attention: B sequences of T positions,
// H query heads and KV key/value heads of size D (H a multiple of KV).
type AttnShape struct{ B, T, H, KV, D int }

var backend Backend = cpuBackend{}

// SetBackend installs b as the backend every op uses. It is meant to be
// called once at start-up, before any tensor work.
func SetBackend(b Backend) { backend = b }

// CurrentBackend returns the backend ops run on.
func CurrentBackend() Backend { return backend }
