//go:build linux || darwin

package safetensors

import (
	"io"
	"os"
	"syscall"
)

// mapFile maps the file at path into memory read-only, falling back to
// reading it where mapping fails (e.g. on a pipe or an unusual file
// system). release undoes it.
func mapFile(path string) (data []byte, release func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if st.Mode().IsRegular() && size > 0 && size == int64(int(size)) {
		b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
		if err == nil {
			return b, func() error { return syscall.Munmap(b) }, nil
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
