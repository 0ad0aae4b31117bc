// Package safetensors reads and writes HuggingFace safetensors files.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
// header, and a data buffer. The header maps each tensor name to its dtype,
// shape and [begin, end) byte offsets into the data buffer; an optional
// "__metadata__" entry holds string-to-string metadata.
//
// Files come from the internet, so the header is validated in full before
// any tensor is touched: every offset, size and overlap is checked, and a
// malformed file is reported with the file path and the tensor at fault.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/gopaca/paca/internal/atomicfile"
	"github.com/gopaca/paca/tensor"
)

// MaxHeaderSize is the largest JSON header accepted, as in the reference
// implementation.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key that holds file metadata.
const metadataKey = "__metadata__"

// DType names an element type as spelled in safetensors headers.
type DType string

// Element types. Sub-byte types (F4, F6_*) are not supported.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	F8E8M0 DType = "F8_E8M0"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
)

// Size returns the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8, F8E5M2, F8E4M3, F8E8M0:
		return 1
	case I16, U16, F16, BF16:
		return 2
	case I32, U32, F32:
		return 4
	case F64, I64, U64:
		return 8
	}
	return 0
}

// TensorInfo describes one tensor: its dtype, shape, and the byte range
// [Begin, End) it occupies in the data buffer.
type TensorInfo struct {
	Name       string
	DType      DType
	Shape      []int
	Begin, End int64
}

// NumElements returns the number of elements, the product of the shape.
func (ti TensorInfo) NumElements() int {
	n := 1
	for _, d := range ti.Shape {
		n *= d
	}
	return n
}

// Header is a parsed and validated safetensors header.
type Header struct {
	// Tensors are sorted by name.
	Tensors []TensorInfo
	// Metadata is the "__metadata__" map; nil when the file has none.
	Metadata map[string]string
	// DataStart is the file offset of the data buffer, 8 + header length.
	DataStart int64
	// DataSize is the length of the data buffer in bytes.
	DataSize int64
}

// ParseHeader parses and validates the header of a safetensors file.
// b holds the beginning of the file, at least its 8-byte length prefix
// and the JSON header (it may hold the whole file); fileSize is the size
// of the whole file, against which the data offsets are checked.
//
// Every tensor must have a known dtype, a non-negative shape, and offsets
// within the data buffer whose length matches the shape and dtype; no two
// tensors may overlap. Gaps in the data buffer are allowed. Duplicate keys
// and unknown fields are rejected.
func ParseHeader(b []byte, fileSize int64) (*Header, error) {
	if fileSize < 8 || len(b) < 8 {
		n := fileSize
		if int64(len(b)) < n {
			n = int64(len(b))
		}
		return nil, fmt.Errorf("safetensors: file is %d bytes, too short for the 8-byte header length", n)
	}
	if int64(len(b)) > fileSize {
		return nil, fmt.Errorf("safetensors: have %d bytes of a %d-byte file", len(b), fileSize)
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if int64(n) > fileSize-8 {
		return nil, fmt.Errorf("safetensors: header length %d runs past end of file (%d bytes)", n, fileSize)
	}
	if uint64(len(b)-8) < n {
		return nil, fmt.Errorf("safetensors: header truncated: have %d of %d bytes", len(b)-8, n)
	}
	h := &Header{DataStart: 8 + int64(n), DataSize: fileSize - 8 - int64(n)}
	if err := h.parseJSON(b[8 : 8+n]); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return h, nil
}

// parseJSON fills h.Tensors and h.Metadata from the JSON header. It walks
// the tokens itself rather than unmarshalling into maps, because a map
// silently keeps only the last of two duplicate keys.
func (h *Header) parseJSON(js []byte) error {
	if !utf8.Valid(js) {
		return errors.New("header is not valid UTF-8")
	}
	var raw json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil {
		return fmt.Errorf("invalid JSON header: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return errors.New("header is not a JSON object")
	}
	seen := make(map[string]bool)
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return err
		}
		if seen[key] {
			if key == metadataKey {
				return fmt.Errorf("duplicate %s", metadataKey)
			}
			return fmt.Errorf("duplicate tensor %q", key)
		}
		seen[key] = true
		if key == metadataKey {
			if h.Metadata, err = parseMetadata(dec); err != nil {
				return err
			}
			continue
		}
		ti, err := parseTensorInfo(dec, key)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", key, err)
		}
		h.Tensors = append(h.Tensors, ti)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	slices.SortFunc(h.Tensors, func(a, b TensorInfo) int {
		return compareStrings(a.Name, b.Name)
	})
	return nil
}

