//go:build cuda

// Package cudatest moves the tests of the package that imports it onto the
// GPU: a test file with -tags cuda imports it for its side effect, and the
// package's tests (golden models, gradient checks, training) then run with
// tensors in GPU memory on the CUDA backend when a GPU is usable, and on the
// CPU otherwise. It says which on stderr.
package cudatest

import (
	"fmt"
	"os"

	accel "github.com/gopaca/paca"
)

func init() {
	name, err := accel.Init()
	if err != nil {
		name = fmt.Sprintf("cpu (no usable CUDA GPU: %v)", err)
	}
	// Said once: test processes that a test starts (they inherit the
	// environment) keep their output to what the test reads.
	if os.Getenv(quiet) == "" && os.Getenv("PACA_BENCH_WORKER") != "1" {
		fmt.Fprintf(os.Stderr, "tests on %s\n", name)
		os.Setenv(quiet, "1")
	}
}

const quiet = "PACA_CUDATEST_QUIET"
