package tensor

import "fmt"

// Tape records the ops of one forward pass so that Backward can run them in
// reverse (define-by-run autograd, as PyTorch). A nil *Tape records nothing:
// pass nil for inference and evaluation.
//
// Each node keeps exactly the tensors its backward needs (PyTorch's
// ctx.save_for_backward) and releases them as soon as that backward has run,
// so saved-activation memory falls as backward proceeds.
type Tape struct {
	nodes []node
}

type node struct {
	out      *Tensor
	saved    []*Tensor
	backward func(dout *Tensor)
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// recording reports whether an op producing a tensor from inputs must be
// recorded: there is a tape and some input needs a gradient.
func (tp *Tape) recording(inputs ...*Tensor) bool {
	if tp == nil {
		return false
	}
	for _, x := range inputs {
		if x != nil && x.requiresGrad {
			return true
		}
	}
	return false
}

// save takes a reference on t for backward. An activation kept this way is
// accounted as Saved from now on: it is alive because backward needs it.
func save(t *Tensor) *Tensor {
	t.Retain()
	t.st.saves++
	if t.st.cat == Activation {
		t.recategorize(Saved)
	}
	return t
}

// unsave drops a node's reference. A tensor that the forward code still
// holds once no node needs it is an ordinary activation again.
func unsave(t *Tensor) {
	t.st.saves--
	if t.st.saves == 0 && t.st.cat == Saved && t.st.refs > 1 {
		t.recategorize(Activation)
	}
	t.Release()
}

// record appends a node whose backward receives dL/d(out). saved are the
// tensors backward reads; record takes a reference on each.
func (tp *Tape) record(out *Tensor, saved []*Tensor, backward func(dout *Tensor)) {
	out.requiresGrad = true
	for _, s := range saved {
		save(s)
	}
	tp.nodes = append(tp.nodes, node{out: out, saved: saved, backward: backward})
}

// gradOf returns t's gradient buffer, allocating a zeroed one on first use.
// Backward kernels accumulate into it.
func gradOf(t *Tensor) *Tensor {
	if t.Grad == nil {
		t.Grad = New(Gradient, t.shape...)
	}
	return t.Grad
}

// Backward computes dL/dx for every leaf x that requires a gradient, where
// L is the one-element tensor loss, scaled by dLoss (usually 1). Gradients
// accumulate into the leaves' Grad fields; the tape is empty afterwards.
func (tp *Tape) Backward(loss *Tensor, dLoss float32) {
	if loss.Len() != 1 {
		panic("tensor: Backward needs a one-element loss")
	}
	if !loss.requiresGrad {
		// Nothing recorded leads to loss (e.g. every target was ignored):
		// there is no gradient to propagate, only saved tensors to free.
		// Seeding loss.Grad here would leak it: no node would release it.
		tp.Reset()
		return
	}
	g := gradOf(loss)
	g.st.data[0] += dLoss
	tp.run()
}

// BackwardFrom is Backward for a tensor output: dout is dL/d(out), of
// out's shape. Activation recomputation uses it to backpropagate through a
// re-run segment.
func (tp *Tape) BackwardFrom(out, dout *Tensor) {
	if !SameShape(out, dout) {
		panic(fmt.Sprintf("tensor: BackwardFrom: gradient %v for output %v", dout.shape, out.shape))
	}
	if !out.requiresGrad {
		tp.Reset()
		return
	}
	backend.AddScaled(gradOf(out), 1, dout)
	tp.run()
}

// run executes the recorded backward functions in reverse order.
func (tp *Tape) run() {
	for i := len(tp.nodes) - 1; i >= 0; i-- {
		n := &tp.nodes[i]
		if n.out.Grad != nil {
			n.backward(n.out.Grad)
			n.out.Grad.Release() // an op output's gradient is not kept
			n.out.Grad = nil
		}
		for _, s := range n.saved {
			unsave(s)
		}
		tp.nodes[i] = node{}
	}
	tp.nodes = tp.nodes[:0]
}

// Reset drops every recorded node without running backward, releasing what
// the nodes saved.
func (tp *Tape) Reset() {
	if tp == nil {
		return
	}
	for i := range tp.nodes {
		for _, s := range tp.nodes[i].saved {
			unsave(s)
		}
		if g := tp.nodes[i].out.Grad; g != nil {
			g.Release()
			tp.nodes[i].out.Grad = nil
		}
		tp.nodes[i] = node{}
	}
	tp.nodes = tp.nodes[:0]
}

// Len is the number of recorded nodes.
func (tp *Tape) Len() int {
	if tp == nil {
		return 0
	}
	return len(tp.nodes)
}

// Recording reports whether an op on inputs must be recorded: there is a
// tape and some input needs a gradient. Ops defined outside this package
// (fine-tuning methods) call it before Record.
func (tp *Tape) Recording(inputs ...*Tensor) bool { return tp.recording(inputs...) }

// Record appends a custom op to the tape: out was computed from tensors
// that need gradients, saved are the tensors backward reads (Record takes a
// reference on each and releases it once backward has run), and backward
// receives dL/d(out) and accumulates into GradOf of its inputs.
func (tp *Tape) Record(out *Tensor, saved []*Tensor, backward func(dout *Tensor)) {
	tp.record(out, saved, backward)
}

// GradOf returns t's gradient buffer, allocating a zeroed one on first
// use. Backward functions accumulate into it.
func GradOf(t *Tensor) *Tensor { return gradOf(t) }

// Checkpoint runs fn(x) — a segment of the network, such as one decoder
// layer — without keeping its activations (activation recomputation, or
// "gradient checkpointing"). Forward runs fn untaped and saves only x;
// backward runs fn again on a tape of its own and backpropagates through
// it. fn must be deterministic (no dropout) and must not release x.
// Parameters inside fn receive their gradients as usual.
func (tp *Tape) Checkpoint(x *Tensor, fn func(tp *Tape, x *Tensor) *Tensor) *Tensor {
	y := fn(nil, x)
	if tp == nil {
		return y
	}
	tp.record(y, []*Tensor{x}, func(dy *Tensor) {
		sub := NewTape()
		xc := x.Clone(Activation).SetRequiresGrad(x.requiresGrad) // a leaf standing in for x
		yc := fn(sub, xc)
		sub.BackwardFrom(yc, dy)
		yc.Release()
		if x.requiresGrad {
			backend.AddScaled(gradOf(x), 1, xc.Grad)
			xc.Grad.Release()
		}
		xc.Release()
	})
	return y
}