// parseMetadata reads the "__metadata__" value: null or an object of
// strings.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%s is not a JSON object", metadataKey)
	}
	md := make(map[string]string)
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return nil, err
		}
		if _, dup := md[key]; dup {
			return nil, fmt.Errorf("%s: duplicate key %q", metadataKey, key)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%s: value of %q is not a string", metadataKey, key)
		}
		md[key] = v
	}
	return md, expectDelim(dec, '}')
}

// parseTensorInfo reads one tensor's JSON object.
func parseTensorInfo(dec *json.Decoder, name string) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	if err := expectDelim(dec, '{'); err != nil {
		return ti, errors.New("entry is not a JSON object")
	}
	var haveDType, haveShape, haveOffsets bool
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return ti, err
		}
		switch key {
		case "dtype":
			if haveDType {
				return ti, errors.New("duplicate field \"dtype\"")
			}
			haveDType = true
			tok, err := dec.Token()
			if err != nil {
				return ti, err
			}
			s, ok := tok.(string)
			if !ok {
				return ti, errors.New("dtype is not a string")
			}
			ti.DType = DType(s)
			if ti.DType.Size() == 0 {
				return ti, fmt.Errorf("unknown dtype %q", s)
			}
		case "shape":
			if haveShape {
				return ti, errors.New("duplicate field \"shape\"")
			}
			haveShape = true
			dims, err := intArray(dec, "shape")
			if err != nil {
				return ti, err
			}
			ti.Shape = make([]int, len(dims))
			for i, d := range dims {
				if d > math.MaxInt {
					return ti, fmt.Errorf("shape dimension %d is too large", d)
				}
				ti.Shape[i] = int(d)
			}
		case "data_offsets":
			if haveOffsets {
				return ti, errors.New("duplicate field \"data_offsets\"")
			}
			haveOffsets = true
			offs, err := intArray(dec, "data_offsets")
			if err != nil {
				return ti, err
			}
			if len(offs) != 2 {
				return ti, fmt.Errorf("data_offsets has %d values, want 2", len(offs))
			}
			ti.Begin, ti.End = offs[0], offs[1]
		default:
			return ti, fmt.Errorf("unknown field %q", key)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return ti, err
	}
	switch {
	case !haveDType:
		return ti, errors.New("missing dtype")
	case !haveShape:
		return ti, errors.New("missing shape")
	case !haveOffsets:
		return ti, errors.New("missing data_offsets")
	}
	return ti, nil
}

// intArray reads a JSON array of non-negative integers that fit in int64.
func intArray(dec *json.Decoder, field string) ([]int64, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, fmt.Errorf("%s is not an array", field)
	}
	var out []int64
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s holds %v, not an integer", field, tok)
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s holds %s, not a non-negative integer", field, num)
		}
		out = append(out, v)
	}
	return out, expectDelim(dec, ']')
}

func stringToken(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("expected a JSON string, found %v", tok)
	}
	return s, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

