package tensor

import (
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func skipInCheckMode(t *testing.T) {
	if checkMode {
		t.Skip("PACA_TENSOR_CHECK=1 never reuses memory")
	}
}

func TestClassSize(t *testing.T) {
	prev := 0
	for n := 1; n < 64<<20; n += 1 + n/7 {
		c := classSize(n)
		require.GreaterOrEqual(t, c, n)
		require.GreaterOrEqual(t, c, prev, "classes grow with the request")
		prev = c
		if n <= smallLimit {
			require.Zero(t, c%lineBytes, "small classes are whole cache lines")
			require.LessOrEqual(t, c, max(lineBytes, n+n/smallSteps+lineBytes), "n = %d", n)
		} else {
			require.Zero(t, c%pageSize, "large classes are whole pages")
			require.LessOrEqual(t, c, n+max(n/largeSteps, pageSize), "n = %d", n)
		}
	}
}

// A released buffer is reused by the next tensor of its class, zeroed, and
// the statistics follow it from in use to cached and back.
func TestStorageReusedZeroed(t *testing.T) {
	skipInCheckMode(t)
	for _, n := range []int{100, 5000, 100000, 3 << 20} {
		x := New(Scratch, n)
		for i := range x.Data() {
			x.Data()[i] = 1
		}
		p := unsafe.SliceData(x.Data())
		size := int64(classSize(4 * n))
		before := MemStats()
		x.Release()
		mid := MemStats()
		assert.Equal(t, size, mid.Cached-before.Cached, "n = %d: the buffer is cached", n)
		assert.Equal(t, before.Reserved, mid.Reserved)
		assert.Equal(t, -int64(4*n), mid.Live[Scratch]-before.Live[Scratch], "accounting counts the logical size")

		m := n - n/64 // same class, fewer values
		y := New(Scratch, m)
		assert.Same(t, p, unsafe.SliceData(y.Data()), "n = %d: the buffer is reused", n)
		assert.Len(t, y.Data(), m)
		assert.Equal(t, m, cap(y.Data()), "no access to the class's slack")
		for i, v := range y.Data() {
			if v != 0 {
				t.Fatalf("n = %d: value %d of a reused buffer is %v", n, i, v)
			}
		}
		assert.Equal(t, mid.Reserved, MemStats().Reserved, "reuse maps nothing")
		y.Release()
	}
}

// trim keeps the resident large buffers within the high-water mark of those
// in use: a class that must grow takes the pages of other classes' free
// buffers, oldest first, and a dropped buffer comes back zeroed.
func TestStoragePoolTrims(t *testing.T) {
	skipInCheckMode(t)
	if !offHeap || OnDevice() {
		t.Skip("storage on the Go heap or a GPU is not trimmed")
	}
	const mib = 1 << 20
	var p bufPool
	a1, a2 := p.get(mib/4), p.get(mib/4) // two 1 MiB buffers
	assert.Equal(t, int64(2*mib), p.largeHigh)
	a1.buf[0], a2.buf[0] = 1, 2
	a1.dirty, a2.dirty = 1, 1
	p.put(a1)
	p.put(a2)
	assert.Equal(t, int64(2*mib), p.largeCached)

	b := p.get(mib / 2) // 2 MiB: resident would be 4 MiB > 2 MiB + 1/16
	assert.Equal(t, int64(2*mib), p.largeInUse)
	assert.Zero(t, p.largeCached, "both 1 MiB buffers dropped")
	cl := p.classes[mib]
	canDrop := runtime.GOOS == "linux"
	if canDrop {
		assert.Equal(t, 2, cl.dropped)
		assert.Equal(t, int64(4*mib), p.reserved, "dropping keeps the mapping")
		assert.Zero(t, cl.free[0].dirty)
		assert.Zero(t, cl.free[0].buf[0], "dropped pages read as zero")
	} else {
		assert.Empty(t, cl.free, "unmapped instead")
		assert.Equal(t, int64(2*mib), p.reserved)
	}
	p.put(b)

	a := p.get(mib / 4) // makes room again: b's pages go
	assert.Zero(t, p.largeCached)
	if canDrop {
		assert.Equal(t, 1, cl.dropped)
		assert.Equal(t, 1, p.classes[2*mib].dropped)
	}
	p.put(a)
	freed := p.releaseCached()
	assert.Zero(t, p.reserved)
	assert.Zero(t, p.cached)
	if canDrop {
		assert.Equal(t, int64(4*mib), freed)
	} else {
		assert.Equal(t, int64(mib), freed)
	}
}

// A tensor released during the forward pass keeps its header while a tape
// node refers to it: backward reads its gradient. The header is recycled
// once the node is done, never before.
func TestReleasedTensorPinnedByTape(t *testing.T) {
	skipInCheckMode(t)
	w := New(Trainable, 8).SetRequiresGrad(true)
	defer w.Release()
	for i := range w.Data() {
		w.Data()[i] = float32(i)
	}
	tp := NewTape()
	y := tp.Scale(w, 2)
	z := tp.Scale(y, 3)
	y.Release() // forward is done with y; its node is not
	var churn []*Tensor
	for range 2000 {
		u := New(Scratch, 3)
		require.NotSame(t, y, u, "a pinned header was recycled")
		churn = append(churn, u)
	}
	for _, u := range churn {
		u.Release()
	}
	ones := onesLike(z)
	tp.BackwardFrom(z, ones)
	ones.Release()
	for _, g := range w.Grad.Data() {
		assert.Equal(t, float32(6), g)
	}
	z.Release()
	w.Grad.Release()
	w.Grad = nil
}

func onesLike(x *Tensor) *Tensor {
	o := New(Scratch, x.shape...)
	for i := range o.Data() {
		o.Data()[i] = 1
	}
	return o
}

// countRanger counts how often each index is visited, and nests a second
// Parallel inside every chunk.
type countRanger struct {
	hits  []atomic.Int32
	inner *countRanger
}

func (r *countRanger) Range(lo, hi int) {
	for i := lo; i < hi; i++ {
		r.hits[i].Add(1)
	}
	if r.inner != nil {
		Parallel(len(r.inner.hits), 1, r.inner)
	}
}

func TestParallelCoversRangeOnceAndNests(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	inner := &countRanger{hits: make([]atomic.Int32, 37)}
	outer := &countRanger{hits: make([]atomic.Int32, 1000), inner: inner}
	Parallel(len(outer.hits), 10, outer)
	chunks := 0
	for i := range outer.hits {
		require.Equal(t, int32(1), outer.hits[i].Load(), "index %d", i)
	}
	for i := range inner.hits {
		if i == 0 {
			chunks = int(inner.hits[0].Load())
		}
		require.Equal(t, int32(chunks), inner.hits[i].Load(), "index %d", i)
	}
	assert.Equal(t, 4, chunks, "one inner pass per outer chunk")
	Parallel(0, 1, outer) // nothing to do
}

// Int32s hands out zeroed slices from the tape's arena; a repeated round
// allocates nothing.
func TestTapeInt32s(t *testing.T) {
	tp := NewTape()
	round := func() {
		a, b := tp.Int32s(3000), tp.Int32s(500)
		for i := range a {
			a[i] = 7
		}
		for i := range b {
			b[i] = 9
		}
		tp.Reset()
	}
	round()
	a := tp.Int32s(10)
	assert.Equal(t, make([]int32, 10), a, "zeroed")
	tp.Reset()
	assert.Zero(t, testing.AllocsPerRun(10, round))
	assert.Len(t, (*Tape)(nil).Int32s(4), 4)
}

// scaleOp is a custom op recorded with RecordOp: y = s·x.
type scaleOp struct{ s float32 }

func (op *scaleOp) Backward(dy *Tensor, in, saved []*Tensor) {
	if in[0].RequiresGrad() {
		CurrentBackend().AddScaled(GradOf(in[0]), op.s, dy)
	}
	_ = saved[0].Data()[0] // saved values are readable
}

func TestRecordOp(t *testing.T) {
	x := New(Trainable, 4).SetRequiresGrad(true)
	defer x.Release()
	op := &scaleOp{s: 3}
	tp := NewTape()
	y := New(Activation, 4)
	CurrentBackend().AddScaled(y, op.s, x)
	require.True(t, tp.Recording(x))
	tp.RecordOp(y, op, []*Tensor{x}, x)
	assert.Equal(t, Trainable, x.Category(), "only activations become Saved")
	ones := onesLike(y)
	tp.BackwardFrom(y, ones)
	ones.Release()
	assert.Equal(t, []float32{3, 3, 3, 3}, x.Grad.Data())
	x.Grad.Release()
	x.Grad = nil
	y.Release()
	o := New(Activation, 1)
	defer o.Release()
	assert.Panics(t, func() { NewTape().RecordOp(o, op, nil, x, x, x, x, x, x) })
}

// With PACA_TENSOR_CHECK=1 a slice used after its tensor's Release faults
// instead of reading or writing a later tensor's memory.
func TestCheckModeFaultsOnUseAfterRelease(t *testing.T) {
	if os.Getenv("PACA_USE_AFTER_RELEASE") == "1" {
		x := New(Scratch, 1<<16)
		d := x.Data()
		x.Release()
		d[0] = 1
		os.Exit(0) // not reached with mmap'd storage
	}
	if !offHeap || OnDevice() {
		t.Skip("storage is on the Go heap or a GPU: released buffers are poisoned, not protected")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckModeFaultsOnUseAfterRelease$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PACA_USE_AFTER_RELEASE=1", "PACA_TENSOR_CHECK=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the child wrote to released storage without faulting")
	assert.Contains(t, string(out), "unexpected fault address")
}
