//go:build !(linux || darwin)

package safetensors

import "os"

// mapFile reads the file at path into memory. release is a no-op; the
// garbage collector reclaims the bytes.
func mapFile(path string) (data []byte, release func() error, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