// validate checks each tensor's size and bounds, then that no two
// tensors share bytes.
func (h *Header) validate() error {
	for _, ti := range h.Tensors {
		nbytes, ok := byteSize(ti.DType, ti.Shape)
		if !ok {
			return fmt.Errorf("tensor %q: shape %v has too many elements", ti.Name, ti.Shape)
		}
		if ti.Begin > ti.End {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] begin after they end", ti.Name, ti.Begin, ti.End)
		}
		if ti.End > h.DataSize {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] run past the end of the data buffer (%d bytes)",
				ti.Name, ti.Begin, ti.End, h.DataSize)
		}
		if ti.End-ti.Begin != nbytes {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] hold %d bytes, but %s %v needs %d",
				ti.Name, ti.Begin, ti.End, ti.End-ti.Begin, ti.DType, ti.Shape, nbytes)
		}
	}
	// Sort by start; an overlap then shows up between a tensor and the
	// furthest-reaching one before it. Empty tensors occupy no bytes.
	order := make([]int, 0, len(h.Tensors))
	for i, ti := range h.Tensors {
		if ti.End > ti.Begin {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		return compareInt64(h.Tensors[a].Begin, h.Tensors[b].Begin)
	})
	reach := -1
	for _, i := range order {
		ti := h.Tensors[i]
		if reach >= 0 && ti.Begin < h.Tensors[reach].End {
			p := h.Tensors[reach]
			return fmt.Errorf("tensors %q [%d, %d] and %q [%d, %d] overlap",
				p.Name, p.Begin, p.End, ti.Name, ti.Begin, ti.End)
		}
		if reach < 0 || ti.End > h.Tensors[reach].End {
			reach = i
		}
	}
	return nil
}

// byteSize returns the number of bytes a tensor of the given dtype and
// shape occupies, and false if that does not fit in an int.
func byteSize(dt DType, shape []int) (int64, bool) {
	if slices.Contains(shape, 0) {
		return 0, true
	}
	n := int64(dt.Size())
	for _, d := range shape {
		if d < 0 || n > math.MaxInt/int64(d) {
			return 0, false
		}
		n *= int64(d)
	}
	return n, true
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// File is an open safetensors file. Its contents are mapped (or read) into
// memory whole; tensors are decoded on request.
type File struct {
	path    string
	data    []byte
	release func() error
	hdr     *Header
	index   map[string]int
}

// Open opens and validates the safetensors file at path. Every error names
// the path.
func Open(path string) (*File, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	h, err := ParseHeader(data, int64(len(data)))
	if err != nil {
		release()
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := &File{path: path, data: data, release: release, hdr: h, index: make(map[string]int, len(h.Tensors))}
	for i, ti := range h.Tensors {
		f.index[ti.Name] = i
	}
	return f, nil
}

// Close releases the file's memory. Slices returned by Raw must not be
// used after Close.
func (f *File) Close() error {
	if f.release == nil {
		return nil
	}
	err := f.release()
	f.release, f.data = nil, nil
	return err
}

// Path returns the path the file was opened from.
func (f *File) Path() string { return f.path }

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, len(f.hdr.Tensors))
	for i, ti := range f.hdr.Tensors {
		names[i] = ti.Name
	}
	return names
}

// Info returns the description of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	ti := f.hdr.Tensors[i]
	ti.Shape = slices.Clone(ti.Shape)
	return ti, true
}

// Metadata returns the file's "__metadata__" map, or nil if it has none.
// The caller must not modify it.
func (f *File) Metadata() map[string]string { return f.hdr.Metadata }

// Raw returns the named tensor's bytes as stored (little-endian), or nil
// if there is no such tensor or the file is closed. The slice aliases the
// file's memory: it is read-only and valid until Close.
func (f *File) Raw(name string) []byte {
	i, ok := f.index[name]
	if !ok || f.data == nil {
		return nil
	}
	ti := f.hdr.Tensors[i]
	lo, hi := f.hdr.DataStart+ti.Begin, f.hdr.DataStart+ti.End
	return f.data[lo:hi:hi]
}

// lookup returns the named tensor's info and bytes, or an error naming the
// file and tensor.
func (f *File) lookup(name string) (TensorInfo, []byte, error) {
	if f.data == nil {
		return TensorInfo{}, nil, fmt.Errorf("%s: safetensors: file is closed", f.path)
	}
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, nil, fmt.Errorf("%s: safetensors: no tensor %q", f.path, name)
	}
	return f.hdr.Tensors[i], f.Raw(name), nil
}

func (f *File) wrongType(ti TensorInfo, want string) error {
	return fmt.Errorf("%s: safetensors: tensor %q is %s, cannot read it as %s", f.path, ti.Name, ti.DType, want)
}

