package tensor

import (
	"math/bits"
	"os"
)

// Tensor storage: a size-class pool of float32 buffers.
//
// Every buffer New hands out comes from here. On Linux and macOS the
// memory is mapped anonymously from the OS (storage_mmap.go), outside the
// Go heap: the garbage collector neither scans it nor counts it towards
// its heap goal, so it does not double it (GOGC lets the Go heap grow to
// twice its live size before collecting). When the last reference to a
// tensor goes, its buffer returns to the free list of its size class and
// the next New of that class reuses it, zeroing only what earlier users
// may have written. A training step that repeats the shapes of the step
// before therefore maps no new memory.
//
// Size classes: requests up to smallLimit bytes are rounded up to one of
// smallSteps sizes per power of two (multiples of a 64-byte cache line) and
// carved from slabBytes slabs; larger ones to one of largeSteps sizes per
// power of two (whole pages, at most 6.25 % over the request), one mapping
// per buffer. Pages never written are not resident, so the rounding costs
// resident memory only where a buffer once held a larger tensor.
//
// Residency: free buffers stay resident, ready for reuse, but the pool
// keeps the resident large buffers (in use and free) within 1/cacheSlack
// of the high-water mark of those in use, giving the pages of the free
// buffers released longest ago back to the OS when a class must grow
// (bufPool.trim). So the pool's resident memory tracks the peak of the
// memory in use, not the sum of each size class's peak.
//
// Accounting: the categories of Stats count a tensor's logical size (4
// bytes per value), never the rounding. Stats.Cached is the capacity of
// the free buffers kept resident (memory the process holds, ready for
// reuse, that no tensor uses; slab pieces never used count too), and
// Stats.Reserved all address space mapped for tensor storage (buffers in
// use with their rounding, free buffers resident or not, slab remainders).
// The pool's resident memory is at most the capacity in use plus Cached.
//
// Free lists are LIFO, so the buffer reused is the one most recently
// released, still warm in cache. ReleaseCached unmaps the free large
// buffers.
//
// With the environment variable PACA_TENSOR_CHECK=1, released buffers are
// never reused: they are made inaccessible (mmap builds) or filled with NaN
// (elsewhere), so that code that keeps using a slice after Release faults
// or reads NaN instead of silently sharing memory with a later tensor; and
// tensor headers are never recycled. Running the tests with it proves that
// nothing uses a tensor after Release.

const (
	smallLimit = 32 << 10  // bytes: larger buffers get a mapping of their own
	slabBytes  = 256 << 10 // small buffers are carved from slabs this big
	smallSteps = 4         // size classes per doubling up to smallLimit
	largeSteps = 16        // and above it
	lineBytes  = 64        // every buffer starts on a cache line
)

var (
	pageSize = os.Getpagesize()
	// checkMode is PACA_TENSOR_CHECK=1: no reuse of released memory.
	checkMode = os.Getenv("PACA_TENSOR_CHECK") == "1"
)

// classSize returns the size class, in bytes, of a request of n > 0 bytes.
func classSize(n int) int {
	if n <= lineBytes {
		return lineBytes
	}
	half := 1 << (bits.Len(uint(n-1)) - 1) // half < n ≤ 2·half
	steps, unit := smallSteps, lineBytes
	if n > smallLimit {
		steps, unit = largeSteps, pageSize
	}
	g := max(half/steps, unit)
	return (n + g - 1) / g * g
}

// buffer is pooled memory: buf has the class's capacity, and only its
// first dirty values may be non-zero.
type buffer struct {
	buf   []float32
	dirty int
	stamp uint64 // when it was released (in a free list)
}

// classList is the free list of one size class: free[:dropped] are buffers
// whose pages were given back to the OS (the ones released longest ago),
// free[dropped:] are resident, oldest first; the top is reused first.
type classList struct {
	free    []buffer
	dropped int
}

// bufPool holds the free buffers by class. It is guarded by mem's mutex.
//
// Resident memory is kept near the high-water mark of the memory in use:
// free buffers stay resident for reuse, but when a class has no resident
// buffer to give and the resident total would exceed the largest in-use
// total seen so far by more than 1/cacheSlack, the free large buffers
// released longest ago are given back to the OS first (madvise on Linux;
// elsewhere they are unmapped). Without that, each class would keep its
// own peak count of buffers and the pool would hold the sum of the
// per-class peaks, which can exceed the peak of the total.
type bufPool struct {
	classes map[int]*classList // by class size in bytes
	large   []*classList       // the classes above smallLimit
	stamp   uint64

	// Bytes, by class capacity.
	cached   int64 // free and resident (or never touched: slab pieces)
	reserved int64 // obtained from the system and not returned
	// Large classes only: in use, free and resident, and the in-use
	// high-water mark.
	largeInUse, largeCached, largeHigh int64
}

// cacheSlack: the resident large buffers may exceed the in-use high-water
// mark by 1/cacheSlack of it.
const cacheSlack = 16

