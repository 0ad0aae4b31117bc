// Package tensor holds dense float32 tensors, the kernels a training step
// needs (behind the Backend interface), a define-by-run autograd tape and
// the accounting allocator that says where every byte went.
//
// Tensors are row-major. A tensor of shape (B, T, C) is also a matrix of
// shape (B·T, C): kernels treat all leading dimensions as rows.
//
// Storage is reference counted so that memory can be accounted exactly:
// a tensor is born with one reference, owned by whoever created it;
// an autograd node that saves it for backward takes another; Release drops
// one, and the last Release returns the bytes to the allocator. Forgetting a
// Release leaks the memory (the garbage collector does not see pooled
// storage), never correctness; releasing twice panics.
//
// The memory comes from a pool outside the Go heap (storage.go) and goes
// back to it on the last Release, where the next tensor of its size reuses
// it: a slice from Data must not be used after the tensor's Release. Tensor
// values themselves (the headers) are recycled too, once released and no
// longer referred to by a tape, so that a warm training step allocates
// nothing on the Go heap; a *Tensor must not be used after its Release
// either.
package tensor

import (
	"fmt"
	"math"
)

// storage is the memory behind a tensor, shared by reshaped views.
type storage struct {
	data  []float32 // the values (len = cap = number of elements); nil when 16-bit
	half  []uint16  // the values of a bf16 or f16 tensor, inside buf
	dtype DType
	buf   buffer // the pooled buffer data starts; nil buf for FromSlice
	refs  int
	saves int // references held by tape nodes
	cat   Category
}

// released is what a tensor points to once its own references are gone:
// no values, no references.
var released = &storage{}

// maxInlineDims is how many dimensions a Tensor stores without a separate
// allocation.
const maxInlineDims = 4

// Tensor is a dense float32 array with a shape, plus what autograd needs.
type Tensor struct {
	shape []int
	st    *storage

	// RequiresGrad marks a tensor whose gradient backward must compute.
	// Parameters set it; op outputs inherit it from their inputs.
	requiresGrad bool
	// Grad holds dL/dt after Tape.Backward, for tensors that require it.
	Grad *Tensor

	refs int32 // references taken through this tensor: creation, Retain, saves
	pins int32 // tape nodes that refer to it (as output or input)
	dims [maxInlineDims]int
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			// A copy, so that shape does not escape (callers pass
			// arrays on their stack).
			panic(fmt.Sprintf("tensor: negative dimension in shape %v", append([]int(nil), shape...)))
		}
		n *= d
	}
	return n
}

// headerQueue is the FIFO of free tensor headers: the one reused is the one
// released longest ago, so a stale pointer to a released tensor is unlikely
// to alias a live one soon (PACA_TENSOR_CHECK=1 never reuses them).
type headerQueue struct {
	ring       []*Tensor
	head, size int
}

func (q *headerQueue) push(t *Tensor) {
	if q.size == len(q.ring) {
		ring := make([]*Tensor, max(2*len(q.ring), 256))
		for i := 0; i < q.size; i++ {
			ring[i] = q.ring[(q.head+i)%len(q.ring)]
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.size)%len(q.ring)] = t
	q.size++
}

func (q *headerQueue) pop() *Tensor {
	if q.size == 0 {
		return nil
	}
	t := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.size--
	return t
}

// newHeaderLocked returns a tensor header with the given shape, one
// reference and storage st.
func newHeaderLocked(shape []int, st *storage) *Tensor {
	t := mem.headers.pop()
	if t == nil {
		t = new(Tensor)
	}
	if len(shape) <= maxInlineDims {
		t.shape = t.dims[:len(shape):len(shape)]
	} else {
		t.shape = make([]int, len(shape))
	}
	copy(t.shape, shape)
	t.st, t.refs = st, 1
	return t
}

// reuseHeaders is false in check mode, and in tests that inspect released
// tensors.
var reuseHeaders = !checkMode

