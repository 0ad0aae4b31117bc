// Package cudrv opens the CUDA driver, cuBLAS and NVRTC at run time, with
// its own minimal declarations: a build needs a C compiler and -tags cuda,
// not the CUDA toolkit. Without the tag the package is empty and the
// module has no cgo. Package tensor's CUDA backend is its only user.
package cudrv
