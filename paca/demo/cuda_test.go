//go:build cuda

package demo

// With -tags cuda these tests run on the GPU when one is usable.
import _ "github.com/gopaca/paca/internal/cudatest"