// freeHeaderLocked recycles a tensor that holds no reference and is on no
// tape. One that still has a gradient is left to the garbage collector:
// its owner may read the gradient of a tensor it has released (a leaf
// whose backward has run) and must release it.
//
// In check mode the header is cleared instead (no shape, no gradient), as
// recycling would, so that code reading a released tensor fails there.
func freeHeaderLocked(t *Tensor) {
	if t.Grad != nil {
		return
	}
	if checkMode || reuseHeaders {
		*t = Tensor{st: released}
	}
	if reuseHeaders {
		mem.headers.push(t)
	}
}

func newStorageLocked(c Category) *storage {
	var st *storage
	if k := len(mem.storages); k > 0 {
		st = mem.storages[k-1]
		mem.storages[k-1] = nil
		mem.storages = mem.storages[:k-1]
	} else {
		st = new(storage)
	}
	st.refs, st.cat = 1, c
	return st
}

// freeStorageLocked returns the storage's bytes to the accounts and its
// buffer to the pool.
func freeStorageLocked(st *storage) {
	accountLocked(st.cat, -st.bytes())
	if st.buf.buf != nil {
		mem.pool.put(st.buf)
	}
	*st = storage{}
	mem.storages = append(mem.storages, st)
}

// len is the number of values, bytes their logical size.
func (st *storage) len() int {
	if st.dtype != Float32 {
		return len(st.half)
	}
	return len(st.data)
}

func (st *storage) bytes() int64 { return int64(st.len()) * int64(st.dtype.Size()) }

// emptyData is the values of a tensor with no elements.
var emptyData = []float32{}

// New returns a zero-filled tensor of the given shape, accounted under c.
func New(c Category, shape ...int) *Tensor {
	n := numel(shape)
	t, words := newPooled(c, shape, n, int64(n)*4)
	if n == 0 {
		t.st.data = emptyData
		return t
	}
	t.st.data = words[:n:n]
	return t
}

// newPooled returns a tensor of the given shape whose storage holds words
// zeroed pooled float32s (none when words is 0), accounted as bytes under
// c. The caller sets the storage's values from the words it returns.
func newPooled(c Category, shape []int, words int, bytes int64) (*Tensor, []float32) {
	mem.Lock()
	st := newStorageLocked(c)
	if words > 0 {
		st.buf = mem.pool.get(words)
	}
	accountLocked(c, bytes)
	t := newHeaderLocked(shape, st)
	mem.Unlock()
	if words == 0 {
		return t, nil
	}
	zeroData(st.buf.buf[:min(words, st.buf.dirty)])
	st.buf.dirty = max(st.buf.dirty, words)
	return t, st.buf.buf[:words]
}

// newRows returns New(c, like with its last dimension set to cols).
func newRows(c Category, like []int, cols int) *Tensor {
	var buf [maxInlineDims]int
	shape := buf[:0]
	if len(like) > maxInlineDims {
		shape = make([]int, 0, len(like))
	}
	shape = append(shape, like...)
	shape[len(shape)-1] = cols
	return New(c, shape...)
}

// FromSlice returns a tensor that takes ownership of data (no copy). Its
// memory stays where it is (the Go heap, usually): prefer New and copying
// into Data for large tensors that live long.
func FromSlice(c Category, data []float32, shape ...int) *Tensor {
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("tensor: %d values do not fill shape %v", len(data), append([]int(nil), shape...)))
	}
	mem.Lock()
	st := newStorageLocked(c)
	st.data = data
	accountLocked(c, int64(len(data))*4)
	t := newHeaderLocked(shape, st)
	mem.Unlock()
	return t
}

// Shape returns the dimensions. The caller must not modify the slice.
func (t *Tensor) Shape() []int { return t.shape }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Len is the number of elements.
func (t *Tensor) Len() int { return t.st.len() }

// Cols is the size of the last dimension; Rows the product of the others.
func (t *Tensor) Cols() int {
	if len(t.shape) == 0 {
		return 1
	}
	return t.shape[len(t.shape)-1]
}

// Rows is the product of all dimensions but the last.
func (t *Tensor) Rows() int { return t.Len() / max(t.Cols(), 1) }

