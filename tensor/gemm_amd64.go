//go:build amd64 && !purego

package tensor

// sgemmKernel6x16AVX2 computes one 6×16 tile of C with AVX2/FMA (see
// gemm_amd64.s): C = alpha·A·B + beta·C, or C = alpha·A·B when betaZero is
// non-zero (C is then never read). A(i, p) is at a + i·rsA + p·csA and
// B(p, j) at b + p·ldb + j, strides in elements; k ≥ 1.
//
//go:noescape
func sgemmKernel6x16AVX2(k int, a *float32, rsA, csA int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, betaZero int)

//go:noescape
func packA6NAVX2(dst, src *float32, lda, kc8 int)

//go:noescape
func packA6TAVX2(dst, src *float32, lda, kc, panels int)

//go:noescape
func packB16NAVX2(dst, src *float32, ldb, kc int)

//go:noescape
func packB16TAVX2(dst, src *float32, ldb, kc8 int)

//go:noescape
func cpuidex(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

func xgetbv0() (eax, edx uint32)

// hasAVX2FMA reports whether the processor has AVX2 and FMA3 and the
// operating system saves the YMM registers on context switches. Checked
// conservatively from CPUID and XGETBV rather than assumed from GOAMD64.
func hasAVX2FMA() bool {
	maxLeaf, _, _, _ := cpuidex(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuidex(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	// XCR0 bits 1 (SSE state) and 2 (AVX state) must both be enabled.
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuidex(7, 0)
	const avx2 = 1 << 5
	return ebx7&avx2 != 0
}

func init() {
	if hasAVX2FMA() {
		gemmAVX2 = &gemmImpl{
			name: "avx2", kernel: sgemmKernel6x16AVX2, strided: true,
			packA6N: packA6NAVX2, packA6T: packA6TAVX2,
			packB16N: packB16NAVX2, packB16T: packB16TAVX2,
		}
		gemmAVX2.packB16NHalf[BFloat16] = packB16NBF16AVX2
		gemmAVX2.packB16THalf[BFloat16] = packB16TBF16AVX2
		if hasF16C() {
			gemmAVX2.packB16NHalf[Float16] = packB16NF16AVX2
			gemmAVX2.packB16THalf[Float16] = packB16TF16AVX2
		}
		gemmDefault = gemmAVX2
	}
}

// The 16-bit packers of a bf16 or f16 B (gemm_amd64.s): packB16T and
// packB16N with each value widened to float32.
//
//go:noescape
func packB16TBF16AVX2(dst *float32, src *uint16, ldb, kc8 int)

//go:noescape
func packB16TF16AVX2(dst *float32, src *uint16, ldb, kc8 int)

//go:noescape
func packB16NBF16AVX2(dst *float32, src *uint16, ldb, kc int)

//go:noescape
func packB16NF16AVX2(dst *float32, src *uint16, ldb, kc int)

// hasF16C reports whether the processor converts half precision
// (VCVTPH2PS), which the f16 packers use.
func hasF16C() bool {
	_, _, ecx1, _ := cpuidex(1, 0)
	return ecx1&(1<<29) != 0
}
