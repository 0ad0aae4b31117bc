package tensor

import (
	"fmt"
	"strings"
	"sync"
)

// Category says why a piece of tensor memory exists. Every byte of tensor
// storage is counted under exactly one category, so a training step can say
// where its memory went: PaCA's claim is about the Saved row.
type Category int

const (
	Frozen     Category = iota // frozen base weights
	Trainable                  // trainable parameters
	Gradient                   // parameter and activation gradients
	Optimizer                  // optimizer state (moments)
	Activation                 // forward outputs not (yet) needed by backward
	Saved                      // activations kept alive for backward
	Scratch                    // temporaries inside kernels
	numCategories
)

var categoryNames = [numCategories]string{
	"frozen", "trainable", "gradients", "optimizer", "activations", "saved", "scratch",
}

func (c Category) String() string {
	if c < 0 || c >= numCategories {
		return fmt.Sprintf("Category(%d)", int(c))
	}
	return categoryNames[c]
}

// Categories lists every category in display order.
func Categories() []Category {
	cs := make([]Category, numCategories)
	for i := range cs {
		cs[i] = Category(i)
	}
	return cs
}

// Stats is a snapshot of the accounting allocator: live and peak bytes per
// category, and the peak of the total (which is not the sum of the per-
// category peaks: they need not happen at the same moment).
//
// The categories count each tensor's logical size, 4 bytes per value, and
// the bytes given to Track. Cached and Reserved describe the storage pool
// behind them (see storage.go), so that the process's resident memory can
// be explained: Cached is the capacity of free pooled buffers kept for
// reuse, Reserved all memory the pool holds (buffers in use with their
// size-class rounding, cached buffers, slab remainders).
type Stats struct {
	Live      [numCategories]int64
	Peak      [numCategories]int64
	LiveTotal int64
	PeakTotal int64
	Cached    int64
	Reserved  int64
}

// String formats the snapshot as a small table, one category per line.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %12s %12s\n", "memory", "live", "peak")
	for c := Category(0); c < numCategories; c++ {
		fmt.Fprintf(&b, "%-12s %12s %12s\n", c, FormatBytes(s.Live[c]), FormatBytes(s.Peak[c]))
	}
	fmt.Fprintf(&b, "%-12s %12s %12s\n", "total", FormatBytes(s.LiveTotal), FormatBytes(s.PeakTotal))
	return b.String()
}

// FormatBytes renders n with a binary unit (B, KiB, MiB, GiB).
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n), 0
	for f >= unit && u < 3 {
		f /= unit
		u++
	}
	return fmt.Sprintf("%.2f %ciB", f, "KMG"[u-1])
}

// mem is the process-wide accounting allocator: the statistics, the
// storage pool, and the free tensor headers and storage records, all
// guarded by one mutex.
var mem struct {
	sync.Mutex
	s        Stats
	pool     bufPool
	headers  headerQueue
	storages []*storage
}

func account(c Category, bytes int64) {
	mem.Lock()
	accountLocked(c, bytes)
	mem.Unlock()
}

// accountLocked is account with mem's mutex held.
func accountLocked(c Category, bytes int64) {
	s := &mem.s
	s.Live[c] += bytes
	s.LiveTotal += bytes
	if s.Live[c] > s.Peak[c] {
		s.Peak[c] = s.Live[c]
	}
	if s.LiveTotal > s.PeakTotal {
		s.PeakTotal = s.LiveTotal
	}
}

// MemStats returns the current accounting snapshot.
func MemStats() Stats {
	mem.Lock()
	defer mem.Unlock()
	s := mem.s
	s.Cached, s.Reserved = mem.pool.cached, mem.pool.reserved
	return s
}

// ResetPeak sets every peak to the current live value, so that the next
// MemStats reports the peak of what happens from now on.
func ResetPeak() {
	mem.Lock()
	s := &mem.s
	s.Peak = s.Live
	s.PeakTotal = s.LiveTotal
	mem.Unlock()
}

// Track counts n bytes (negative to return them) of storage that is not a
// float32 Tensor, such as packed 4-bit weights, under category c.
func Track(c Category, n int64) { account(c, n) }
