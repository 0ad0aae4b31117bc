package tensor

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// gemmBenchShape is one GEMM of a SmolLM2-135M training step (hidden 576,
// MLP 1536, 3 KV heads of 64 → 192, vocabulary 49152) at sequence 512,
// batch 1, or one of the skinny rank-r (r = 16) GEMMs of LoRA and PaCA.
// The name encodes op(A), op(B) (N or T) and m×k×n; scripts/gemm_bench.py
// parses it to run the same GEMM through numpy.
type gemmBenchShape struct {
	what           string
	transA, transB bool
	m, k, n        int
}

func (s gemmBenchShape) name() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s_%dx%dx%d_%s", t(s.transA), t(s.transB), s.m, s.k, s.n, s.what)
}

var gemmBenchShapes = []gemmBenchShape{
	// Forward, y = x·Wᵀ (tokens × in)·(out × in)ᵀ.
	{"q_o_fwd", false, true, 512, 576, 576},
	{"k_v_fwd", false, true, 512, 576, 192},
	{"gate_up_fwd", false, true, 512, 576, 1536},
	{"down_fwd", false, true, 512, 1536, 576},
	{"lm_head_fwd", false, true, 512, 576, 49152},
	// Input gradient, dx = dy·W.
	{"q_o_dx", false, false, 512, 576, 576},
	{"k_v_dx", false, false, 512, 192, 576},
	{"gate_up_dx", false, false, 512, 1536, 576},
	{"down_dx", false, false, 512, 576, 1536},
	{"lm_head_dx", false, false, 512, 49152, 576},
	// Weight gradient, dW = dyᵀ·x.
	{"q_o_dw", true, false, 576, 512, 576},
	{"k_v_dw", true, false, 192, 512, 576},
	{"gate_up_dw", true, false, 1536, 512, 576},
	{"down_dw", true, false, 576, 512, 1536},
	// Skinny, r = 16: LoRA x·Aᵀ and h·Bᵀ, PaCA/LoRA dΔ, dA = dhᵀ·x.
	{"lora_xA_r16", false, true, 512, 576, 16},
	{"x_r16_NN", false, false, 512, 576, 16},
	{"paca_dDelta_r16", true, false, 576, 512, 16},
	{"paca_dDelta_mlp_r16", true, false, 1536, 512, 16},
	{"lora_hB_r16", false, true, 512, 16, 576},
	{"lora_dA_r16", true, false, 16, 512, 576},
}

func benchGemm(b *testing.B, impl *gemmImpl, s gemmBenchShape) { benchGemmB(b, impl, s, Float32) }

// benchGemmB is benchGemm with B stored as dt.
func benchGemmB(b *testing.B, impl *gemmImpl, s gemmBenchShape, dt DType) {
	rng := rand.New(rand.NewPCG(1, 1))
	p := gemmCase(rng, s.transA, s.transB, s.m, s.n, s.k, 0, 1, 0)
	if dt != Float32 {
		_, p = halfCase(p, dt)
	}
	threads := runtime.GOMAXPROCS(0)
	impl.gemm(threads, p) // warm the pools
	b.ResetTimer()
	cpu0 := processCPUSeconds()
	for b.Loop() {
		impl.gemm(threads, p)
	}
	cpu := processCPUSeconds() - cpu0
	flops := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		// Per core-second: the work the kernel did, whatever the load.
		b.ReportMetric(flops/cpu/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkGemm runs the default kernel on the model shapes;
// scripts/gemm_bench.sh compares it with OpenBLAS.
func BenchmarkGemm(b *testing.B) {
	for _, s := range gemmBenchShapes {
		b.Run(s.name(), func(b *testing.B) { benchGemm(b, gemmDefault, s) })
	}
}

// BenchmarkGemmHalfB runs the weight GEMMs of a linear layer (forward and
// input gradient) with the weight in float32 and in bf16, side by side.
func BenchmarkGemmHalfB(b *testing.B) {
	for _, s := range gemmBenchShapes {
		if s.transA || s.n == 16 || s.k == 16 {
			continue
		}
		for _, dt := range []DType{Float32, BFloat16, Float16} {
			b.Run(s.name()+"/"+dt.String(), func(b *testing.B) { benchGemmB(b, gemmDefault, s, dt) })
		}
	}
}

// BenchmarkGemmPortable runs the pure-Go kernel on the smaller shapes.
func BenchmarkGemmPortable(b *testing.B) {
	for _, s := range gemmBenchShapes {
		if s.m*s.n*s.k > 1<<30 {
			continue
		}
		b.Run(s.name(), func(b *testing.B) { benchGemm(b, gemmPortable, s) })
	}
}

// For tuning: PACA_GEMM_BLOCKING="MC,KC,NC" overrides the cache blocking
// in benchmarks, PACA_GEMM_CHUNKS the blocks per goroutine.
func init() {
	if v, err := strconv.Atoi(os.Getenv("PACA_GEMM_CHUNKS")); err == nil && v > 0 {
		gemmChunks = v
	}
	if v, err := strconv.Atoi(os.Getenv("PACA_GEMM_BDIRECT")); err == nil && v >= 0 {
		gemmBDirectRows = v
	}
	if v, err := strconv.Atoi(os.Getenv("PACA_GEMM_ADIRECT")); err == nil && v >= 0 {
		gemmADirectCols = v
	}
	if v := os.Getenv("PACA_GEMM_BLOCKING"); v != "" {
		var mc, kc, nc int
		if _, err := fmt.Sscanf(v, "%d,%d,%d", &mc, &kc, &nc); err == nil && mc > 0 && kc > 0 && nc > 0 {
			gemmMC, gemmKC, gemmNC = ceilDiv(mc, gemmMR)*gemmMR, kc, ceilDiv(nc, gemmNR)*gemmNR
		}
	}
}
