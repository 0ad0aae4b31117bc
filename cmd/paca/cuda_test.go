//go:build cuda

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/gopaca/paca/internal/cudatest" // with -tags cuda these tests run on the GPU when one is usable
	"github.com/gopaca/paca/tensor"
)

// Without a usable GPU the CUDA build says why, in one line, and runs on
// the CPU.
func TestNoGPUSaysSoOnce(t *testing.T) {
	if tensor.OnDevice() {
		t.Skip("a GPU is in use")
	}
	if os.Getenv("PACA_DEVICE") == "cpu" {
		t.Skip("PACA_DEVICE=cpu asks for the CPU")
	}
	var b bytes.Buffer
	initBackend(&b)
	require.Contains(t, b.String(), "paca: no usable CUDA GPU (")
	require.Contains(t, b.String(), "running on the CPU")
	require.Equal(t, 1, strings.Count(b.String(), "\n"), b.String())
	require.Equal(t, "cpu", tensor.CurrentBackend().Name())
}
