package tensor

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"unsafe"

	"github.com/x448/float16"
)

// DType is the element type of a tensor's storage. Every computation is in
// float32; the 16-bit types exist to hold frozen weights in half the
// memory. A bf16 or f16 tensor can be the second operand of Gemm (the
// weight of a linear layer, converted to float32 while the GEMM packs it),
// the table of GatherRows (an embedding) and the source of Convert — the
// operations a frozen weight takes part in. Every other kernel takes
// float32 tensors.
type DType uint8

const (
	Float32  DType = iota // IEEE binary32, the default
	BFloat16              // bfloat16: float32's sign, exponent and top 7 mantissa bits
	Float16               // IEEE binary16
)

var dtypeNames = [...]string{Float32: "f32", BFloat16: "bf16", Float16: "f16"}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Size is the number of bytes of one value.
func (d DType) Size() int {
	if d == Float32 {
		return 4
	}
	return 2
}

// ParseDType reads a dtype as the command line spells it: f32, bf16, f16,
// or the longer float32, bfloat16, float16.
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "f32", "float32", "fp32":
		return Float32, nil
	case "bf16", "bfloat16":
		return BFloat16, nil
	case "f16", "float16", "fp16":
		return Float16, nil
	}
	return 0, fmt.Errorf("unknown dtype %q (want f32, bf16 or f16)", s)
}

// MarshalText writes the dtype's short name (f32, bf16, f16).
func (d DType) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads any spelling ParseDType accepts, so that a DType
// works as a command-line flag (flag.TextVar) and in JSON.
func (d *DType) UnmarshalText(b []byte) error {
	v, err := ParseDType(string(b))
	if err == nil {
		*d = v
	}
	return err
}

// NewDType returns a zero-filled tensor of the given dtype and shape,
// accounted under c at dt.Size() bytes per value.
func NewDType(c Category, dt DType, shape ...int) *Tensor {
	if dt == Float32 {
		return New(c, shape...)
	}
	n := numel(shape)
	t, words := newPooled(c, shape, (n+1)/2, int64(n)*2) // two values per float32
	t.st.dtype = dt
	if n == 0 {
		t.st.half = []uint16{}
		return t
	}
	t.st.half = unsafe.Slice((*uint16)(unsafe.Pointer(&words[0])), n)
	return t
}

// DType reports the element type of t's storage.
func (t *Tensor) DType() DType { return t.st.dtype }

// Halves returns the raw 16-bit values of a bf16 or f16 tensor, row-major.
func (t *Tensor) Halves() []uint16 {
	if t.st.dtype == Float32 && t.st != released {
		panic(fmt.Sprintf("tensor: Halves of a float32 tensor %v", t.shape))
	}
	syncHost()
	return t.st.half
}

// Convert returns a copy of t stored as dt, accounted under c. Narrowing
// to bf16 or f16 rounds to nearest even; widening is exact.
func (t *Tensor) Convert(c Category, dt DType) *Tensor {
	if u, ok := convertOnDevice(c, t, dt); ok { // storage_device.go
		return u
	}
	u := NewDType(c, dt, t.shape...)
	syncHost() // queued device work (u's zeroing too) is done
	switch {
	case t.st.dtype == dt && dt == Float32:
		copy(u.st.data, t.st.data)
	case t.st.dtype == dt:
		copy(u.st.half, t.st.half)
	case dt == Float32:
		halfToF32(u.st.data, t.st.half, t.st.dtype)
	case t.st.dtype == Float32 && dt == BFloat16:
		F32ToBF16(u.st.half, t.st.data)
	case t.st.dtype == Float32 && dt == Float16:
		F32ToF16(u.st.half, t.st.data)
	default: // one 16-bit type to the other, through float32 (exact)
		w := t.Convert(Scratch, Float32)
		u.Release()
		u = w.Convert(c, dt)
		w.Release()
	}
	return u
}

// AsFloat32 returns t itself, with a new reference, when it is float32,
// and otherwise a float32 copy accounted under c. Either way the caller
// releases the result: it is how code that reads values on the host takes
// a weight that may be stored in 16 bits.
func (t *Tensor) AsFloat32(c Category) *Tensor {
	if t.st.dtype == Float32 {
		return t.Retain()
	}
	return t.Convert(c, Float32)
}

// halfToF32 widens 16-bit values of type dt into dst.
func halfToF32(dst []float32, src []uint16, dt DType) {
	if dt == BFloat16 {
		BF16ToF32(dst, src)
		return
	}
	tab := f16Table()
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = tab[h]
	}
}

// f16Table maps every binary16 bit pattern to its float32 value: a lookup
// is several times faster than decoding the fields, which matters where a
// GEMM widens a weight while packing it.
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = float16.Frombits(uint16(i)).Float32()
	}
	return &t
})

// halfIsFinite reports whether the 16-bit value h of type dt is finite.
func halfIsFinite(h uint16, dt DType) bool {
	if dt == BFloat16 {
		return h&0x7f80 != 0x7f80
	}
	return h&0x7c00 != 0x7c00
}

// bf16Bits is the float32 value of the bfloat16 h.
func bf16Bits(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
