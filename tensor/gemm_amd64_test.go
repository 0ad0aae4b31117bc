//go:build amd64 && !purego

package tensor

import (
	"os"
	"strings"
	"testing"
)

// TestGemmCPUDetection checks the CPUID/XGETBV detection against what
// Linux reports in /proc/cpuinfo, and that the default GEMM follows it.
func TestGemmCPUDetection(t *testing.T) {
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip("no /proc/cpuinfo")
	}
	var flags []string
	for _, line := range strings.Split(string(info), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags = strings.Fields(v)
			break
		}
	}
	has := func(f string) bool {
		for _, x := range flags {
			if x == f {
				return true
			}
		}
		return false
	}
	want := has("avx2") && has("fma") // Linux hides avx2 when it does not save YMM state
	if got := hasAVX2FMA(); got != want {
		t.Fatalf("hasAVX2FMA() = %v, /proc/cpuinfo says avx2+fma = %v", got, want)
	}
	if want != (gemmDefault == gemmAVX2) {
		t.Fatalf("default GEMM is %q with AVX2/FMA = %v", gemmDefault.name, want)
	}
}

// BenchmarkGemmMicroKernel runs the assembly micro-kernel alone on packed
// panels that stay in L1: the ceiling for the whole GEMM.
func BenchmarkGemmMicroKernel(b *testing.B) {
	if gemmAVX2 == nil {
		b.Skip("no AVX2/FMA")
	}
	const kc = 256
	a := alignedFloats(nil, gemmMR*kc, 0)
	bp := alignedFloats(nil, gemmNR*kc, 0)
	c := alignedFloats(nil, gemmMR*gemmNR, 0)
	for b.Loop() {
		sgemmKernel6x16AVX2(kc, &a[0], 1, gemmMR, &bp[0], gemmNR, &c[0], gemmNR, 1, 1, 0)
	}
	b.ReportMetric(2*gemmMR*gemmNR*kc*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
