//go:build cuda

package paca

// With -tags cuda these tests run on the GPU when one is usable.
import _ "github.com/gopaca/paca/internal/cudatest"
