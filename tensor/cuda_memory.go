//go:build cuda

package tensor

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/gopaca/paca/tensor/internal/cudrv"
)

// cudaMemory is the storage pool's memory on a GPU (storage_device.go):
// CUDA managed memory, which the device and the host address with the same
// pointer. Why managed and not plain device memory with host mirrors:
// everything above package tensor reads and writes Tensor.Data at load,
// checkpoint and logging points, and keeps doing so unchanged; the pages
// move to the GPU on first use there and stay while training runs on the
// device's kernels (new memory is zeroed on the device, so it starts
// there). A host access in the middle of a step still works, only slowly:
// the per-step host work (clipping, NF4, DoRA, dropout) has kernels.
//
// It is a caching allocator under the pool's own cache: requests below
// subLimit (the pool's slabs and its smaller buffers) are carved from
// chunkBytes chunks and kept on free lists by size when freed, so the
// driver sees few, large allocations; larger ones get one of their own,
// returned to the driver when the pool frees them.
type cudaMemory struct {
	mu     sync.Mutex
	spans  []cudaSpan // every chunk and large allocation, by address
	chunk  unsafe.Pointer
	used   int // bytes of chunk handed out
	pieces map[int][]unsafe.Pointer
	syncMu sync.Mutex

	widenFn func(dst []float32, src []uint16, dt DType) // the backend's kernel
}

// cudaSpan is one allocation from the driver.
type cudaSpan struct {
	base, end uintptr
	whole     bool // a single buffer, freed to the driver
}

const (
	subLimit   = 2 << 20
	chunkBytes = 64 << 20
)

func (m *cudaMemory) alloc(bytes int) []float32 {
	m.mu.Lock()
	p := m.take(bytes)
	m.mu.Unlock()
	f := unsafe.Slice((*float32)(p), bytes/4)
	m.zero(f)
	return f
}

// take returns bytes of memory, with m.mu held.
func (m *cudaMemory) take(bytes int) unsafe.Pointer {
	if bytes >= subLimit {
		p := m.driverAlloc(bytes)
		m.addSpan(p, bytes, true)
		return p
	}
	if free := m.pieces[bytes]; len(free) > 0 {
		p := free[len(free)-1]
		m.pieces[bytes] = free[:len(free)-1]
		return p
	}
	if m.chunk == nil || m.used+bytes > chunkBytes {
		m.chunk, m.used = m.driverAlloc(chunkBytes), 0
		m.addSpan(m.chunk, chunkBytes, false)
	}
	p := unsafe.Add(m.chunk, m.used)
	m.used += bytes
	return p
}

func (m *cudaMemory) driverAlloc(bytes int) unsafe.Pointer {
	p, err := cudrv.Alloc(bytes, true)
	if err != nil {
		panic(fmt.Sprintf("tensor: cannot allocate %s of GPU memory: %v (%s in tensors)", FormatBytes(int64(bytes)), err, FormatBytes(MemStats().LiveTotal)))
	}
	return p
}

func (m *cudaMemory) addSpan(p unsafe.Pointer, bytes int, whole bool) {
	s := cudaSpan{base: uintptr(p), end: uintptr(p) + uintptr(bytes), whole: whole}
	i := m.last(s.base) + 1
	m.spans = append(m.spans, cudaSpan{})
	copy(m.spans[i+1:], m.spans[i:])
	m.spans[i] = s
}

// last returns the index of the last span starting at or below address a,
// or −1; m.mu held.
func (m *cudaMemory) last(a uintptr) int {
	lo, hi := 0, len(m.spans) // spans[:lo] start ≤ a, spans[hi:] above it
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.spans[mid].base <= a {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// span returns the index of the span holding address a, or −1; m.mu held.
func (m *cudaMemory) span(a uintptr) int {
	if i := m.last(a); i >= 0 && a < m.spans[i].end {
		return i
	}
	return -1
}

func (m *cudaMemory) owns(f []float32) bool {
	if cap(f) == 0 {
		return false
	}
	a := uintptr(unsafe.Pointer(unsafe.SliceData(f)))
	m.mu.Lock()
	ok := m.span(a) >= 0
	m.mu.Unlock()
	return ok
}

func (m *cudaMemory) free(f []float32) {
	p := unsafe.Pointer(unsafe.SliceData(f))
	bytes := 4 * len(f)
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.span(uintptr(p))
	if i < 0 {
		panic("tensor: freeing memory the GPU allocator does not hold")
	}
	if !m.spans[i].whole {
		m.pieces[bytes] = append(m.pieces[bytes], p)
		return
	}
	m.sync() // queued kernels may still use it
	cudrv.Free(p)
	m.spans = append(m.spans[:i], m.spans[i+1:]...)
}

// nanBits is a quiet float32 NaN.
const nanBits = 0x7fc00000

func (m *cudaMemory) poison(f []float32) {
	cudrv.Memset32(unsafe.Pointer(unsafe.SliceData(f)), nanBits, len(f))
	deviceQueued.Add(1)
}

func (m *cudaMemory) zero(f []float32) {
	cudrv.Memset32(unsafe.Pointer(unsafe.SliceData(f)), 0, len(f))
	deviceQueued.Add(1)
}

func (m *cudaMemory) copy(dst, src []float32) {
	cudrv.Copy(unsafe.Pointer(unsafe.SliceData(dst)), unsafe.Pointer(unsafe.SliceData(src)), 4*len(dst))
	deviceQueued.Add(1)
}

func (m *cudaMemory) widen(dst []float32, src []uint16, dt DType) { m.widenFn(dst, src, dt) }

func (m *cudaMemory) sync() {
	m.syncMu.Lock()
	q := deviceQueued.Load()
	if q != deviceSynced.Load() {
		cudrv.Sync()
		deviceSynced.Store(q)
	}
	m.syncMu.Unlock()
}
