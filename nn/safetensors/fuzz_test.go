package safetensors

import (
	"encoding/binary"
	"math/big"
	"slices"
	"testing"
)

// withLen prefixes header with its little-endian length and appends data.
func withLen(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// FuzzParseHeader feeds arbitrary file prefixes to ParseHeader. It must
// never panic, and any header it accepts must satisfy every invariant that
// File relies on for safe slicing, checked here independently.
func FuzzParseHeader(f *testing.F) {
	f.Add(withLen(`{}`, nil), uint16(0))
	f.Add(withLen(`{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}`, make([]byte, 8)), uint16(0))
	f.Add(withLen(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), uint16(0))
	f.Add(withLen(`{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, nil), uint16(8))
	f.Add(withLen(`{"w":{"dtype":"F16","shape":[0,4294967296],"data_offsets":[3,3]}}`, nil), uint16(3))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint16(0))

	f.Fuzz(func(t *testing.T, b []byte, extra uint16) {
		fileSize := int64(len(b)) + int64(extra)
		h, err := ParseHeader(b, fileSize)
		if err != nil {
			if h != nil {
				t.Fatal("non-nil header with an error")
			}
			return
		}
		n := binary.LittleEndian.Uint64(b)
		if n > MaxHeaderSize || h.DataStart != 8+int64(n) || h.DataStart > fileSize ||
			h.DataSize != fileSize-h.DataStart || h.DataStart > int64(len(b)) {
			t.Fatalf("bad header bounds: n=%d start=%d size=%d file=%d", n, h.DataStart, h.DataSize, fileSize)
		}
		type span struct{ lo, hi int64 }
		var spans []span
		for i, ti := range h.Tensors {
			if i > 0 && h.Tensors[i-1].Name >= ti.Name {
				t.Fatalf("tensors not sorted and unique: %q, %q", h.Tensors[i-1].Name, ti.Name)
			}
			if ti.Name == metadataKey {
				t.Fatal("__metadata__ taken as a tensor")
			}
			if ti.DType.Size() == 0 {
				t.Fatalf("%q: unknown dtype %q accepted", ti.Name, ti.DType)
			}
			numel := big.NewInt(1)
			for _, d := range ti.Shape {
				if d < 0 {
					t.Fatalf("%q: negative dim in %v", ti.Name, ti.Shape)
				}
				numel.Mul(numel, big.NewInt(int64(d)))
			}
			nbytes := numel.Mul(numel, big.NewInt(int64(ti.DType.Size())))
			if ti.Begin < 0 || ti.Begin > ti.End || ti.End > h.DataSize {
				t.Fatalf("%q: offsets [%d, %d] outside buffer of %d", ti.Name, ti.Begin, ti.End, h.DataSize)
			}
			if !nbytes.IsInt64() || nbytes.Int64() != ti.End-ti.Begin {
				t.Fatalf("%q: %s %v needs %v bytes, offsets hold %d", ti.Name, ti.DType, ti.Shape, nbytes, ti.End-ti.Begin)
			}
			if ti.End > ti.Begin {
				spans = append(spans, span{ti.Begin, ti.End})
			}
		}
		for i := range spans {
			for j := range i {
				if spans[i].lo < spans[j].hi && spans[j].lo < spans[i].hi {
					t.Fatalf("overlap accepted: %v and %v", spans[i], spans[j])
				}
			}
		}

		// With the whole file in hand, every accessor must work without
		// panicking.
		if extra != 0 {
			return
		}
		file := &File{path: "fuzz", data: b, release: func() error { return nil }, hdr: h, index: map[string]int{}}
		for i, ti := range h.Tensors {
			file.index[ti.Name] = i
		}
		if !slices.IsSorted(file.Names()) {
			t.Fatal("Names not sorted")
		}
		for _, name := range file.Names() {
			raw := file.Raw(name)
			info, _ := file.Info(name)
			if int64(len(raw)) != info.End-info.Begin {
				t.Fatalf("%q: Raw has %d bytes", name, len(raw))
			}
			if v, err := file.Float32(name); err == nil && len(v) != info.NumElements() {
				t.Fatalf("%q: Float32 gave %d values for %v", name, len(v), info.Shape)
			}
			if v, err := file.Float64(name); err == nil && len(v) != info.NumElements() {
				t.Fatalf("%q: Float64 gave %d values for %v", name, len(v), info.Shape)
			}
			if v, err := file.Int64(name); err == nil && len(v) != info.NumElements() {
				t.Fatalf("%q: Int64 gave %d values for %v", name, len(v), info.Shape)
			}
		}
	})
}
