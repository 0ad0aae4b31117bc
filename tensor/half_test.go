package tensor

import (
	"math"
	"testing"
)

func isNaN32(f float32) bool { return f != f }

func TestBF16RoundTripExhaustive(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	f := make([]float32, len(src))
	back := make([]uint16, len(src))
	BF16ToF32(f, src)
	F32ToBF16(back, f)
	for i, b := range src {
		if got := math.Float32bits(f[i]); got != uint32(b)<<16 {
			t.Fatalf("BF16ToF32(%#04x) = %#08x, want %#08x", b, got, uint32(b)<<16)
		}
		if isNaN32(f[i]) {
			if !isNaN32(math.Float32frombits(uint32(back[i]) << 16)) {
				t.Fatalf("NaN %#04x came back as non-NaN %#04x", b, back[i])
			}
			if back[i]&0x0040 == 0 {
				t.Fatalf("NaN %#04x came back as signalling NaN %#04x", b, back[i])
			}
			if back[i]&0x8000 != b&0x8000 {
				t.Fatalf("NaN %#04x lost its sign: %#04x", b, back[i])
			}
			continue
		}
		if back[i] != b {
			t.Fatalf("bf16 %#04x round-tripped to %#04x", b, back[i])
		}
	}
}

func TestF32ToBF16Rounding(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
		what string
	}{
		{0x3F800000, 0x3F80, "1.0 exact"},
		{0x3F808000, 0x3F80, "tie, even stays"},
		{0x3F818000, 0x3F82, "tie, odd rounds up to even"},
		{0x3F808001, 0x3F81, "just above tie"},
		{0x3F807FFF, 0x3F80, "just below tie"},
		{0xBF808000, 0xBF80, "negative tie, even stays"},
		{0xBF818000, 0xBF82, "negative tie, odd rounds away"},
		{0x3F80FFFF, 0x3F81, "rounds up"},
		{0x3FFFFFFF, 0x4000, "carry into exponent"},
		{0x7F7F0000, 0x7F7F, "max finite bf16"},
		{0x7F7F7FFF, 0x7F7F, "below overflow tie"},
		{0x7F7F8000, 0x7F80, "overflow tie rounds to Inf"},
		{0x7F7FFFFF, 0x7F80, "max float32 rounds to Inf"},
		{0xFF7FFFFF, 0xFF80, "min float32 rounds to -Inf"},
		{0x7F800000, 0x7F80, "+Inf"},
		{0xFF800000, 0xFF80, "-Inf"},
		{0x00000000, 0x0000, "+0"},
		{0x80000000, 0x8000, "-0"},
		{0x00000001, 0x0000, "smallest subnormal rounds to 0"},
		{0x00008000, 0x0000, "subnormal tie to even 0"},
		{0x00018000, 0x0002, "subnormal tie to even 2"},
		{0x00010000, 0x0001, "smallest bf16 subnormal"},
		{0x007F8000, 0x0080, "largest subnormal rounds to min normal"},
		{0x807FFFFF, 0x8080, "negative subnormal rounds to -min normal"},
	}
	for _, c := range cases {
		var out [1]uint16
		F32ToBF16(out[:], []float32{math.Float32frombits(c.in)})
		if out[0] != c.want {
			t.Errorf("%s: F32ToBF16(%#08x) = %#04x, want %#04x", c.what, c.in, out[0], c.want)
		}
		if got := math.Float32bits(BF16Round(math.Float32frombits(c.in))); got != uint32(c.want)<<16 {
			t.Errorf("%s: BF16Round(%#08x) = %#08x, want %#08x", c.what, c.in, got, uint32(c.want)<<16)
		}
	}
}

func TestF32ToBF16NaN(t *testing.T) {
	// NaNs whose payload lives only in the low 16 bits must not turn into Inf.
	for _, bits := range []uint32{0x7F800001, 0xFF800001, 0x7FC00000, 0x7F80FFFF, 0xFFFFFFFF} {
		var out [1]uint16
		F32ToBF16(out[:], []float32{math.Float32frombits(bits)})
		if !isNaN32(math.Float32frombits(uint32(out[0]) << 16)) {
			t.Errorf("F32ToBF16(%#08x) = %#04x, not NaN", bits, out[0])
		}
		if out[0]&0x8000 != uint16(bits>>16)&0x8000 {
			t.Errorf("F32ToBF16(%#08x) = %#04x, sign lost", bits, out[0])
		}
	}
}

func TestF16Known(t *testing.T) {
	cases := []struct {
		bits uint16
		f    float32
	}{
		{0x0000, 0},
		{0x3C00, 1},
		{0xC000, -2},
		{0x3555, 0.333251953125},
		{0x7BFF, 65504},
		{0x0400, 6.103515625e-05},       // min normal
		{0x0001, 5.960464477539063e-08}, // min subnormal
		{0x7C00, float32(math.Inf(1))},
		{0xFC00, float32(math.Inf(-1))},
	}
	src := make([]uint16, len(cases))
	for i, c := range cases {
		src[i] = c.bits
	}
	got := make([]float32, len(cases))
	F16ToF32(got, src)
	for i, c := range cases {
		if got[i] != c.f {
			t.Errorf("F16ToF32(%#04x) = %g, want %g", c.bits, got[i], c.f)
		}
	}
	back := make([]uint16, len(cases))
	F32ToF16(back, got)
	for i, c := range cases {
		if back[i] != c.bits {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.f, back[i], c.bits)
		}
	}

	// Rounding and overflow.
	var out [4]uint16
	F32ToF16(out[:], []float32{1 + 1.0/2048, 1 + 3.0/2048, 65520, float32(math.NaN())})
	if out[0] != 0x3C00 || out[1] != 0x3C02 {
		t.Errorf("F32ToF16 ties = %#04x %#04x, want 0x3c00 0x3c02", out[0], out[1])
	}
	if out[2] != 0x7C00 {
		t.Errorf("F32ToF16(65520) = %#04x, want Inf 0x7c00", out[2])
	}
	var nan [1]float32
	F16ToF32(nan[:], out[3:])
	if !isNaN32(nan[0]) {
		t.Errorf("F32ToF16(NaN) = %#04x, not NaN", out[3])
	}
}

func TestF16RoundTripExhaustive(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	f := make([]float32, len(src))
	back := make([]uint16, len(src))
	F16ToF32(f, src)
	F32ToF16(back, f)
	for i, b := range src {
		if isNaN32(f[i]) {
			continue
		}
		if back[i] != b {
			t.Fatalf("f16 %#04x round-tripped to %#04x", b, back[i])
		}
	}
}
