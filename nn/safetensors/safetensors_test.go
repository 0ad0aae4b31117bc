package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawFile writes a safetensors file with the given JSON header and data
// buffer, exactly as given, and returns its path.
func rawFile(t *testing.T, header string, data []byte) string {
	t.Helper()
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	b = append(b, data...)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

// openErr opens a file that must be rejected and returns the message.
func openErr(t *testing.T, header string, data []byte) string {
	t.Helper()
	path := rawFile(t, header, data)
	f, err := Open(path)
	require.Error(t, err)
	require.Nil(t, f)
	msg := err.Error()
	require.True(t, strings.HasPrefix(msg, "open "+path+": safetensors: "), "error %q does not name the file", msg)
	return strings.TrimPrefix(msg, "open "+path+": ")
}

func TestRoundTripAllDTypes(t *testing.T) {
	raw := func(name string, dt DType, shape []int) Tensor {
		n, ok := byteSize(dt, shape)
		require.True(t, ok)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + len(name))
		}
		return Tensor{Name: name, DType: dt, Shape: shape, Data: b}
	}
	f32 := []float32{1, -2.5, 3.25, float32(math.Inf(1)), 0, -0.125}
	tensors := []Tensor{
		F32Tensor("model.f32", []int{2, 3}, f32),
		F64Tensor("model.f64", []int{3}, []float64{1.0 / 3, -1e300, 2}),
		BF16Tensor("model.bf16", []int{3, 2}, f32),
		F16Tensor("model.f16", []int{6}, f32),
		I64Tensor("model.i64", []int{4}, []int64{0, -1, 1 << 40, math.MaxInt64}),
		F32Tensor("scalar", []int{}, []float32{7}),
		F32Tensor("empty", []int{0, 5}, nil),
		raw("t.bool", BOOL, []int{3}),
		raw("t.u8", U8, []int{5}),
		raw("t.i8", I8, []int{5}),
		raw("t.i16", I16, []int{3}),
		raw("t.u16", U16, []int{1, 3}),
		raw("t.i32", I32, []int{3}),
		raw("t.u32", U32, []int{3}),
		raw("t.u64", U64, []int{2}),
		raw("t.f8e4m3", F8E4M3, []int{3}),
		raw("t.f8e5m2", F8E5M2, []int{3}),
		raw("t.f8e8m0", F8E8M0, []int{1}),
	}
	md := map[string]string{"format": "pt", "note": `<"quoted" & é>`}
	path := filepath.Join(t.TempDir(), "out.safetensors")
	require.NoError(t, Write(path, tensors, md))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, md, f.Metadata())
	names := f.Names()
	require.Len(t, names, len(tensors))
	assert.IsIncreasing(t, names)
	for _, want := range tensors {
		info, ok := f.Info(want.Name)
		require.True(t, ok, want.Name)
		assert.Equal(t, want.DType, info.DType, want.Name)
		assert.Equal(t, want.Shape, info.Shape, want.Name)
		assert.Equal(t, want.Data, f.Raw(want.Name), want.Name)
		assert.Zero(t, info.Begin%int64(want.DType.Size()), "%s begins at %d, not aligned", want.Name, info.Begin)
	}

	got, err := f.Float32("model.f32")
	require.NoError(t, err)
	assert.Equal(t, f32, got)
	got, err = f.Float32("model.bf16")
	require.NoError(t, err)
	assert.Equal(t, f32, got) // all exactly representable
	got, err = f.Float32("model.f16")
	require.NoError(t, err)
	assert.Equal(t, f32, got)
	got, err = f.Float32("model.f64")
	require.NoError(t, err)
	assert.Equal(t, []float32{float32(1.0 / 3), float32(math.Inf(-1)), 2}, got)
	got64, err := f.Float64("model.f64")
	require.NoError(t, err)
	assert.Equal(t, []float64{1.0 / 3, -1e300, 2}, got64)
	got64, err = f.Float64("model.f32")
	require.NoError(t, err)
	assert.Equal(t, []float64{1, -2.5, 3.25, math.Inf(1), 0, -0.125}, got64)
	i64, err := f.Int64("model.i64")
	require.NoError(t, err)
	assert.Equal(t, []int64{0, -1, 1 << 40, math.MaxInt64}, i64)
	got, err = f.Float32("scalar")
	require.NoError(t, err)
	assert.Equal(t, []float32{7}, got)
	got, err = f.Float32("empty")
	require.NoError(t, err)
	assert.Empty(t, got)

	// Integer widening keeps signs and unsignedness.
	ints := filepath.Join(t.TempDir(), "ints.safetensors")
	require.NoError(t, Write(ints, []Tensor{
		{Name: "i8", DType: I8, Shape: []int{2}, Data: []byte{0xFF, 0x7F}},
		{Name: "u8", DType: U8, Shape: []int{2}, Data: []byte{0xFF, 0x01}},
		{Name: "i16", DType: I16, Shape: []int{2}, Data: []byte{0xFE, 0xFF, 0x00, 0x01}},
		{Name: "u16", DType: U16, Shape: []int{1}, Data: []byte{0xFF, 0xFF}},
		{Name: "i32", DType: I32, Shape: []int{1}, Data: []byte{0xFD, 0xFF, 0xFF, 0xFF}},
		{Name: "u32", DType: U32, Shape: []int{1}, Data: []byte{0xFF, 0xFF, 0xFF, 0xFF}},
	}, nil))
	fi, err := Open(ints)
	require.NoError(t, err)
	defer fi.Close()
	for name, want := range map[string][]int64{
		"i8": {-1, 127}, "u8": {255, 1}, "i16": {-2, 256}, "u16": {65535}, "i32": {-3}, "u32": {math.MaxUint32},
	} {
		v, err := fi.Int64(name)
		require.NoError(t, err, name)
		assert.Equal(t, want, v, name)
	}
	_, err = f.Int64("t.u64")
	assert.Error(t, err, "U64 may not fit in int64")
}

