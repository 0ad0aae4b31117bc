//go:build cuda

// Package accel chooses the machine that tensor kernels run on. This build
// (-tags cuda) runs them on an NVIDIA GPU when one is usable: tensors live
// in GPU memory, GEMMs run on cuBLAS and the other kernels are compiled
// with NVRTC for the GPU found (package tensor, cuda*.go). The CUDA
// libraries are opened at run time, so the binary needs no CUDA toolkit to
// build and runs on the CPU where there is no GPU.
package accel

import (
	"fmt"
	"os"
	"strings"

	"github.com/gopaca/paca/tensor"
)

// Init installs the best available backend into package tensor and
// returns its name. It must run before any tensor is created. With
// PACA_DEVICE=cpu it keeps the CPU backend; otherwise it tries the GPU and,
// when there is no usable one, keeps the CPU backend and returns the
// reason as the error (the name is then "cpu").
func Init() (string, error) {
	switch d := strings.ToLower(os.Getenv("PACA_DEVICE")); d {
	case "cpu":
		return "cpu", nil
	case "", "cuda", "gpu":
	default:
		return "cpu", fmt.Errorf("PACA_DEVICE=%q: want cpu or cuda", d)
	}
	name, err := tensor.UseCUDA()
	if err != nil {
		return "cpu", err
	}
	return name, nil
}