// Data returns the values in row-major order. On the CPU backend this is the
// storage itself; writes are visible to every view. A bf16 or f16 tensor
// has no float32 values: use Halves, or AsFloat32 for a float32 copy. On a
// GPU it is the same memory, reachable from the host: Data first waits for
// the device's queued work, so call it again after running kernels on t
// (storage_device.go).
func (t *Tensor) Data() []float32 {
	if t.st.dtype != Float32 {
		panic(fmt.Sprintf("tensor: Data of a %s tensor %v (use AsFloat32)", t.st.dtype, t.shape))
	}
	syncHost()
	return t.st.data
}

// Category reports what the tensor's memory is accounted as.
func (t *Tensor) Category() Category { return t.st.cat }

// RequiresGrad reports whether backward computes a gradient for t.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// SetRequiresGrad marks t as a leaf whose gradient backward accumulates in
// t.Grad. It returns t for chaining.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor { t.requiresGrad = on; return t }

// Retain adds a reference; each Retain needs its own Release, on the same
// tensor.
func (t *Tensor) Retain() *Tensor {
	if t.refs <= 0 {
		panic("tensor: Retain of released tensor")
	}
	t.refs++
	t.st.refs++
	return t
}

// Release drops one reference; the last one frees the storage.
func (t *Tensor) Release() {
	if t == nil {
		return
	}
	if t.refs <= 0 {
		panic("tensor: Release of released tensor")
	}
	st := t.st
	t.refs--
	st.refs--
	if t.refs > 0 && st.refs > 0 {
		return
	}
	mem.Lock()
	if st.refs == 0 {
		freeStorageLocked(st)
	}
	if t.refs == 0 {
		t.st = released
		if t.pins == 0 {
			freeHeaderLocked(t)
		}
	}
	mem.Unlock()
}

// pin notes that a tape node refers to t; unpin that it no longer does.
// A released tensor is recycled only once no node refers to it, because
// backward still reads the headers (Grad, RequiresGrad, shape) of op
// outputs and inputs whose values it does not need.
func (t *Tensor) pin() { t.pins++ }

func (t *Tensor) unpin() {
	t.pins--
	if t.pins == 0 && t.refs == 0 {
		mem.Lock()
		freeHeaderLocked(t)
		mem.Unlock()
	}
}

// SetCategory moves the tensor's bytes to category c (a loaded weight
// becomes Trainable when fine-tuning is switched on for it).
func (t *Tensor) SetCategory(c Category) { t.recategorize(c) }

// recategorize moves the tensor's bytes to category c.
func (t *Tensor) recategorize(c Category) {
	if t.st.cat == c || t.st == released {
		return
	}
	n := t.st.bytes()
	mem.Lock()
	accountLocked(t.st.cat, -n)
	accountLocked(c, n)
	mem.Unlock()
	t.st.cat = c
}

// Reshape returns a view with a new shape over the same storage, holding
// its own reference. Autograd does not track views: reshape leaves and
// constants, not op outputs you will differentiate through.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	if numel(shape) != t.Len() {
		panic(fmt.Sprintf("tensor: cannot reshape %v to %v", t.shape, append([]int(nil), shape...)))
	}
	if t.refs <= 0 {
		panic("tensor: Reshape of released tensor")
	}
	t.st.refs++
	mem.Lock()
	v := newHeaderLocked(shape, t.st)
	mem.Unlock()
	v.requiresGrad = t.requiresGrad
	return v
}

// Clone returns a copy of t (values, shape and dtype) accounted under c.
func (t *Tensor) Clone(c Category) *Tensor { return t.Convert(c, t.st.dtype) }

// Item returns the single value of a one-element tensor.
func (t *Tensor) Item() float32 {
	if t.Len() != 1 {
		panic(fmt.Sprintf("tensor: Item of shape %v", t.shape))
	}
	return t.Data()[0]
}

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b *Tensor) bool {
	if len(a.shape) != len(b.shape) {
		return false
	}
	for i := range a.shape {
		if a.shape[i] != b.shape[i] {
			return false
		}
	}
	return true
}

// HasNaN reports whether any value is NaN or ±Inf.
func (t *Tensor) HasNaN() bool {
	syncHost()
	for _, h := range t.st.half {
		if !halfIsFinite(h, t.st.dtype) {
			return true
		}
	}
	for _, v := range t.st.data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return true
		}
	}
	return false
}

func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v(%s)", t.shape, t.st.cat) }
