//go:build amd64 && !purego

#include "textflag.h"

// AVX2/FMA single-precision GEMM micro-kernel, hand-written.
//
// It computes one 6×16 tile of C:
//
//	C[0:6, 0:16] = alpha · A[0:6, 0:k] · B[0:k, 0:16] + beta · C[0:6, 0:16]
//
// with A read through general strides (element (i, p) at a + i·rsA + p·csA)
// and B through a row stride (row p is 16 contiguous floats at b + p·ldb).
// A packed micro-panel is rsA = 1, csA = 6; a packed B micro-panel is
// ldb = 16. Unpacked operands work too: a row-major A is (lda, 1), a
// transposed one (1, lda); a row-major B is its own ldb.
//
// Register use (16 YMM registers):
//
//	Y0..Y11   the 12 accumulators: row i of the tile is Y(2i) (columns 0..7)
//	          and Y(2i+1) (columns 8..15)
//	Y12, Y13  the current row of B (16 floats)
//	Y14, Y15  broadcasts of A(i, p), alternated so that consecutive rows do
//	          not serialise on one register (renaming would cope anyway)
//
// Per k step: 2 loads of B, 6 broadcast loads of A, 12 FMAs. Zen 4 (and
// Haswell and later Intel) issue 2 FMAs per cycle with latency 4, so 8
// independent accumulators are needed to keep both pipes busy and 12 give
// slack; 8 loads per 6 cycles is well under the load ports' limit.
//
// Why 6×16: an MR×NR tile needs MR·NR/8 accumulators, NR/8 registers for
// the row of B and one for the broadcast. 6×16 takes 12+2+1 = 15 of the 16
// registers and does 12 FMAs per 8 loads. 8×8 (8+1+1) does only 8 FMAs per
// 9 loads and leaves the FMA pipes short of independent work; 4×24 (12+3+1)
// loads a little less per FMA but wastes a third of its FMAs on the n = 16
// skinny GEMMs of rank-16 adapters, which 6×16 fits exactly.
//
// The k loop is unrolled by 4; the C tile is prefetched before it so that
// the write-back does not wait on cache misses.
//
// General purpose registers:
//
//	CX  k (loop counter)     R8  A rows 0..2   R11 A rows 3..5 (a + 3·rsA)
//	R9  rsA in bytes         R10 csA in bytes  BX  B   R12 ldb in bytes
//	DX  C rows 0..2          R14 C rows 3..5   R13 ldc in bytes

// KSTEP does one rank-1 update of the 6×16 accumulator tile and advances
// the A and B pointers by one k step.
#define KSTEP \
	VMOVUPS      (BX), Y12;          \
	VMOVUPS      32(BX), Y13;        \
	VBROADCASTSS (R8), Y14;          \
	VFMADD231PS  Y12, Y14, Y0;       \
	VFMADD231PS  Y13, Y14, Y1;       \
	VBROADCASTSS (R8)(R9*1), Y15;    \
	VFMADD231PS  Y12, Y15, Y2;       \
	VFMADD231PS  Y13, Y15, Y3;       \
	VBROADCASTSS (R8)(R9*2), Y14;    \
	VFMADD231PS  Y12, Y14, Y4;       \
	VFMADD231PS  Y13, Y14, Y5;       \
	VBROADCASTSS (R11), Y15;         \
	VFMADD231PS  Y12, Y15, Y6;       \
	VFMADD231PS  Y13, Y15, Y7;       \
	VBROADCASTSS (R11)(R9*1), Y14;   \
	VFMADD231PS  Y12, Y14, Y8;       \
	VFMADD231PS  Y13, Y14, Y9;       \
	VBROADCASTSS (R11)(R9*2), Y15;   \
	VFMADD231PS  Y12, Y15, Y10;      \
	VFMADD231PS  Y13, Y15, Y11;      \
	ADDQ         R10, R8;            \
	ADDQ         R10, R11;           \
	ADDQ         R12, BX

