//go:build !cuda

// Package accel chooses the machine that tensor kernels run on. The
// default build is pure Go with no cgo: everything runs on the CPU. A build
// with -tags cuda links the CUDA backend instead (accel_cuda.go).
package accel

// Init installs the best available backend into package tensor and
// returns its name. In this build that is always the pure-Go CPU backend
// (build with -tags cuda for the GPU one, accel_cuda.go).
func Init() (string, error) { return "cpu", nil }