// TestWriteLayout checks what other readers rely on: a header padded to a
// multiple of 8, keys sorted, and a data buffer covered without gaps.
func TestWriteLayout(t *testing.T) {
	tensors := []Tensor{
		BF16Tensor("b", []int{3}, []float32{1, 2, 3}),
		I64Tensor("c", []int{1}, []int64{5}),
		F32Tensor("a", []int{1}, []float32{4}),
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	require.NoError(t, Write(path, tensors, nil))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n := binary.LittleEndian.Uint64(b)
	assert.Zero(t, n%8)
	hdr := string(b[8 : 8+n])
	assert.Equal(t, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},`+
		`"b":{"dtype":"BF16","shape":[3],"data_offsets":[12,18]},`+
		`"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, strings.TrimRight(hdr, " "))
	assert.Len(t, b, 8+int(n)+18)

	// Overwriting replaces the file and leaves no temporary behind.
	require.NoError(t, Write(path, tensors[:1], map[string]string{}))
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	f, err := Open(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, f.Names())
	assert.Equal(t, map[string]string{}, f.Metadata())
	require.NoError(t, f.Close())
	require.NoError(t, f.Close())
}

func TestBF16TensorRoundsToNearestEven(t *testing.T) {
	tie := math.Float32frombits(0x3F808000) // halfway between 1 and the next bf16
	up := math.Float32frombits(0x3F818000)
	tt := BF16Tensor("x", []int{2}, []float32{tie, up})
	assert.Equal(t, []byte{0x80, 0x3F, 0x82, 0x3F}, tt.Data)
}

func TestReadFixture(t *testing.T) {
	// testdata/tiny.safetensors is laid out as the reference writer does:
	// metadata first, tensors in offset order, space padding.
	f, err := Open("testdata/tiny.safetensors")
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, map[string]string{"format": "pt"}, f.Metadata())
	assert.Equal(t, []string{"lm_head.weight", "model.norm.weight"}, f.Names())
	w, err := f.Float32("lm_head.weight")
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, w)
	n, err := f.Float32("model.norm.weight")
	require.NoError(t, err)
	assert.Equal(t, []float32{1, -0.5, 0.25}, n)
	info, _ := f.Info("lm_head.weight")
	assert.Equal(t, []int{2, 3}, info.Shape)

	_, err = Open("testdata/truncated.safetensors")
	require.EqualError(t, err, `open testdata/truncated.safetensors: safetensors: tensor "model.norm.weight": `+
		`data_offsets [24, 30] run past the end of the data buffer (28 bytes)`)
}

func TestAccessorErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	require.NoError(t, Write(path, []Tensor{
		F32Tensor("w", []int{1}, []float32{1}),
		I64Tensor("idx", []int{1}, []int64{1}),
	}, nil))
	f, err := Open(path)
	require.NoError(t, err)

	_, err = f.Int64("w")
	assert.EqualError(t, err, path+`: safetensors: tensor "w" is F32, cannot read it as int64`)
	_, err = f.Float32("idx")
	assert.EqualError(t, err, path+`: safetensors: tensor "idx" is I64, cannot read it as float32`)
	_, err = f.Float64("idx")
	assert.Error(t, err)
	_, err = f.Float32("nope")
	assert.EqualError(t, err, path+`: safetensors: no tensor "nope"`)
	assert.Nil(t, f.Raw("nope"))
	_, ok := f.Info("nope")
	assert.False(t, ok)

	require.NoError(t, f.Close())
	_, err = f.Float32("w")
	assert.EqualError(t, err, path+`: safetensors: file is closed`)
	assert.Nil(t, f.Raw("w"))
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "none.safetensors"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, Write(path, []Tensor{F32Tensor("model.norm.weight", []int{4}, []float32{1, 2, 3, 4})}, nil))
	b, err := os.ReadFile(path)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(path, b[:len(b)-3], 0o644))
	_, err = Open(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "open "+path+": safetensors: ")
	assert.Contains(t, err.Error(), `tensor "model.norm.weight"`)
	assert.Contains(t, err.Error(), "past the end of the data buffer")

	require.NoError(t, os.WriteFile(path, b[:20], 0o644))
	_, err = Open(path)
	assert.EqualError(t, err, "open "+path+": safetensors: header length "+
		itoa(binary.LittleEndian.Uint64(b))+" runs past end of file (20 bytes)")

	require.NoError(t, os.WriteFile(path, b[:5], 0o644))
	_, err = Open(path)
	assert.EqualError(t, err, "open "+path+": safetensors: file is 5 bytes, too short for the 8-byte header length")

	require.NoError(t, os.WriteFile(path, nil, 0o644))
	_, err = Open(path)
	assert.EqualError(t, err, "open "+path+": safetensors: file is 0 bytes, too short for the 8-byte header length")
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestHeaderLengthTooLarge(t *testing.T) {
	b := binary.LittleEndian.AppendUint64(nil, 1<<40)
	_, err := ParseHeader(b, 1<<41)
	assert.EqualError(t, err, "safetensors: header length 1099511627776 exceeds the limit of 100000000 bytes")
	b = binary.LittleEndian.AppendUint64(nil, math.MaxUint64)
	_, err = ParseHeader(b, 8)
	assert.Error(t, err)
	// A header longer than the bytes supplied, though the file is long enough.
	b = binary.LittleEndian.AppendUint64(nil, 10)
	_, err = ParseHeader(append(b, "{}"...), 100)
	assert.EqualError(t, err, "safetensors: header truncated: have 2 of 10 bytes")
}

