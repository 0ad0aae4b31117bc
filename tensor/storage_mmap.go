//go:build (linux || darwin) && !race

package tensor

import (
	"fmt"
	"syscall"
	"unsafe"
)

// The storage pool maps its memory from the OS (see storage.go). Under the
// race detector it uses Go memory instead (storage_heap.go): the detector
// only watches the Go heap, and tensor data races are what it is for.

// offHeap reports whether tensor storage lives outside the Go heap.
const offHeap = true

// sysAlloc maps bytes (a multiple of the page size) of zeroed memory.
func sysAlloc(bytes int) []float32 {
	b, err := syscall.Mmap(-1, 0, bytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic(fmt.Sprintf("tensor: cannot map %d bytes of tensor storage: %v", bytes, err))
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), bytes/4)
}

// asBytes is the mapping f covers, as syscall.Mmap returned it.
func asBytes(f []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), len(f)*4)
}

// sysFree unmaps memory sysAlloc returned, whole.
func sysFree(f []float32) {
	if err := syscall.Munmap(asBytes(f)); err != nil {
		panic(fmt.Sprintf("tensor: cannot unmap tensor storage: %v", err))
	}
}

// sysPoison makes a released buffer inaccessible for good (check mode):
// any later access faults. The addresses stay reserved, so no later
// mapping can land there and hide a stale access.
func sysPoison(f []float32) {
	if err := syscall.Mprotect(asBytes(f), syscall.PROT_NONE); err != nil {
		panic(fmt.Sprintf("tensor: cannot protect released storage: %v", err))
	}
	sysDrop(f)
}
