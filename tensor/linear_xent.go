package tensor

// LinearCrossEntropy is CrossEntropy(h·Wᵀ, targets) — a language model's
// LM head and loss — computed LCERows rows at a time, so that the (N, V)
// logits never exist: over a 49k-token vocabulary they would be the
// largest tensor of a training step (100 MB at N = 512), and so would
// their gradient.
//
// h is (N, C), w is (V, C) and may be 16-bit; the result is the mean over
// counted rows of logsumexp(z) − z[target] with z = h·Wᵀ, as a one-element
// tensor, with the count. Rows with a negative target are not counted;
// with none counted the loss is 0.
//
// When the tape records, the gradients are formed in the same pass, row
// block by row block, because the loss is the last op before backward:
//
//	dz = (softmax(z) − onehot)/n    (R, V), one block at a time
//	dh = dz·W                       (N, C), kept for backward
//	dW = dzᵀ·h                      (V, C), kept only when W is trained
//
// and backward scales them by dL/dloss. The same GEMMs run as with
// Linear and CrossEntropy, in a different order; what is kept for backward
// is dh (N·C values) instead of the logits (N·V).
func (tp *Tape) LinearCrossEntropy(h, w *Tensor, targets []int32) (*Tensor, int) {
	n, c, v := h.Rows(), h.Cols(), w.Dim(0)
	if w.Cols() != c || len(w.shape) != 2 {
		mismatch("LinearCrossEntropy", "h %v and W %v", h.shape, w.shape)
	}
	if len(targets) != n {
		mismatch("LinearCrossEntropy", "%d targets for %d rows", len(targets), n)
	}
	count := 0
	for i, t := range targets {
		if int(t) >= v {
			mismatch("LinearCrossEntropy", "target %d at %d outside vocabulary of %d", t, i, v)
		}
		if t >= 0 {
			count++
		}
	}
	rec := tp.recording(h, w) && count > 0
	var dh, dw *Tensor
	if rec && h.requiresGrad {
		dh = New(Activation, n, c)
	}
	if rec && w.requiresGrad {
		dw = New(Activation, v, c)
	}

	rows := tp.Int32s(n) // 0…n−1, to copy row blocks in and out
	for i := range rows {
		rows[i] = int32(i)
	}
	var sum float64
	for r0 := 0; r0 < n; r0 += LCERows {
		r1 := min(r0+LCERows, n)
		ids, tg := rows[r0:r1], targets[r0:r1]
		hb := New(Scratch, r1-r0, c) // (R, C)
		backend.GatherRows(hb, h, ids)
		z := New(Scratch, r1-r0, v) // (R, V) logits of the block
		backend.Gemm(false, true, 1, hb, w, 0, z)
		lse := New(Scratch, r1-r0)
		s, _ := backend.CrossEntropy(lse, z, tg)
		sum += s
		if rec {
			dz := New(Scratch, r1-r0, v)
			backend.CrossEntropyBackward(dz, z, lse, tg, 1/float32(count))
			if dh != nil {
				dhb := New(Scratch, r1-r0, c)
				backend.Gemm(false, false, 1, dz, w, 0, dhb)
				backend.ScatterAddRows(dh, dhb, ids)
				dhb.Release()
			}
			if dw != nil {
				backend.Gemm(true, false, 1, dz, hb, 1, dw)
			}
			dz.Release()
		}
		lse.Release()
		z.Release()
		hb.Release()
	}

	loss := New(Activation)
	if count > 0 {
		loss.Data()[0] = float32(sum / float64(count))
	}
	if rec {
		n := tp.record(loss, linearCrossEntropyBackward, h, w)
		n.save(dh, dw) // skips a nil one: ints says which are there
		n.ints = [2]int{b2i(dh != nil), b2i(dw != nil)}
	}
	dh.Release()
	dw.Release()
	return loss, count
}

// LCERows is how many rows of logits LinearCrossEntropy holds at once.
var LCERows = 128

func linearCrossEntropyBackward(_ *Tape, n *node, dl *Tensor) {
	s, k := dl.Data()[0], 0
	for i, kept := range n.ints {
		if kept == 1 {
			backend.AddScaled(gradOf(n.in[i]), s, n.saved[k])
			k++
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
