//go:build amd64 && !purego

#include "textflag.h"

// AVX2/FMA float32 e^x, eight lanes at a time: the algorithm and constants
// of exp.go, step for step, so that the portable exp32 is its reference.
// Each kernel takes slices; the elements past the last multiple of eight
// go through VMASKMOVPS loads and stores with a mask from expMask<>, so no
// kernel reads or writes outside its slices.
//
// Register use, common to the kernels:
//
//	Y9  1.0 (also 0x3f800000, the exponent bias in place)
//	Y10 −ln2Lo    Y11 −ln2Hi    Y12 1.5·2²³ (also its bits)
//	Y13 log₂e     Y14 expMax    Y15 expMin
//
// and the coefficients of q come from memory (expQ<>, 32 bytes each).

// expConst<> holds the scalars the kernels broadcast.
DATA expConst<>+0(SB)/4, $0xc2d00000  // expMin = −104
DATA expConst<>+4(SB)/4, $0x42b20000  // expMax = 89
DATA expConst<>+8(SB)/4, $0x3fb8aa3b  // log₂e
DATA expConst<>+12(SB)/4, $0x4b400000 // 1.5·2²³
DATA expConst<>+16(SB)/4, $0xbf317200 // −ln2Hi
DATA expConst<>+20(SB)/4, $0xb5bfbe8e // −ln2Lo
DATA expConst<>+24(SB)/4, $0x3f800000 // 1
DATA expConst<>+28(SB)/4, $0x80000000 // the sign bit
DATA expConst<>+32(SB)/4, $0xff800000 // −Inf
GLOBL expConst<>(SB), RODATA|NOPTR, $36

// expQ<> is q's coefficients, highest degree first, each in all 8 lanes.
#define EXPQ(off, bits) \
	DATA expQ<>+(off+0)(SB)/4, $bits;  \
	DATA expQ<>+(off+4)(SB)/4, $bits;  \
	DATA expQ<>+(off+8)(SB)/4, $bits;  \
	DATA expQ<>+(off+12)(SB)/4, $bits; \
	DATA expQ<>+(off+16)(SB)/4, $bits; \
	DATA expQ<>+(off+20)(SB)/4, $bits; \
	DATA expQ<>+(off+24)(SB)/4, $bits; \
	DATA expQ<>+(off+28)(SB)/4, $bits

EXPQ(0, 0x3ab50581)   // expQ6
EXPQ(32, 0x3c092038)  // expQ5
EXPQ(64, 0x3d2aac98)  // expQ4
EXPQ(96, 0x3e2aaa44)  // expQ3
EXPQ(128, 0x3efffffe) // expQ2
GLOBL expQ<>(SB), RODATA|NOPTR, $160

// expMask<>+32−4k is a mask of k ≤ 8 leading lanes.
DATA expMask<>+0(SB)/8, $-1
DATA expMask<>+8(SB)/8, $-1
DATA expMask<>+16(SB)/8, $-1
DATA expMask<>+24(SB)/8, $-1
DATA expMask<>+32(SB)/8, $0
DATA expMask<>+40(SB)/8, $0
DATA expMask<>+48(SB)/8, $0
DATA expMask<>+56(SB)/8, $0
GLOBL expMask<>(SB), RODATA|NOPTR, $64

// EXPCONST loads Y9..Y15.
#define EXPCONST \
	VBROADCASTSS expConst<>+24(SB), Y9;  \
	VBROADCASTSS expConst<>+20(SB), Y10; \
	VBROADCASTSS expConst<>+16(SB), Y11; \
	VBROADCASTSS expConst<>+12(SB), Y12; \
	VBROADCASTSS expConst<>+8(SB), Y13;  \
	VBROADCASTSS expConst<>+4(SB), Y14;  \
	VBROADCASTSS expConst<>+0(SB), Y15

// EXP sets X = e^X, using T, U, V. VMAXPS and VMINPS return their second
// source (Intel order; the first operand here) when either is NaN, so a
// NaN in X survives the clamp.
#define EXP(X, T, U, V) \
	VMAXPS       X, Y15, X;                \ // clamp to [expMin, expMax]
	VMINPS       X, Y14, X;                \
	VMOVAPS      Y12, T;                   \
	VFMADD231PS  X, Y13, T;                \ // t = x·log₂e + 1.5·2²³
	VSUBPS       Y12, T, U;                \ // n = t − 1.5·2²³
	VFMADD231PS  U, Y11, X;                \ // r = x − n·ln2Hi (exact)
	VFMADD231PS  U, Y10, X;                \ //     − n·ln2Lo
	VMULPS       X, X, U;                  \ // r²
	VMOVUPS      expQ<>+0(SB), V;          \
	VFMADD213PS  expQ<>+32(SB), X, V;      \
	VFMADD213PS  expQ<>+64(SB), X, V;      \
	VFMADD213PS  expQ<>+96(SB), X, V;      \
	VFMADD213PS  expQ<>+128(SB), X, V;     \ // q(r)
	VFMADD213PS  X, U, V;                  \ // r + r²·q(r)
	VADDPS       Y9, V, V;                 \ // p = 1 + …
	VPSUBD       Y12, T, T;                \ // n as an integer
	VPSRAD       $1, T, U;                 \ // n₁ = ⌊n/2⌋
	VPSUBD       U, T, T;                  \ // n₂ = n − n₁
	VPSLLD       $23, U, U;                \
	VPADDD       Y9, U, U;                 \ // 2^n₁
	VPSLLD       $23, T, T;                \
	VPADDD       Y9, T, T;                 \ // 2^n₂
	VMULPS       U, V, V;                  \
	VMULPS       T, V, X                     // p·2^n₁·2^n₂

