//go:build !(linux || darwin) || race

package tensor

import "math"

// Without anonymous mappings (or under the race detector, which watches
// only Go memory) the storage pool takes its buffers from the Go heap. They
// are pooled and reused just the same, so a warm training step still
// allocates nothing; the Go GC merely sees them.

// offHeap reports whether tensor storage lives outside the Go heap.
const offHeap = false

func sysAlloc(bytes int) []float32 { return make([]float32, bytes/4) }

func sysFree([]float32) {}

// sysDrop cannot drop Go memory: the pool lets the collector have it.
func sysDrop([]float32) bool { return false }

// sysPoison fills a released buffer with NaN (check mode), so a stale
// reader computes garbage that tests notice.
func sysPoison(f []float32) {
	nan := float32(math.NaN())
	for i := range f {
		f[i] = nan
	}
}