// func sgemmKernel6x16AVX2(k int, a *float32, rsA, csA int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, betaZero int)
TEXT ·sgemmKernel6x16AVX2(SB), NOSPLIT, $0-80
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), R8
	MOVQ rsA+16(FP), R9
	MOVQ csA+24(FP), R10
	MOVQ b+32(FP), BX
	MOVQ ldb+40(FP), R12
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), R13

	SHLQ $2, R9
	SHLQ $2, R10
	SHLQ $2, R12
	SHLQ $2, R13
	LEAQ (R8)(R9*2), R11
	ADDQ R9, R11
	LEAQ (DX)(R13*2), R14
	ADDQ R13, R14

	// Touch the C tile early so that its lines are on their way by the
	// time the accumulators are written back.
	PREFETCHT0 (DX)
	PREFETCHT0 60(DX)
	PREFETCHT0 (DX)(R13*1)
	PREFETCHT0 60(DX)(R13*1)
	PREFETCHT0 (DX)(R13*2)
	PREFETCHT0 60(DX)(R13*2)
	PREFETCHT0 (R14)
	PREFETCHT0 60(R14)
	PREFETCHT0 (R14)(R13*1)
	PREFETCHT0 60(R14)(R13*1)
	PREFETCHT0 (R14)(R13*2)
	PREFETCHT0 60(R14)(R13*2)

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	MOVQ CX, AX
	SHRQ $2, AX
	JZ   tail

loop4:
	KSTEP
	KSTEP
	KSTEP
	KSTEP
	DECQ AX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   epilogue

loop1:
	KSTEP
	DECQ CX
	JNZ  loop1

epilogue:
	VBROADCASTSS alpha+64(FP), Y14
	VMULPS       Y14, Y0, Y0
	VMULPS       Y14, Y1, Y1
	VMULPS       Y14, Y2, Y2
	VMULPS       Y14, Y3, Y3
	VMULPS       Y14, Y4, Y4
	VMULPS       Y14, Y5, Y5
	VMULPS       Y14, Y6, Y6
	VMULPS       Y14, Y7, Y7
	VMULPS       Y14, Y8, Y8
	VMULPS       Y14, Y9, Y9
	VMULPS       Y14, Y10, Y10
	VMULPS       Y14, Y11, Y11

	// beta = 0 must not read C (it may hold NaN or Inf).
	MOVQ  betaZero+72(FP), AX
	TESTQ AX, AX
	JNZ   store

	VBROADCASTSS beta+68(FP), Y15
	VFMADD231PS  (DX), Y15, Y0
	VFMADD231PS  32(DX), Y15, Y1
	VFMADD231PS  (DX)(R13*1), Y15, Y2
	VFMADD231PS  32(DX)(R13*1), Y15, Y3
	VFMADD231PS  (DX)(R13*2), Y15, Y4
	VFMADD231PS  32(DX)(R13*2), Y15, Y5
	VFMADD231PS  (R14), Y15, Y6
	VFMADD231PS  32(R14), Y15, Y7
	VFMADD231PS  (R14)(R13*1), Y15, Y8
	VFMADD231PS  32(R14)(R13*1), Y15, Y9
	VFMADD231PS  (R14)(R13*2), Y15, Y10
	VFMADD231PS  32(R14)(R13*2), Y15, Y11

store:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, (DX)(R13*1)
	VMOVUPS Y3, 32(DX)(R13*1)
	VMOVUPS Y4, (DX)(R13*2)
	VMOVUPS Y5, 32(DX)(R13*2)
	VMOVUPS Y6, (R14)
	VMOVUPS Y7, 32(R14)
	VMOVUPS Y8, (R14)(R13*1)
	VMOVUPS Y9, 32(R14)(R13*1)
	VMOVUPS Y10, (R14)(R13*2)
	VMOVUPS Y11, 32(R14)(R13*2)
	VZEROUPPER
	RET

