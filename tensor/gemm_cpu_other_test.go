//go:build !unix

package tensor

func processCPUSeconds() float64 { return 0 }
