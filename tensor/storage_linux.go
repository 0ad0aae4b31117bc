//go:build linux && !race

package tensor

import "syscall"

// sysDrop gives the pages of a mapped buffer back to the OS, keeping the
// mapping: the next access finds zero-filled pages.
func sysDrop(f []float32) bool {
	return syscall.Madvise(asBytes(f), syscall.MADV_DONTNEED) == nil
}
