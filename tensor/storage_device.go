package tensor

import "sync/atomic"

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
// Zeroing a reused buffer and Clone's copy are queued on the device too
// (zeroData, copyData), so that a training step keeps its pages on the
// device and the host waits only where it reads a value: a loss to log, a
// checkpoint to write.
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

// copyData copies src to dst (same length): on the device, queued, when
// both are device memory.
func copyData(dst, src []float32) {
	if len(dst) == 0 {
		return
	}
	if device != nil && device.owns(dst) && device.owns(src) {
		device.copy(dst, src)
		return
	}
	syncHost()
	copy(dst, src)
}