// func cpuidex(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuidex(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL subleaf+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax, edx uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// TRANSPOSE8 transposes the 8×8 block of floats held in Y0..Y7 (row i in
// Yi) into Y8..Y15 (column j in Y(8+j)), clobbering Y0..Y7.
#define TRANSPOSE8 \
	VUNPCKLPS  Y1, Y0, Y8;         \
	VUNPCKHPS  Y1, Y0, Y9;         \
	VUNPCKLPS  Y3, Y2, Y10;        \
	VUNPCKHPS  Y3, Y2, Y11;        \
	VUNPCKLPS  Y5, Y4, Y12;        \
	VUNPCKHPS  Y5, Y4, Y13;        \
	VUNPCKLPS  Y7, Y6, Y14;        \
	VUNPCKHPS  Y7, Y6, Y15;        \
	VSHUFPS    $0x44, Y10, Y8, Y0; \
	VSHUFPS    $0xEE, Y10, Y8, Y1; \
	VSHUFPS    $0x44, Y11, Y9, Y2; \
	VSHUFPS    $0xEE, Y11, Y9, Y3; \
	VSHUFPS    $0x44, Y14, Y12, Y4; \
	VSHUFPS    $0xEE, Y14, Y12, Y5; \
	VSHUFPS    $0x44, Y15, Y13, Y6; \
	VSHUFPS    $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8;  \
	VPERM2F128 $0x20, Y5, Y1, Y9;  \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// func packB16TAVX2(dst, src *float32, ldb, kc8 int)
//
// Packs a 16-column panel of op(B) = Bᵀ: dst[q·16 + j] = src[j·ldb + q]
// for j < 16, q < 8·kc8, as two 8×8 transposes per 8 k steps.
TEXT ·packB16TAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), BX
	MOVQ kc8+24(FP), CX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), DX        // 3·ldb
	TESTQ CX, CX
	JZ   pbt_done

pbt_loop:
	// Rows j = 0..7 of this k block: src + j·ldb.
	MOVQ       SI, R8
	LEAQ       (SI)(BX*4), R9
	VMOVUPS    (R8), Y0
	VMOVUPS    (R8)(BX*1), Y1
	VMOVUPS    (R8)(BX*2), Y2
	VMOVUPS    (R8)(DX*1), Y3
	VMOVUPS    (R9), Y4
	VMOVUPS    (R9)(BX*1), Y5
	VMOVUPS    (R9)(BX*2), Y6
	VMOVUPS    (R9)(DX*1), Y7
	TRANSPOSE8
	VMOVUPS    Y8, (DI)
	VMOVUPS    Y9, 64(DI)
	VMOVUPS    Y10, 128(DI)
	VMOVUPS    Y11, 192(DI)
	VMOVUPS    Y12, 256(DI)
	VMOVUPS    Y13, 320(DI)
	VMOVUPS    Y14, 384(DI)
	VMOVUPS    Y15, 448(DI)

	// Rows j = 8..15.
	LEAQ       (R9)(BX*4), R8
	LEAQ       (R8)(BX*4), R9
	VMOVUPS    (R8), Y0
	VMOVUPS    (R8)(BX*1), Y1
	VMOVUPS    (R8)(BX*2), Y2
	VMOVUPS    (R8)(DX*1), Y3
	VMOVUPS    (R9), Y4
	VMOVUPS    (R9)(BX*1), Y5
	VMOVUPS    (R9)(BX*2), Y6
	VMOVUPS    (R9)(DX*1), Y7
	TRANSPOSE8
	VMOVUPS    Y8, 32(DI)
	VMOVUPS    Y9, 96(DI)
	VMOVUPS    Y10, 160(DI)
	VMOVUPS    Y11, 224(DI)
	VMOVUPS    Y12, 288(DI)
	VMOVUPS    Y13, 352(DI)
	VMOVUPS    Y14, 416(DI)
	VMOVUPS    Y15, 480(DI)

	ADDQ $32, SI               // next 8 k steps of each row
	ADDQ $512, DI              // 8 k steps of 16 floats
	DECQ CX
	JNZ  pbt_loop

pbt_done:
	VZEROUPPER
	RET

// func packA6NAVX2(dst, src *float32, lda, kc8 int)
//
// Packs a 6-row panel of op(A) = A: dst[q·6 + i] = src[i·lda + q] for
// i < 6, q < 8·kc8, as an 8×8 transpose (two zero rows) per 8 k steps
// whose columns are stored 6 floats apart.
TEXT ·packA6NAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lda+16(FP), BX
	MOVQ kc8+24(FP), CX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), DX        // 3·lda
	TESTQ CX, CX
	JZ   pan_done