// Float32 returns the named tensor as float32 values. F32, F16, BF16 and
// F64 tensors are accepted; F64 values are rounded.
func (f *File) Float32(name string) ([]float32, error) {
	ti, b, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	switch ti.DType {
	case F32:
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case F64:
		out := make([]float32, len(b)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return out, nil
	case F16, BF16:
		return halfToFloat32(ti.DType, b), nil
	}
	return nil, f.wrongType(ti, "float32")
}

// halfToFloat32 decodes F16 or BF16 bytes, a chunk at a time so that the
// bit patterns never need a buffer as large as the tensor.
func halfToFloat32(dt DType, b []byte) []float32 {
	out := make([]float32, len(b)/2)
	var bits [4096]uint16
	for lo := 0; lo < len(out); lo += len(bits) {
		n := min(len(bits), len(out)-lo)
		for i := range n {
			bits[i] = binary.LittleEndian.Uint16(b[2*(lo+i):])
		}
		if dt == F16 {
			tensor.F16ToF32(out[lo:lo+n], bits[:n])
		} else {
			tensor.BF16ToF32(out[lo:lo+n], bits[:n])
		}
	}
	return out
}

// Float64 returns the named tensor as float64 values. F64, F32, F16 and
// BF16 tensors are accepted; all convert exactly.
func (f *File) Float64(name string) ([]float64, error) {
	ti, b, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	switch ti.DType {
	case F64:
		out := make([]float64, len(b)/8)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return out, nil
	case F32, F16, BF16:
		f32, err := f.Float32(name)
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(f32))
		for i, v := range f32 {
			out[i] = float64(v)
		}
		return out, nil
	}
	return nil, f.wrongType(ti, "float64")
}

// Int64 returns the named tensor as int64 values. I64, I32, I16, I8, U32,
// U16 and U8 tensors are accepted.
func (f *File) Int64(name string) ([]int64, error) {
	ti, b, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	var out []int64
	switch ti.DType {
	case I64:
		out = make([]int64, len(b)/8)
		for i := range out {
			out[i] = int64(le.Uint64(b[8*i:]))
		}
	case I32:
		out = make([]int64, len(b)/4)
		for i := range out {
			out[i] = int64(int32(le.Uint32(b[4*i:])))
		}
	case U32:
		out = make([]int64, len(b)/4)
		for i := range out {
			out[i] = int64(le.Uint32(b[4*i:]))
		}
	case I16:
		out = make([]int64, len(b)/2)
		for i := range out {
			out[i] = int64(int16(le.Uint16(b[2*i:])))
		}
	case U16:
		out = make([]int64, len(b)/2)
		for i := range out {
			out[i] = int64(le.Uint16(b[2*i:]))
		}
	case I8:
		out = make([]int64, len(b))
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case U8:
		out = make([]int64, len(b))
		for i := range out {
			out[i] = int64(b[i])
		}
	default:
		return nil, f.wrongType(ti, "int64")
	}
	return out, nil
}

// Tensor is a tensor to be written: raw little-endian bytes with their
// dtype and shape.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// F32Tensor returns a Tensor holding data as F32.
func F32Tensor(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, DType: F32, Shape: slices.Clone(shape), Data: b}
}

// F64Tensor returns a Tensor holding data as F64.
func F64Tensor(name string, shape []int, data []float64) Tensor {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return Tensor{Name: name, DType: F64, Shape: slices.Clone(shape), Data: b}
}

// BF16Tensor returns a Tensor holding data rounded to BF16 (to nearest,
// ties to even).
func BF16Tensor(name string, shape []int, data []float32) Tensor {
	return halfTensor(name, BF16, shape, data)
}

// F16Tensor returns a Tensor holding data rounded to F16 (to nearest, ties
// to even).
func F16Tensor(name string, shape []int, data []float32) Tensor {
	return halfTensor(name, F16, shape, data)
}

func halfTensor(name string, dt DType, shape []int, data []float32) Tensor {
	b := make([]byte, 2*len(data))
	var bits [4096]uint16
	for lo := 0; lo < len(data); lo += len(bits) {
		n := min(len(bits), len(data)-lo)
		if dt == F16 {
			tensor.F32ToF16(bits[:n], data[lo:lo+n])
		} else {
			tensor.F32ToBF16(bits[:n], data[lo:lo+n])
		}
		for i := range n {
			binary.LittleEndian.PutUint16(b[2*(lo+i):], bits[i])
		}
	}
	return Tensor{Name: name, DType: dt, Shape: slices.Clone(shape), Data: b}
}

