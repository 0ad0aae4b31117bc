package tensor

import "math"

// Vectorised float32 e^x for the softmax and sigmoid kernels.
//
// The package-level entry points are
//
//	expSub(dst, src, m)  dst[i] = e^(src[i]−m), returning Σ dst[i]
//	sigmoid(dst, src)    dst[i] = 1/(1 + e^−src[i])
//	rowMax(x)            the largest element of x
//
// expSub and rowMax together are the softmax / log-sum-exp primitive: for a
// row z, m := rowMax(z); s := expSub(p, z, m) leaves the unnormalised
// probabilities in p and log Σ e^z = m + log s. Cross-entropy uses them
// (activation.go) and so does attention (attention.go), whose rows of
// scores are the same problem: p_j = e^(s_j − m) with m the running row
// maximum, or recomputed in the backward pass as e^(s_j − lse).
//
// On amd64 with AVX2 and FMA they run in assembly eight lanes at a time
// (exp_amd64.s); elsewhere, and under the purego build tag, in the portable
// Go below, which is the same algorithm one element at a time and the
// reference the assembly is tested against.
//
// # The algorithm
//
// e^x = 2ⁿ · e^r with n = round(x·log₂e) and r = x − n·ln2, |r| ≤ ln2/2:
//
//  1. Clamp x to [expMin, expMax] (NaN passes through). Below expMin the
//     result rounds to 0, above expMax it overflows to +Inf, and the clamp
//     keeps n within what steps 2 and 5 handle.
//  2. n by the round-to-integer trick: t = x·log₂e + 1.5·2²³ has n in the
//     low bits of its mantissa, and t − 1.5·2²³ = n exactly.
//  3. Cody–Waite reduction with ln2 split into ln2Hi, whose 16 significant
//     bits make n·ln2Hi exact for |n| ≤ 2⁸, and ln2Lo = ln2 − ln2Hi:
//     r = (x − n·ln2Hi) − n·ln2Lo. The first subtraction is exact.
//  4. e^r ≈ 1 + (r + r²·q(r)) with q of degree 4, fitted minimax for the
//     relative error on [−0.3505, 0.3505] (just wider than ln2/2 so that
//     an n rounded the other way at a half-integer is still covered); its
//     error is 6e-9, a tenth of a float32 ulp. Adding the 1 last keeps the
//     rounding error of the small terms small.
//  5. Scale by 2ⁿ as two factors 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), each built by
//     putting its exponent into the bits of a float32. n ranges over
//     [−150, 128]: one factor cannot hold all of it, but two normal ones
//     can, and multiplying by them in turn rounds subnormal results once,
//     correctly, and lets large ones overflow to +Inf. A NaN stays NaN
//     through the multiplications whatever the scale factors' bits are.
//
// Measured against float64 math.Exp over every float32 in [expMin, expMax]
// the error is at most 1.02 ulp of the float32 result (0.99 for the
// portable code), subnormal results included, and σ's at most 2.4 ulp;
// exp_test.go checks a sample of them on every run, all of them with
// PACA_EXP_EXHAUSTIVE=1.
const (
	expMin = -104 // e^−104 < 2⁻¹⁵⁰: rounds to 0
	expMax = 89   // e^89 > MaxFloat32: overflows to +Inf

	log2e   = 1.44269504088896340736 // 0x3fb8aa3b as a float32
	shifter = 1.5 * (1 << 23)        // 0x4b400000
	ln2Hi   = 0.693145751953125      // 0x3f317200: ln2 to 16 bits
	ln2Lo   = 1.428606765330187e-06  // 0x35bfbe8e: ln2 − ln2Hi

	// q(r) = expQ2 + expQ3·r + expQ4·r² + expQ5·r³ + expQ6·r⁴
	expQ2 = 0.4999999403953552    // 0x3efffffe
	expQ3 = 0.16666513681411743   // 0x3e2aaa44
	expQ4 = 0.04166850447654724   // 0x3d2aac98
	expQ5 = 0.008369497954845428  // 0x3c092038
	expQ6 = 0.0013810844393447042 // 0x3ab50581
)

// expBlock is how many elements expSub sums in float32 before adding
// them to its float64 total.
const expBlock = 1024

// exp32 returns e^x by the algorithm above, one element at a time.
func exp32(x float32) float32 {
	x = min(max(x, expMin), expMax)
	t := x*log2e + shifter
	n := t - shifter
	r := x - n*ln2Hi
	r -= n * ln2Lo
	q := (((expQ6*r+expQ5)*r+expQ4)*r+expQ3)*r + expQ2
	p := 1 + (q*(r*r) + r)
	k := int32(math.Float32bits(t) - math.Float32bits(shifter))
	k1 := k >> 1
	s1 := math.Float32frombits(uint32(k1+127) << 23)
	s2 := math.Float32frombits(uint32(k-k1+127) << 23)
	return p * s1 * s2
}

// expSub sets dst[i] = e^(src[i]−m) for i < len(src) and returns the sum
// of those values. The sum is taken in float32 over blocks of expBlock
// elements and in float64 across blocks, so it keeps about seven digits
// over rows of any length. dst must be at least as long as src; dst and
// src may be the same slice.
//
// Kernels that need a softmax (cross-entropy, attention) call it on a row, or on chunks of a row into a small scratch buffer, with m
// the row's maximum (rowMax) or its log-sum-exp.
func expSub(dst, src []float32, m float32) float64 {
	dst = dst[:len(src)]
	var sum float64
	for len(src) > 0 {
		n := min(len(src), expBlock)
		sum += float64(expSubBlock(dst[:n], src[:n], m))
		dst, src = dst[n:], src[n:]
	}
	return sum
}

// sigmoid sets dst[i] = σ(src[i]) = 1/(1 + e^−src[i]) for i < len(src),
// computed as 1/(1+e) for src[i] ≥ 0 and e/(1+e) below, with
// e = e^−|src[i]| ≤ 1, so that neither tail overflows or cancels. dst
// must be at least as long as src; dst and src may be the same slice.
func sigmoid(dst, src []float32) {
	sigmoidBlock(dst[:len(src)], src)
}

// rowMax returns the largest element of x, ignoring NaNs; −Inf if x is
// empty or all NaN. (A NaN in a row still reaches the log-sum-exp through
// expSub, whose sum it turns into NaN.)
func rowMax(x []float32) float32 {
	return maxBlock(x)
}

// expSubGo is expSub's portable kernel for one block.
func expSubGo(dst, src []float32, m float32) float32 {
	dst = dst[:len(src)]
	var sum float32
	for i, x := range src {
		e := exp32(x - m)
		dst[i] = e
		sum += e
	}
	return sum
}

// sigmoidGo is sigmoid's portable kernel.
func sigmoidGo(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		e := exp32(math.Float32frombits(math.Float32bits(x) | 1<<31)) // e^−|x|
		num := float32(1)
		if math.Float32bits(x)>>31 != 0 {
			num = e
		}
		dst[i] = num / (1 + e)
	}
}

// maxGo is rowMax's portable kernel.
func maxGo(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}