pan_loop:
	LEAQ       (SI)(BX*4), R9
	VMOVUPS    (SI), Y0
	VMOVUPS    (SI)(BX*1), Y1
	VMOVUPS    (SI)(BX*2), Y2
	VMOVUPS    (SI)(DX*1), Y3
	VMOVUPS    (R9), Y4
	VMOVUPS    (R9)(BX*1), Y5
	VXORPS     Y6, Y6, Y6
	VXORPS     Y7, Y7, Y7
	TRANSPOSE8
	// Column q: floats 0..3 in the low lane, 4..5 in the high lane.
	VMOVUPS      X8, (DI)
	VEXTRACTF128 $1, Y8, X0
	VMOVLPS      X0, 16(DI)
	VMOVUPS      X9, 24(DI)
	VEXTRACTF128 $1, Y9, X1
	VMOVLPS      X1, 40(DI)
	VMOVUPS      X10, 48(DI)
	VEXTRACTF128 $1, Y10, X2
	VMOVLPS      X2, 64(DI)
	VMOVUPS      X11, 72(DI)
	VEXTRACTF128 $1, Y11, X3
	VMOVLPS      X3, 88(DI)
	VMOVUPS      X12, 96(DI)
	VEXTRACTF128 $1, Y12, X4
	VMOVLPS      X4, 112(DI)
	VMOVUPS      X13, 120(DI)
	VEXTRACTF128 $1, Y13, X5
	VMOVLPS      X5, 136(DI)
	VMOVUPS      X14, 144(DI)
	VEXTRACTF128 $1, Y14, X6
	VMOVLPS      X6, 160(DI)
	VMOVUPS      X15, 168(DI)
	VEXTRACTF128 $1, Y15, X7
	VMOVLPS      X7, 184(DI)

	ADDQ $32, SI               // next 8 k steps of each row
	ADDQ $192, DI              // 8 k steps of 6 floats
	DECQ CX
	JNZ  pan_loop

pan_done:
	VZEROUPPER
	RET

// func packB16NAVX2(dst, src *float32, ldb, kc int)
//
// Packs a 16-column panel of op(B) = B: dst[q·16 + j] = src[q·ldb + j].
TEXT ·packB16NAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), BX
	MOVQ kc+24(FP), CX
	SHLQ $2, BX
	TESTQ CX, CX
	JZ   pbn_done

pbn_loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    BX, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     pbn_loop

pbn_done:
	VZEROUPPER
	RET

// func packA6TAVX2(dst, src *float32, lda, kc, panels int)
//
// Packs panels 6-row panels of op(A) = Aᵀ: dst[p·6·kc + q·6 + i] =
// src[q·lda + p·6 + i] for p < panels, q < kc, i < 6. The outer loop walks
// the rows of the stored A, so that each cache line of it is read once.
TEXT ·packA6TAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lda+16(FP), BX
	MOVQ kc+24(FP), CX
	MOVQ panels+32(FP), R10
	SHLQ $2, BX
	LEAQ (CX)(CX*2), R11
	SHLQ $3, R11               // panel stride in bytes: 6·kc·4
	TESTQ CX, CX
	JZ   pat_done
	TESTQ R10, R10
	JZ   pat_done

pat_row:
	MOVQ SI, R8                // this row of A
	MOVQ DI, R9                // k step q of panel 0
	MOVQ R10, AX

pat_panel:
	VMOVUPS (R8), X0
	VMOVSD  16(R8), X1
	VMOVUPS X0, (R9)
	VMOVSD  X1, 16(R9)
	ADDQ    $24, R8
	ADDQ    R11, R9
	DECQ    AX
	JNZ     pat_panel

	ADDQ BX, SI
	ADDQ $24, DI
	DECQ CX
	JNZ  pat_row

pat_done:
	RET

