//go:build unix

package tensor

import "syscall"

// processCPUSeconds is the user+system CPU time this process has used. A
// benchmark divides work by it as well as by wall time: on a shared
// machine wall time swings with the load, CPU time far less.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
