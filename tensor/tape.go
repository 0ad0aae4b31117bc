package tensor

import "fmt"

// Tape records the ops of one forward pass so that Backward can run them in
// reverse (define-by-run autograd, as PyTorch). A nil *Tape records nothing:
// pass nil for inference and evaluation.
//
// Each node keeps exactly the tensors its backward needs (PyTorch's
// ctx.save_for_backward) and releases them as soon as that backward has run,
// so saved-activation memory falls as backward proceeds.
//
// A tape is reusable: after Backward or Reset it is empty and keeps its
// node array, so a training loop that records on the same tape every step
// allocates nothing for it once warm.
type Tape struct {
	nodes []node
	ints  int32Arena
	sub   *Tape // where Checkpoint's backward re-runs its segments
}

// Limits of one node: the inputs an op pins and the tensors it saves in
// place (Record saves any number).
const (
	maxIn    = 4
	maxSaved = 5
)

// node is one recorded op. Its backward is a plain function (no closure,
// so recording allocates nothing) that finds in the node what it needs:
// the op's inputs in in, the tensors it saved in saved, its parameters in
// the fields below.
type node struct {
	out      *Tensor
	in       [maxIn]*Tensor // the op's inputs, by position; nil when absent
	saved    [maxSaved]*Tensor
	more     []*Tensor // saved beyond maxSaved (Record)
	nin      int8
	nsaved   int8
	backward func(tp *Tape, n *node, dout *Tensor)

	// Op parameters; each op uses the few it needs.
	scale float32
	ints  [2]int
	attn  AttnShape
	ids   []int32
	seed  uint64
	p     float64
	fn    func(dout *Tensor)                // Record
	op    Op                                // RecordOp
	seg   func(tp *Tape, x *Tensor) *Tensor // Checkpoint
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

// record appends a node for out = op(in…) whose backward receives
// dL/d(out), and returns it so that the op can save tensors and set its
// parameters. The node pins out and the inputs: their headers stay valid
// (not recycled) until the node is done, even if the forward code releases
// them, because backward reads their Grad and RequiresGrad.
func (tp *Tape) record(out *Tensor, backward func(tp *Tape, n *node, dout *Tensor), in ...*Tensor) *node {
	if len(in) > maxIn {
		panic(fmt.Sprintf("tensor: an op records at most %d inputs, got %d", maxIn, len(in)))
	}
	out.requiresGrad = true
	tp.nodes = append(tp.nodes, node{out: out, backward: backward, nin: int8(len(in))})
	n := &tp.nodes[len(tp.nodes)-1]
	out.pin()
	for i, x := range in {
		if x != nil {
			x.pin()
			n.in[i] = x
		}
	}
	return n
}

// save takes a reference on each non-nil t for the node's backward.
func (n *node) save(ts ...*Tensor) {
	for _, t := range ts {
		if t == nil {
			continue
		}
		save(t)
		if int(n.nsaved) < len(n.saved) {
			n.saved[n.nsaved] = t
			n.nsaved++
		} else {
			n.more = append(n.more, t)
		}
	}
}

// done releases what the node saved and unpins its tensors.
func (n *node) done() {
	for _, t := range n.saved[:n.nsaved] {
		unsave(t)
	}
	for _, t := range n.more {
		unsave(t)
	}
	for _, x := range n.in {
		if x != nil {
			x.unpin()
		}
	}
	n.out.unpin()
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
	g.Data()[0] += dLoss
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
			n.backward(tp, n, n.out.Grad)
			n.out.Grad.Release() // an op output's gradient is not kept
			n.out.Grad = nil
		}
		n.done()
		tp.nodes[i] = node{}
	}
	tp.nodes = tp.nodes[:0]
	tp.ints.reset()
}

// Reset drops every recorded node without running backward, releasing what
// the nodes saved.
func (tp *Tape) Reset() {
	if tp == nil {
		return
	}
	for i := range tp.nodes {
		n := &tp.nodes[i]
		if g := n.out.Grad; g != nil {
			g.Release()
			n.out.Grad = nil
		}
		n.done()
		tp.nodes[i] = node{}
	}
	tp.nodes = tp.nodes[:0]
	tp.ints.reset()
}

// Len is the number of recorded nodes.
func (tp *Tape) Len() int {
	if tp == nil {
		return 0
	}
	return len(tp.nodes)
}