// The 16-bit forms of packB16T and packB16N, for a bf16 or f16 weight B
// (ldb in elements, two bytes each): the same packed layout, each value
// widened to float32 on the way in — bf16 by zero-extending to 32 bits and
// shifting into the top half (exact), f16 with VCVTPH2PS (F16C, exact).
#define WIDEN_BF16(src, y) VPMOVZXWD src, y; VPSLLD $16, y, y
#define WIDEN_F16(src, y) VCVTPH2PS src, y

// HALF_ROWS8 widens k steps q..q+7 of the eight rows at R8, R8+ldb, …,
// R9+3·ldb (R9 = R8 + 4·ldb; ldb bytes in BX, 3·ldb in DX) into Y0..Y7.
#define HALF_ROWS8(WIDEN) \
	WIDEN((R8), Y0) \
	WIDEN((R8)(BX*1), Y1) \
	WIDEN((R8)(BX*2), Y2) \
	WIDEN((R8)(DX*1), Y3) \
	WIDEN((R9), Y4) \
	WIDEN((R9)(BX*1), Y5) \
	WIDEN((R9)(BX*2), Y6) \
	WIDEN((R9)(DX*1), Y7)

// STORE_COLS8 stores Y8..Y15, eight k steps of eight columns, at
// DI+off, DI+off+64, …: the columns' place in eight 16-float rows of dst.
#define STORE_COLS8(off) \
	VMOVUPS Y8, (off+0)(DI) \
	VMOVUPS Y9, (off+64)(DI) \
	VMOVUPS Y10, (off+128)(DI) \
	VMOVUPS Y11, (off+192)(DI) \
	VMOVUPS Y12, (off+256)(DI) \
	VMOVUPS Y13, (off+320)(DI) \
	VMOVUPS Y14, (off+384)(DI) \
	VMOVUPS Y15, (off+448)(DI)

// The bodies take dst in DI, src in SI, ldb in BX and the count in CX.
#define PACK_B16T_HALF(WIDEN) \
	SHLQ $1, BX \
	LEAQ (BX)(BX*2), DX \
	TESTQ CX, CX \
	JZ   half_done \
half_loop: \
	MOVQ    SI, R8 \
	LEAQ    (SI)(BX*4), R9 \
	HALF_ROWS8(WIDEN) \
	TRANSPOSE8 \
	STORE_COLS8(0) \
	LEAQ    (R9)(BX*4), R8 \
	LEAQ    (R8)(BX*4), R9 \
	HALF_ROWS8(WIDEN) \
	TRANSPOSE8 \
	STORE_COLS8(32) \
	ADDQ $16, SI \
	ADDQ $512, DI \
	DECQ CX \
	JNZ  half_loop \
half_done: \
	VZEROUPPER \
	RET

#define PACK_B16N_HALF(WIDEN) \
	SHLQ $1, BX \
	TESTQ CX, CX \
	JZ   half_done \
half_loop: \
	WIDEN((SI), Y0) \
	WIDEN(16(SI), Y1) \
	VMOVUPS Y0, (DI) \
	VMOVUPS Y1, 32(DI) \
	ADDQ    BX, SI \
	ADDQ    $64, DI \
	DECQ    CX \
	JNZ     half_loop \
half_done: \
	VZEROUPPER \
	RET

// func packB16TBF16AVX2(dst *float32, src *uint16, ldb, kc8 int)
TEXT ·packB16TBF16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), BX
	MOVQ kc8+24(FP), CX
	PACK_B16T_HALF(WIDEN_BF16)

// func packB16TF16AVX2(dst *float32, src *uint16, ldb, kc8 int)
TEXT ·packB16TF16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), BX
	MOVQ kc8+24(FP), CX
	PACK_B16T_HALF(WIDEN_F16)

// func packB16NBF16AVX2(dst *float32, src *uint16, ldb, kc int)
TEXT ·packB16NBF16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), BX
	MOVQ kc+24(FP), CX
	PACK_B16N_HALF(WIDEN_BF16)

// func packB16NF16AVX2(dst *float32, src *uint16, ldb, kc int)
TEXT ·packB16NF16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), BX
	MOVQ kc+24(FP), CX
	PACK_B16N_HALF(WIDEN_F16)