func TestInvalidHeaders(t *testing.T) {
	data8 := make([]byte, 8)
	cases := []struct {
		name, header string
		data         []byte
		want         string
	}{
		{"dtype×shape mismatch", `{"model.norm.weight":{"dtype":"BF16","shape":[4],"data_offsets":[0,12]}}`, make([]byte, 12),
			`tensor "model.norm.weight": data_offsets [0, 12] hold 12 bytes, but BF16 [4] needs 8`},
		{"offsets past end", `{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, data8,
			`tensor "w": data_offsets [0, 16] run past the end of the data buffer (8 bytes)`},
		{"offsets reversed", `{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, data8,
			`tensor "w": data_offsets [8, 4] begin after they end`},
		{"overlap", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12),
			`tensors "a" [0, 8] and "b" [4, 12] overlap`},
		{"overlap contained", `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 16),
			`tensors "a" [0, 16] and "b" [4, 8] overlap`},
		{"same range", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}`, data8,
			`tensors "a" [0, 8] and "b" [0, 8] overlap`},
		{"bad JSON", `{"w":{"dtype":"F32",}}`, nil,
			`invalid JSON header: invalid character '}' looking for beginning of object key string`},
		{"trailing garbage", `{}x`, nil,
			`invalid JSON header: invalid character 'x' after top-level value`},
		{"empty header", ``, nil, `invalid JSON header: unexpected end of JSON input`},
		{"not an object", `[1,2]`, nil, `header is not a JSON object`},
		{"invalid UTF-8", "{\"\xff\":{}}", nil, `header is not valid UTF-8`},
		{"unknown dtype", `{"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}`, data8,
			`tensor "w": unknown dtype "F17"`},
		{"dtype not string", `{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, data8,
			`tensor "w": dtype is not a string`},
		{"negative shape", `{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, data8,
			`tensor "w": shape holds -1, not a non-negative integer`},
		{"fractional shape", `{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`, data8,
			`tensor "w": shape holds 1.0, not a non-negative integer`},
		{"string shape", `{"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, data8,
			`tensor "w": shape holds 1, not an integer`},
		{"shape overflow", `{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, data8,
			`tensor "w": shape [4294967296 4294967296] has too many elements`},
		{"shape bytes overflow", `{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}}`, data8,
			`tensor "w": shape [2305843009213693952] has too many elements`},
		{"shape dim too big", `{"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}`, data8,
			`tensor "w": shape holds 99999999999999999999, not a non-negative integer`},
		{"negative offset", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, data8,
			`tensor "w": data_offsets holds -4, not a non-negative integer`},
		{"three offsets", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, data8,
			`tensor "w": data_offsets has 3 values, want 2`},
		{"duplicate tensor", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data8,
			`duplicate tensor "w"`},
		{"duplicate field", `{"w":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}}`, data8,
			`tensor "w": duplicate field "shape"`},
		{"duplicate metadata", `{"__metadata__":{},"__metadata__":{}}`, nil, `duplicate __metadata__`},
		{"duplicate metadata key", `{"__metadata__":{"a":"1","a":"2"}}`, nil, `__metadata__: duplicate key "a"`},
		{"metadata not string", `{"__metadata__":{"a":1}}`, nil, `__metadata__: value of "a" is not a string`},
		{"metadata not object", `{"__metadata__":"x"}`, nil, `__metadata__ is not a JSON object`},
		{"unknown field", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"offsets":[0,4]}}`, data8,
			`tensor "w": unknown field "offsets"`},
		{"missing dtype", `{"w":{"shape":[1],"data_offsets":[0,4]}}`, data8, `tensor "w": missing dtype`},
		{"missing shape", `{"w":{"dtype":"F32","data_offsets":[0,4]}}`, data8, `tensor "w": missing shape`},
		{"missing offsets", `{"w":{"dtype":"F32","shape":[1]}}`, data8, `tensor "w": missing data_offsets`},
		{"entry not object", `{"w":[1]}`, data8, `tensor "w": entry is not a JSON object`},
		{"entry null", `{"w":null}`, data8, `tensor "w": entry is not a JSON object`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, "safetensors: "+c.want, openErr(t, c.header, c.data))
		})
	}
}

func TestValidHeaders(t *testing.T) {
	cases := []struct {
		name, header string
		data         []byte
	}{
		{"empty", `{}`, nil},
		{"padded", `{}      `, nil},
		{"null metadata", `{"__metadata__":null}`, nil},
		{"gap and unsorted", `{"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 10)},
		{"empty tensors anywhere", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0,99999999999999],"data_offsets":[4,4]},"y":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`, make([]byte, 8)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Open(rawFile(t, c.header, c.data))
			require.NoError(t, err)
			require.NoError(t, f.Close())
		})
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	cases := []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"duplicate", []Tensor{F32Tensor("a", []int{1}, []float32{1}), F32Tensor("a", []int{1}, []float32{1})},
			`duplicate tensor "a"`},
		{"size mismatch", []Tensor{F32Tensor("a", []int{2}, []float32{1})},
			`tensor "a": 4 bytes of data, but F32 [2] needs 8`},
		{"reserved", []Tensor{F32Tensor("__metadata__", []int{1}, []float32{1})},
			`tensor name "__metadata__" is reserved`},
		{"unknown dtype", []Tensor{{Name: "a", DType: "F17", Shape: []int{1}, Data: []byte{1}}},
			`tensor "a": unknown dtype "F17"`},
		{"negative shape", []Tensor{{Name: "a", DType: U8, Shape: []int{-1}}},
			`tensor "a": invalid shape [-1]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Write(path, c.tensors, nil)
			assert.EqualError(t, err, "write "+path+": safetensors: "+c.want)
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestDTypeSize(t *testing.T) {
	assert.Equal(t, 2, BF16.Size())
	assert.Equal(t, 8, I64.Size())
	assert.Equal(t, 1, BOOL.Size())
	assert.Equal(t, 0, DType("F4").Size())
	assert.Equal(t, 0, DType("f32").Size())
}