// Int32s returns n zeroed int32 values that stay valid until the tape's
// backward has run or it is Reset: index buffers an op keeps for backward,
// such as the shifted targets of a loss, without allocating on every step.
// A nil tape returns a new slice.
func (tp *Tape) Int32s(n int) []int32 {
	if tp == nil {
		return make([]int32, n)
	}
	return tp.ints.get(n)
}

// int32Arena hands out int32 slices from one buffer until reset. A round
// that outgrows the buffer gets a bigger one, and the next round a buffer
// big enough for everything, so a repeated round allocates nothing.
type int32Arena struct {
	buf        []int32
	used, want int
}

func (a *int32Arena) get(n int) []int32 {
	a.want += n
	if a.used+n > len(a.buf) {
		a.buf, a.used = make([]int32, max(n, 2*len(a.buf), 1024)), 0
	}
	s := a.buf[a.used : a.used+n : a.used+n]
	a.used += n
	clear(s)
	return s
}

func (a *int32Arena) reset() {
	if a.want > len(a.buf) {
		a.buf = make([]int32, a.want)
	}
	a.used, a.want = 0, 0
}

// Recording reports whether an op on inputs must be recorded: there is a
// tape and some input needs a gradient. Ops defined outside this package
// (fine-tuning methods) call it before Record or RecordOp.
func (tp *Tape) Recording(inputs ...*Tensor) bool { return tp.recording(inputs...) }

// Record appends a custom op to the tape: out was computed from tensors
// that need gradients, saved are the tensors backward reads (Record takes a
// reference on each and releases it once backward has run), and backward
// receives dL/d(out) and accumulates into GradOf of its inputs.
//
// backward may use out's header, the saved tensors, and inputs that need a
// gradient (parameters, or op outputs recorded on this tape, which the tape
// keeps valid). Anything else it wants to know about other tensors, such as
// whether an input that needs no gradient does, it must capture when
// recording: that tensor may have been released and reused by then.
// The closure costs an allocation per call; RecordOp does not.
func (tp *Tape) Record(out *Tensor, saved []*Tensor, backward func(dout *Tensor)) {
	n := tp.record(out, recordBackward)
	n.save(saved...)
	n.fn = backward
}

func recordBackward(_ *Tape, n *node, dout *Tensor) { n.fn(dout) }

// Op is the backward half of a custom op recorded with RecordOp.
type Op interface {
	// Backward receives dL/d(out) and accumulates into GradOf of those
	// inputs that need a gradient. in and saved are what RecordOp was
	// given: every input's header is valid, the values only of those
	// saved.
	Backward(dout *Tensor, in, saved []*Tensor)
}

// RecordOp appends a custom op out = f(in…) to the tape, whose backward is
// op.Backward. in are the op's inputs (at most 4; nil entries stay nil) and
// saved the tensors backward reads (at most 5; RecordOp takes a reference
// on each and releases it once backward has run). Unlike Record it
// allocates nothing when op is a pointer to a long-lived value (a layer).
func (tp *Tape) RecordOp(out *Tensor, op Op, in []*Tensor, saved ...*Tensor) {
	if len(saved) > maxSaved {
		panic(fmt.Sprintf("tensor: RecordOp saves at most %d tensors, got %d", maxSaved, len(saved)))
	}
	n := tp.record(out, opBackward, in...)
	n.save(saved...)
	n.op = op
}

func opBackward(_ *Tape, n *node, dout *Tensor) {
	n.op.Backward(dout, n.in[:n.nin], n.saved[:n.nsaved])
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
	n := tp.record(y, checkpointBackward, x)
	n.save(x)
	n.seg = fn
	return y
}

func checkpointBackward(tp *Tape, n *node, dy *Tensor) {
	x := n.in[0]
	if tp.sub == nil {
		tp.sub = NewTape()
	}
	sub := tp.sub
	xc := x.Clone(Activation).SetRequiresGrad(x.requiresGrad) // a leaf standing in for x
	yc := n.seg(sub, xc)
	sub.BackwardFrom(yc, dy)
	yc.Release()
	if x.requiresGrad && xc.Grad != nil {
		backend.AddScaled(gradOf(x), 1, xc.Grad)
	}
	xc.Grad.Release()
	xc.Grad = nil
	xc.Release()
}