// I64Tensor returns a Tensor holding data as I64.
func I64Tensor(name string, shape []int, data []int64) Tensor {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return Tensor{Name: name, DType: I64, Shape: slices.Clone(shape), Data: b}
}

// encodeHeader returns the header bytes (length prefix, JSON and padding) for
// tensors and the order in which their data must follow it. It checks that
// names are unique and that each tensor's data matches its dtype and shape.
//
// As in the reference implementation, the header is padded with spaces to a
// multiple of 8 bytes and the data is laid out without gaps (readers
// elsewhere reject gaps), largest element size first and then by name, so
// that every tensor starts at a multiple of its element size.
func encodeHeader(tensors []Tensor, metadata map[string]string) ([]byte, []int, error) {
	order := make([]int, len(tensors))
	seen := make(map[string]bool, len(tensors))
	for i, t := range tensors {
		order[i] = i
		if t.Name == metadataKey {
			return nil, nil, fmt.Errorf("safetensors: tensor name %q is reserved", t.Name)
		}
		if seen[t.Name] {
			return nil, nil, fmt.Errorf("safetensors: duplicate tensor %q", t.Name)
		}
		seen[t.Name] = true
		if t.DType.Size() == 0 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n, ok := byteSize(t.DType, t.Shape)
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: invalid shape %v", t.Name, t.Shape)
		}
		if int64(len(t.Data)) != n {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %d bytes of data, but %s %v needs %d",
				t.Name, len(t.Data), t.DType, t.Shape, n)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		ta, tb := tensors[a], tensors[b]
		if c := tb.DType.Size() - ta.DType.Size(); c != 0 {
			return c
		}
		return compareStrings(ta.Name, tb.Name)
	})
	begin := make([]int64, len(tensors))
	var off int64
	for _, i := range order {
		begin[i] = off
		off += int64(len(tensors[i].Data))
	}

	var js bytes.Buffer
	js.WriteByte('{')
	if metadata != nil {
		js.WriteString(`"__metadata__":{`)
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				js.WriteByte(',')
			}
			writeJSONString(&js, k)
			js.WriteByte(':')
			writeJSONString(&js, metadata[k])
		}
		js.WriteByte('}')
	}
	byName := make([]int, len(tensors))
	for i := range byName {
		byName[i] = i
	}
	slices.SortFunc(byName, func(a, b int) int { return compareStrings(tensors[a].Name, tensors[b].Name) })
	for j, i := range byName {
		t := tensors[i]
		if j > 0 || metadata != nil {
			js.WriteByte(',')
		}
		writeJSONString(&js, t.Name)
		fmt.Fprintf(&js, `:{"dtype":"%s","shape":[`, t.DType)
		for k, d := range t.Shape {
			if k > 0 {
				js.WriteByte(',')
			}
			js.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&js, `],"data_offsets":[%d,%d]}`, begin[i], begin[i]+int64(len(t.Data)))
	}
	js.WriteByte('}')
	for js.Len()%8 != 0 {
		js.WriteByte(' ')
	}
	if js.Len() > MaxHeaderSize {
		return nil, nil, fmt.Errorf("safetensors: header of %d bytes exceeds the limit of %d", js.Len(), MaxHeaderSize)
	}
	out := make([]byte, 8, 8+js.Len())
	binary.LittleEndian.PutUint64(out, uint64(js.Len()))
	return append(out, js.Bytes()...), order, nil
}

// writeJSONString writes s as a JSON string without HTML escaping.
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)               // cannot fail for a string
	buf.Truncate(buf.Len() - 1) // drop Encode's newline
}

// Write writes tensors and metadata (which may be nil) to a safetensors
// file at path. The write is atomic: the data goes to a temporary file in
// the same directory, which is synced and then renamed over path, so a
// crash leaves either the old file or the complete new one.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	hdr, order, err := encodeHeader(tensors, metadata)
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	return atomicfile.WriteFunc(path, func(w io.Writer) error {
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, i := range order {
			if _, err := w.Write(tensors[i].Data); err != nil {
				return err
			}
		}
		return nil
	})
}