// TAILMASK sets M to the mask of the first R (1…7) lanes; it clobbers R.
#define TAILMASK(R, M) \
	LEAQ    expMask<>+32(SB), AX; \
	SHLQ    $2, R;                \
	SUBQ    R, AX;                \
	VMOVDQU (AX), M

// HSUM8 sets the low float of X (the XMM half of Y) to the sum of Y's
// eight lanes; T is a temporary XMM register.
#define HSUM8(Y, X, T) \
	VEXTRACTF128 $1, Y, T; \
	VADDPS       T, X, X;  \
	VMOVHLPS     X, X, T;  \
	VADDPS       T, X, X;  \
	VMOVSHDUP    X, T;     \
	VADDSS       T, X, X

// func expSubAVX2(dst, src []float32, m float32) float32
TEXT ·expSubAVX2(SB), NOSPLIT, $0-60
	MOVQ         dst_base+0(FP), DI
	MOVQ         src_base+24(FP), SI
	MOVQ         src_len+32(FP), CX
	VBROADCASTSS m+48(FP), Y8
	EXPCONST
	VXORPS       Y7, Y7, Y7        // the sum
	MOVQ         CX, DX
	SHRQ         $3, CX
	JZ           es_tail

es_loop:
	VMOVUPS (SI), Y0
	VSUBPS  Y8, Y0, Y0
	EXP(Y0, Y1, Y2, Y3)
	VMOVUPS Y0, (DI)
	VADDPS  Y0, Y7, Y7
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     es_loop

es_tail:
	ANDQ       $7, DX
	JZ         es_done
	TAILMASK(DX, Y6)
	VMASKMOVPS (SI), Y6, Y0
	VSUBPS     Y8, Y0, Y0
	EXP(Y0, Y1, Y2, Y3)
	VMASKMOVPS Y0, Y6, (DI)
	VANDPS     Y6, Y0, Y0          // the lanes past the end add nothing
	VADDPS     Y0, Y7, Y7

es_done:
	HSUM8(Y7, X7, X0)
	VMOVSS     X7, ret+56(FP)
	VZEROUPPER
	RET

// SIGMOID sets X = σ(X) using T, U, V, W: with e = e^−|x|,
// σ = (x < 0 ? e : 1) / (1 + e), the sign taken from the sign bit. Y5
// holds the sign bit.
#define SIGMOID(X, T, U, V, W) \
	VORPS     Y5, X, W;    \ // −|x|
	EXP(W, T, U, V);       \ // e
	VADDPS    Y9, W, T;    \ // 1 + e
	VBLENDVPS X, W, Y9, U; \ // sign(x) ? e : 1
	VDIVPS    T, U, X

// func sigmoidAVX2(dst, src []float32)
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-48
	MOVQ         dst_base+0(FP), DI
	MOVQ         src_base+24(FP), SI
	MOVQ         src_len+32(FP), CX
	EXPCONST
	VBROADCASTSS expConst<>+28(SB), Y5
	MOVQ         CX, DX
	SHRQ         $3, CX
	JZ           sg_tail

sg_loop:
	VMOVUPS (SI), Y0
	SIGMOID(Y0, Y1, Y2, Y3, Y4)
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     sg_loop

sg_tail:
	ANDQ       $7, DX
	JZ         sg_done
	TAILMASK(DX, Y6)
	VMASKMOVPS (SI), Y6, Y0
	SIGMOID(Y0, Y1, Y2, Y3, Y4)
	VMASKMOVPS Y0, Y6, (DI)

sg_done:
	VZEROUPPER
	RET

// func maxAVX2(x []float32) float32
//
// Four accumulators, 32 elements a step. VMAXPS returns its second source
// (Intel order) when either is NaN: the accumulator is that source, so
// NaNs are skipped.
TEXT ·maxAVX2(SB), NOSPLIT, $0-28
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSS expConst<>+32(SB), Y0
	VMOVAPS      Y0, Y1
	VMOVAPS      Y0, Y2
	VMOVAPS      Y0, Y3
	VMOVAPS      Y0, Y8            // −Inf, for the tail
	MOVQ         CX, DX
	SHRQ         $5, CX
	JZ           mx_eight

mx_loop:
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VMAXPS  Y0, Y4, Y0
	VMAXPS  Y1, Y5, Y1
	VMAXPS  Y2, Y6, Y2
	VMAXPS  Y3, Y7, Y3
	ADDQ    $128, SI
	DECQ    CX
	JNZ     mx_loop

mx_eight:
	MOVQ DX, CX
	ANDQ $31, DX
	SHRQ $3, DX
	JZ   mx_tail

mx_eight_loop:
	VMOVUPS (SI), Y4
	VMAXPS  Y0, Y4, Y0
	ADDQ    $32, SI
	DECQ    DX
	JNZ     mx_eight_loop

mx_tail:
	ANDQ       $7, CX
	JZ         mx_done
	TAILMASK(CX, Y6)
	VMASKMOVPS (SI), Y6, Y4
	VBLENDVPS  Y6, Y4, Y8, Y4     // −Inf in the lanes past the end
	VMAXPS     Y1, Y4, Y1

mx_done:
	VMAXPS       Y1, Y0, Y0
	VMAXPS       Y3, Y2, Y2
	VMAXPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0
	VMOVSS       X0, ret+24(FP)
	VZEROUPPER
	RET
