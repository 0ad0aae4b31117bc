//go:build darwin && !race

package tensor

// sysDrop cannot give pages back without unmapping on macOS (the syscall
// package has no madvise): the pool unmaps the buffer instead.
func sysDrop([]float32) bool { return false }
