package tensor

import (
	"math"

	"github.com/x448/float16"
)

// Half-precision conversions. Checkpoints store weights as IEEE binary16
// (F16) or bfloat16 (BF16); tensors compute in float32. Both formats are
// carried as raw uint16 bit patterns so that callers can read them straight
// out of a file without an intermediate type.

// F16ToF32 converts IEEE binary16 bit patterns to float32. The conversion
// is exact. dst must be at least as long as src.
func F16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = float16.Frombits(h).Float32()
	}
}

// F32ToF16 converts float32 values to IEEE binary16 bit patterns, rounding
// to nearest even. Values too large become ±Inf; NaN stays NaN.
// dst must be at least as long as src.
func F32ToF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = float16.Fromfloat32(f).Bits()
	}
}

// BF16ToF32 converts bfloat16 bit patterns to float32. bfloat16 is the top
// half of a float32, so the conversion is exact. dst must be at least as
// long as src.
func BF16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = math.Float32frombits(uint32(b) << 16)
	}
}

// F32ToBF16 converts float32 values to bfloat16 bit patterns, rounding to
// nearest even. Finite values too large for bfloat16 round to ±Inf, as in
// IEEE arithmetic; NaN stays NaN (made quiet, sign kept).
// dst must be at least as long as src.
func F32ToBF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = f32ToBF16(f)
	}
}

// BF16Round returns x rounded to the nearest bfloat16 value (ties to even),
// as a float32. It is what storing x in a BF16 tensor and reading it back
// gives.
func BF16Round(x float32) float32 {
	return math.Float32frombits(uint32(f32ToBF16(x)) << 16)
}

// f32ToBF16 rounds one float32 to bfloat16 bits.
func f32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		// NaN: truncating could clear every mantissa bit and turn it into
		// Inf, so keep the sign and top payload bits and set the quiet bit.
		return uint16(u>>16) | 0x0040
	}
	// Adding 0x7fff rounds halfway cases up; adding the lowest kept bit as
	// well turns that into ties-to-even. A carry out of the mantissa bumps
	// the exponent, which is exactly right, including overflow to Inf.
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}