func (p *bufPool) class(size int) *classList {
	if p.classes == nil {
		p.classes = map[int]*classList{}
	}
	cl := p.classes[size]
	if cl == nil {
		cl = &classList{}
		p.classes[size] = cl
		if size > smallLimit {
			p.large = append(p.large, cl)
		}
	}
	return cl
}

// get takes a buffer able to hold n > 0 values. The caller zeroes its
// first min(n, dirty) values (outside the lock) to hand out zeroed memory.
func (p *bufPool) get(n int) buffer {
	size := classSize(n * 4)
	if checkMode {
		p.reserved += int64(size)
		return buffer{buf: memAlloc((size + pageSize - 1) / pageSize * pageSize)[:size/4]}
	}
	large := size > smallLimit
	if large {
		p.largeInUse += int64(size)
		p.largeHigh = max(p.largeHigh, p.largeInUse)
	}
	cl := p.class(size)
	if k := len(cl.free); k > 0 {
		b := cl.free[k-1]
		cl.free[k-1] = buffer{}
		cl.free = cl.free[:k-1]
		if k > cl.dropped {
			p.cached -= int64(size)
			if large {
				p.largeCached -= int64(size)
			}
		} else {
			cl.dropped-- // its pages come back: make room
			p.trim()
		}
		return b
	}
	if large {
		p.trim()
		p.reserved += int64(size)
		return buffer{buf: memAlloc(size)}
	}
	// Carve a slab into buffers of this class: hand out the first, keep
	// the rest in the free list, lowest address on top.
	slab := memAlloc(slabBytes)
	p.reserved += slabBytes
	per := size / 4
	pieces := slabBytes / size
	for i := pieces - 1; i >= 1; i-- {
		cl.free = append(cl.free, buffer{buf: slab[i*per : (i+1)*per : (i+1)*per]})
	}
	p.cached += int64((pieces - 1) * size)
	return buffer{buf: slab[:per:per]}
}

// put returns a buffer to its free list.
func (p *bufPool) put(b buffer) {
	size := cap(b.buf) * 4
	if checkMode {
		memPoison(b.buf[:cap(b.buf)])
		p.reserved -= int64(size)
		return
	}
	p.stamp++
	b.stamp = p.stamp
	cl := p.classes[size]
	cl.free = append(cl.free, b)
	p.cached += int64(size)
	if size > smallLimit {
		p.largeInUse -= int64(size)
		p.largeCached += int64(size)
	}
}

// trim gives free large buffers back to the OS, those released longest
// ago first, until the resident large buffers (in use and free) fit in the
// high-water mark plus its 1/cacheSlack.
//
// Storage on the Go heap is not trimmed: the collector decides when its
// memory goes back, and dropping buffers would only make the pool allocate
// them again.
func (p *bufPool) trim() {
	if !offHeap {
		return
	}
	limit := p.largeHigh + p.largeHigh/cacheSlack
	for p.largeInUse+p.largeCached > limit && p.largeCached > 0 {
		var oldest *classList
		for _, cl := range p.large {
			if cl.dropped < len(cl.free) && (oldest == nil || cl.free[cl.dropped].stamp < oldest.free[oldest.dropped].stamp) {
				oldest = cl
			}
		}
		b := &oldest.free[oldest.dropped]
		size := int64(cap(b.buf) * 4)
		p.cached -= size
		p.largeCached -= size
		if memDrop(b.buf[:cap(b.buf)]) {
			b.dirty = 0
			oldest.dropped++
			continue
		}
		// No way to drop the pages but to unmap the buffer.
		memFree(b.buf[:cap(b.buf)])
		p.reserved -= size
		oldest.free = append(oldest.free[:oldest.dropped], oldest.free[oldest.dropped+1:]...)
		oldest.free[len(oldest.free):cap(oldest.free)][0] = buffer{}
	}
}

// releaseCached unmaps every free buffer that has a mapping of its own
// (the large classes) and returns the bytes given back.
func (p *bufPool) releaseCached() int64 {
	var n int64
	for _, cl := range p.large {
		for i, b := range cl.free {
			memFree(b.buf[:cap(b.buf)])
			n += int64(cap(b.buf) * 4)
			cl.free[i] = buffer{}
		}
		cl.free, cl.dropped = cl.free[:0], 0
	}
	p.cached -= p.largeCached
	p.largeCached = 0
	p.reserved -= n
	p.largeHigh = p.largeInUse
	return n
}

// ReleaseCached returns the large free buffers of the storage pool to the
// operating system, reports how many bytes of address space that was, and
// forgets the pool's high-water mark. Training reuses the buffers step
// after step, so there is no reason to call it in a loop; call it between
// phases whose shapes differ (a benchmark moving to another method,
// evaluation after training) so that what the finished phase cached does
// not stay resident. Small buffers (up to 32 KiB) stay cached.
func ReleaseCached() int64 {
	mem.Lock()
	defer mem.Unlock()
	return mem.pool.releaseCached()
}
