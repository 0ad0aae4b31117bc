package tensor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/x448/float16"
)

// halfCase turns the B of a GEMM case into 16-bit values of type dt: b is
// rounded in place (so the float32 GEMM sees exactly the values the half
// one widens) and the bits are returned as a second case.
func halfCase(p gemmArgs, dt DType) (rounded, half gemmArgs) {
	bh := make([]uint16, len(p.b))
	if dt == BFloat16 {
		F32ToBF16(bh, p.b)
	} else {
		F32ToF16(bh, p.b)
	}
	halfToF32(p.b, bh, dt)
	half = p
	half.b, half.bh, half.bdt = nil, bh, dt
	half.c = append([]float32(nil), p.c...)
	return p, half
}

// TestGemmHalfB checks that a GEMM whose B is bf16 or f16 gives exactly
// what the float32 GEMM gives on the widened values, for both transposes,
// on every kernel, on one and several goroutines, with small cache blocks
// so that every packing loop runs.
func TestGemmHalfB(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	withBlocking(12, 16, 32, 1, func() {
		for _, impl := range gemmImpls() {
			for _, dt := range []DType{BFloat16, Float16} {
				for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
					for _, d := range [][3]int{{1, 1, 1}, {7, 33, 19}, {30, 17, 40}, {6, 16, 8}, {50, 70, 33}} {
						for _, beta := range []float32{0, 0.5} {
							for _, threads := range []int{1, 3} {
								f, h := halfCase(gemmCase(rng, tr[0], tr[1], d[0], d[1], d[2], 2, 1.5, beta), dt)
								impl.gemm(threads, f)
								impl.gemm(threads, h)
								for i := range f.c {
									if math.Float32bits(f.c[i]) != math.Float32bits(h.c[i]) && !(math.IsNaN(float64(f.c[i])) && math.IsNaN(float64(h.c[i]))) {
										t.Fatalf("%s %s tA=%v tB=%v %v β=%v threads=%d: C[%d] = %v, float32 GEMM gives %v",
											impl.name, dt, tr[0], tr[1], d, beta, threads, i, h.c[i], f.c[i])
									}
								}
							}
						}
					}
				}
			}
		}
	})
}

func TestGemmBackendHalfB(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := New(Scratch, 9, 20)
	w := New(Scratch, 11, 20)
	for _, s := range [][]float32{x.Data(), w.Data()} {
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
	}
	defer x.Release()
	defer w.Release()
	for _, dt := range []DType{BFloat16, Float16} {
		wh := w.Convert(Frozen, dt)
		w32 := wh.Convert(Scratch, Float32)
		want, got := New(Scratch, 9, 11), New(Scratch, 9, 11)
		backend.Gemm(false, true, 1, x, w32, 0, want)
		backend.Gemm(false, true, 1, x, wh, 0, got)
		assert.Equal(t, want.Data(), got.Data(), dt.String())
		for _, r := range []*Tensor{wh, w32, want, got} {
			r.Release()
		}
	}
}

func TestConvertRoundTrip(t *testing.T) {
	vals := []float32{0, 1, -2.5, 1e-3, 65504, 1e20, float32(math.Inf(-1)), 3.14159265}
	x := FromSlice(Scratch, append([]float32(nil), vals...), 2, 4)
	defer x.Release()
	for _, dt := range []DType{BFloat16, Float16} {
		h := x.Convert(Frozen, dt)
		assert.Equal(t, dt, h.DType())
		assert.Equal(t, []int{2, 4}, h.Shape())
		assert.Equal(t, 8, h.Len())
		back := h.AsFloat32(Scratch)
		for i, v := range vals {
			want := BF16Round(v)
			if dt == Float16 {
				want = float16.Fromfloat32(v).Float32()
			}
			assert.Equal(t, want, back.Data()[i], "%s of %v", dt, v)
		}
		// The other 16-bit type, and a copy of the same one.
		other := h.Convert(Scratch, BFloat16+Float16-dt)
		same := h.Clone(Scratch)
		assert.Equal(t, h.Halves(), same.Halves())
		assert.Equal(t, BFloat16+Float16-dt, other.DType())
		assert.True(t, h.HasNaN(), "the -Inf is not finite")
		for _, r := range []*Tensor{h, back, other, same} {
			r.Release()
		}
	}
	// AsFloat32 of a float32 tensor is the tensor itself.
	y := x.AsFloat32(Scratch)
	assert.Same(t, x, y)
	y.Release()
}

func TestHalfAccountingAndMisuse(t *testing.T) {
	before := MemStats()
	h := NewDType(Frozen, BFloat16, 3, 5)
	assert.Equal(t, int64(30), MemStats().Live[Frozen]-before.Live[Frozen])
	assert.Equal(t, make([]uint16, 15), h.Halves())
	h.SetCategory(Scratch)
	assert.Equal(t, int64(30), MemStats().Live[Scratch]-before.Live[Scratch])
	assert.PanicsWithValue(t, "tensor: Data of a bf16 tensor [3 5] (use AsFloat32)", func() { h.Data() })
	h.Release()
	assert.Equal(t, before.Live, MemStats().Live)

	f := New(Scratch, 2)
	assert.Panics(t, func() { f.Halves() })
	f.Release()

	// A pooled buffer that held other values comes back zeroed.
	for range 2 {
		z := NewDType(Scratch, Float16, 7)
		for i := range z.Halves() {
			require.Zero(t, z.Halves()[i])
			z.Halves()[i] = 0xffff
		}
		z.Release()
	}
}

func TestGatherRowsHalf(t *testing.T) {
	table := FromSlice(Scratch, []float32{1, 2, 3, 4, 5, 6.5, 7, 8, 9}, 3, 3)
	defer table.Release()
	for _, dt := range []DType{BFloat16, Float16} {
		h := table.Convert(Scratch, dt)
		got := New(Scratch, 2, 3)
		backend.GatherRows(got, h, []int32{2, 0})
		assert.Equal(t, []float32{7, 8, 9, 1, 2, 3}, got.Data())
		got.Release()
		h.Release()
	}
}

func TestParseDType(t *testing.T) {
	for s, want := range map[string]DType{"f32": Float32, "float32": Float32, "bf16": BFloat16, "BFloat16": BFloat16, "f16": Float16, "float16": Float16} {
		got, err := ParseDType(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	_, err := ParseDType("int8")
	assert.EqualError(t, err, `unknown dtype "int8" (want f32, bf16 or f16)`)
	assert.Equal(t, "bf16", BFloat16.String())
	assert.Equal(t, 2, Float16.Size())
}
