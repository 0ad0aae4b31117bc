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
// Release leaks accounted memory, never correctness; releasing twice panics.
package tensor

import (
	"fmt"
	"math"
)

// storage is the memory behind a tensor, shared by reshaped views.
type storage struct {
	data  []float32
	refs  int
	saves int // references held by tape nodes
	cat   Category
}

// Tensor is a dense float32 array with a shape, plus what autograd needs.
type Tensor struct {
	shape []int
	st    *storage

	// RequiresGrad marks a tensor whose gradient backward must compute.
	// Parameters set it; op outputs inherit it from their inputs.
	requiresGrad bool
	// Grad holds dL/dt after Tape.Backward, for tensors that require it.
	Grad *Tensor
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// New returns a zero-filled tensor of the given shape, accounted under c.
func New(c Category, shape ...int) *Tensor {
	n := numel(shape)
	account(c, int64(n)*4)
	return &Tensor{shape: append([]int(nil), shape...), st: &storage{data: make([]float32, n), refs: 1, cat: c}}
}

// FromSlice returns a tensor that takes ownership of data (no copy).
func FromSlice(c Category, data []float32, shape ...int) *Tensor {
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("tensor: %d values do not fill shape %v", len(data), shape))
	}
	account(c, int64(len(data))*4)
	return &Tensor{shape: append([]int(nil), shape...), st: &storage{data: data, refs: 1, cat: c}}
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
func (t *Tensor) Len() int { return len(t.st.data) }

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
// storage itself; writes are visible to every view.
func (t *Tensor) Data() []float32 { return t.st.data }

// Category reports what the tensor's memory is accounted as.
func (t *Tensor) Category() Category { return t.st.cat }

// RequiresGrad reports whether backward computes a gradient for t.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// SetRequiresGrad marks t as a leaf whose gradient backward accumulates in
// t.Grad. It returns t for chaining.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor { t.requiresGrad = on; return t }

// Retain adds a reference; each Retain needs its own Release.
func (t *Tensor) Retain() *Tensor {
	if t.st.refs <= 0 {
		panic("tensor: Retain of released tensor")
	}
	t.st.refs++
	return t
}

// Release drops one reference; the last one frees the storage.
func (t *Tensor) Release() {
	if t == nil {
		return
	}
	st := t.st
	if st.refs <= 0 {
		panic("tensor: Release of released tensor")
	}
	st.refs--
	if st.refs == 0 {
		account(st.cat, -int64(len(st.data))*4)
		st.data = nil
	}
}

// SetCategory moves the tensor's bytes to category c (a loaded weight
// becomes Trainable when fine-tuning is switched on for it).
func (t *Tensor) SetCategory(c Category) { t.recategorize(c) }

// recategorize moves the tensor's bytes to category c.
func (t *Tensor) recategorize(c Category) {
	if t.st.cat == c {
		return
	}
	n := int64(len(t.st.data)) * 4
	account(t.st.cat, -n)
	account(c, n)
	t.st.cat = c
}

// Reshape returns a view with a new shape over the same storage, holding
// its own reference. Autograd does not track views: reshape leaves and
// constants, not op outputs you will differentiate through.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	if numel(shape) != t.Len() {
		panic(fmt.Sprintf("tensor: cannot reshape %v to %v", t.shape, shape))
	}
	t.Retain()
	return &Tensor{shape: append([]int(nil), shape...), st: t.st, requiresGrad: t.requiresGrad}
}

// Clone returns a copy of t (values and shape) accounted under c.
func (t *Tensor) Clone(c Category) *Tensor {
	u := New(c, t.shape...)
	copy(u.st.data, t.st.data)
	return u
}

// Item returns the single value of a one-element tensor.
func (t *Tensor) Item() float32 {
	if t.Len() != 1 {
		panic(fmt.Sprintf("tensor: Item of shape %v", t.shape))
	}
	return t.st.data[0]
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
	for _, v := range t.st.data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return true
		}
	}
	return false
}

func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v(%s)", t.shape, t.st.cat) }
