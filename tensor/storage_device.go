package tensor

import (
	"sync/atomic"
	"unsafe"
)

// Device memory for tensor storage.
//
// A GPU backend (built with -tags cuda) installs a deviceMemory before any
// tensor work. From then on the storage pool (storage.go) takes its
// buffers from it instead of the OS: memory that the device's kernels and
// the host address with the same pointer (CUDA managed memory). The pool,
// its size classes, its caching and the accounting by category stay as
// they are; only where the bytes live changes.
//
// Kernels run asynchronously, queued behind each other. The host must not
// read or write tensor memory while queued kernels may still use it, so
// every host access goes through Tensor.Data, which waits for the queue
// first (syncHost). The backend itself reads the storage without waiting.
// Zeroing a reused buffer, and Clone's copy and Convert's widening to
// float32, are queued on the device too (zeroData, convertOnDevice), so
// that a training step keeps its pages on the device and the host waits
// only where it reads a value: a loss to log, a checkpoint to write.
//
// Without a deviceMemory (the default build, or no usable GPU) all of this
// reduces to plain host memory and clear/copy.
type deviceMemory interface {
	// alloc returns bytes (a multiple of the page size) of zeroed memory.
	alloc(bytes int) []float32
	// owns reports whether f lies in memory alloc returned.
	owns(f []float32) bool
	// free returns memory alloc returned, whole.
	free(f []float32)
	// poison fills released memory with NaN for good (PACA_TENSOR_CHECK).
	poison(f []float32)
	// zero queues f = 0; copy queues dst = src (same length).
	zero(f []float32)
	copy(dst, src []float32)
	// widen queues dst = float32(src) for 16-bit values of type dt.
	widen(dst []float32, src []uint16, dt DType)
	// sync waits until every operation queued so far is done, then sets
	// deviceSynced to the deviceQueued it read before waiting.
	sync()
}

var (
	// device is the installed device memory, or nil. A GPU backend sets
	// it once, at start-up, before any tensor is created.
	device deviceMemory
	// deviceQueued counts the operations queued on the device so far;
	// deviceSynced is the count that the last wait covered. While they
	// differ, queued work may still touch tensor memory.
	deviceQueued, deviceSynced atomic.Uint64
)

// OnDevice reports whether tensor storage is device memory: a GPU backend
// is in use and host code that touches Data pays a transfer.
func OnDevice() bool { return device != nil }

// SyncDevice waits for every queued device operation to finish. Tensor.Data
// does this by itself; timing code calls it to measure work, not queueing.
func SyncDevice() { syncHost() }

// syncHost waits for queued device work before the host touches tensor
// memory.
func syncHost() {
	if deviceQueued.Load() != deviceSynced.Load() {
		device.sync()
	}
}

// memAlloc, memFree, memDrop and memPoison are the storage pool's calls for
// memory: the device's when one is installed, else the OS's (sysAlloc and
// the rest, storage_mmap.go and storage_heap.go). Memory the OS gave before
// a device was installed goes back to the OS.
func memAlloc(bytes int) []float32 {
	if device != nil {
		return device.alloc(bytes)
	}
	return sysAlloc(bytes)
}

func memFree(f []float32) {
	if device != nil && device.owns(f) {
		device.free(f)
		return
	}
	sysFree(f)
}

// memDrop gives the pages of a free buffer back, keeping the buffer; device
// memory cannot, and is freed instead.
func memDrop(f []float32) bool {
	if device != nil && device.owns(f) {
		return false
	}
	return sysDrop(f)
}

func memPoison(f []float32) {
	if device != nil && device.owns(f) {
		device.poison(f)
		return
	}
	sysPoison(f)
}

// zeroData sets f to zero: on the device, queued, when f is device memory.
func zeroData(f []float32) {
	if len(f) == 0 {
		return
	}
	if device != nil && device.owns(f) {
		device.zero(f)
		return
	}
	syncHost()
	clear(f)
}

// words is the storage as float32 words: the values of a float32 tensor,
// or the 16-bit values of a bf16 or f16 one two a word (the last word of an
// odd count half used).
func (st *storage) words() []float32 {
	if st.dtype == Float32 || len(st.half) == 0 {
		return st.data
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(st.half))), (len(st.half)+1)/2)
}

// convertOnDevice is Convert on the device, queued, where t is device
// memory and the conversion a copy or a widening to float32; ok is false
// where the host must do it.
func convertOnDevice(c Category, t *Tensor, dt DType) (u *Tensor, ok bool) {
	src := t.st.words()
	if device == nil || len(src) == 0 || !device.owns(src) || (dt != t.st.dtype && dt != Float32) {
		return nil, false
	}
	u = NewDType(c, dt, t.shape...)
	if !device.owns(u.st.words()) {
		u.Release()
		return nil, false
	}
	if dt == t.st.dtype {
		device.copy(u.st.words(), src)
	} else {
		device.widen(u.st.data, t.st.half, t.st.dtype)
	}
	return u, true
}
