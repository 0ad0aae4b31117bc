package paca

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/gopaca/paca/tensor"
)

// NF4 storage of a frozen weight, as QLoRA (Dettmers et al., 2023) defines
// it and bitsandbytes implements it (quantize_4bit / dequantize_4bit with
// quant_type "nf4", blocksize 64).
//
// The weight W (Rows×Cols, row-major) is read as one flat vector and cut into
// blocks of NF4BlockSize consecutive values (the last block may be shorter).
// Block b keeps a float32 scale absmax_b = max |x| over the block, and each
// value x keeps a 4-bit index q into the 16-value NormalFloat4 codebook c:
//
//	x ≈ absmax_b · c[q]
//
// q is the code nearest to s = x · float32(1/absmax_b) (a float32 reciprocal
// and a multiply, as bitsandbytes' kernel computes it), decided as
// bitsandbytes' CUDA dQuantizeNF4 tree decides it: q counts the 15
// thresholds t_k below s (s > t_k), so a value exactly on a threshold takes
// the lower code. t_k is the midpoint (c[k]+c[k+1])/2 as the kernel's float
// literal rounds it; where the exact midpoint falls halfway between two
// float32 values (k = 0, 8, 12, 14) that is one ulp off the float32-rounded
// midpoint that bitsandbytes' pure-PyTorch backend uses.
//
// Two codes share a byte, the first (even-indexed) value in the high nibble;
// an odd count pads the last low nibble with 7, the code of 0. An all-zero block has absmax 0 and
// stores code 7 (it dequantizes to 0, never NaN; bitsandbytes' CUDA kernel
// computes 0·∞ there). If 1/absmax_b overflows float32 (absmax_b < 2⁻¹²⁸)
// s = x/absmax_b instead. Weights must be finite.
//
// Double quantization (QLoRA's "double quant", bitsandbytes'
// compress_statistics) stores the block scales in 8 bits: with offset = the
// mean of all absmax_b (summed in float64 in order, rounded to float32;
// torch's float32 mean may differ in the last bit, and is stored likewise) and
// d_b = absmax_b − offset, d is cut into blocks of NF4DoubleQuantBlockSize,
// each with a float32 scale σ_j = max |d| and 8-bit indices into the signed
// dynamic map m of bitsandbytes' create_dynamic_map(signed=True):
//
//	absmax_b ≈ m[QAbsmax[b]] · σ_{b/256} + offset
//
// The index is the nearest map value to d·float32(1/σ) by float32 midpoints;
// a value exactly on a midpoint takes the even index of the two (where
// bitsandbytes' binary search in dQuantize always ends). An all-zero block
// stores 127, the index of 0. The 4-bit codes are always computed from the
// exact absmax.
//
// Dequantization is float32(c[q] · absmax_b), with absmax_b =
// float32(float32(m[i]·σ) + offset) under double quantization — bit for bit
// what bitsandbytes' dequantize_4bit returns in float32.
type NF4 struct {
	Rows, Cols int
	// Codes holds two 4-bit codes a byte, ceil(Rows·Cols/2) bytes.
	Codes []byte
	// Absmax is the per-block scale; nil when double-quantized.
	Absmax []float32
	// QAbsmax, AbsmaxScale and AbsmaxOffset hold the double-quantized
	// scales (nil, nil, 0 otherwise): one index per block, one scale per
	// NF4DoubleQuantBlockSize blocks.
	QAbsmax      []uint8
	AbsmaxScale  []float32
	AbsmaxOffset float32

	img *tensor.Tensor // packed for a device's kernels (nf4_device.go), or nil
}

// Block sizes of the NF4 format.
const (
	NF4BlockSize            = 64  // values per absmax scale
	NF4DoubleQuantBlockSize = 256 // absmax values per double-quant scale
)

// nf4Code is bitsandbytes' NF4 table (nf4_dequantization_lut), index 7 is 0.
var nf4Code = [16]float32{
	-1.0,
	-0.6961928009986877,
	-0.5250730514526367,
	-0.39491748809814453,
	-0.28444138169288635,
	-0.18477343022823334,
	-0.09105003625154495,
	0.0,
	0.07958029955625534,
	0.16093020141124725,
	0.24611230194568634,
	0.33791524171829224,
	0.44070982933044434,
	0.5626170039176941,
	0.7229568362236023,
	1.0,
}

const (
	nf4ZeroCode = 7   // nf4Code[7] == 0
	dynZeroCode = 127 // dynMap[127] == 0
)

// nf4Mid holds the thresholds of bitsandbytes' dQuantizeNF4 decision tree
// (csrc/kernels.cu), float literals of the midpoints of nf4Code: code k+1
// starts above nf4Mid[k].
var nf4Mid = [15]float32{
	-0.8480964004993439,
	-0.6106329262256622,
	-0.4599952697753906,
	-0.33967943489551544,
	-0.23460740596055984,
	-0.13791173323988914,
	-0.045525018125772476,
	0.03979014977812767,
	0.1202552504837513,
	0.2035212516784668,
	0.2920137718319893,
	0.3893125355243683,
	0.5016634166240692,
	0.6427869200706482,
	0.8614784181118011,
}

var (
	nf4PairLUT [256][2]float32 // byte → {code of high nibble, code of low nibble}
	dynMap     = dynamicMap()  // create_dynamic_map(signed=True)
	dynMid     [255]float32    // float32 midpoints of dynMap
)

func init() {
	for b := range nf4PairLUT {
		nf4PairLUT[b] = [2]float32{nf4Code[b>>4], nf4Code[b&15]}
	}
	for k := range dynMid {
		dynMid[k] = (dynMap[k] + dynMap[k+1]) / 2
	}
}

// dynamicMap builds bitsandbytes' create_dynamic_map(signed=True,
// max_exponent_bits=7, total_bits=8): for i = 0..6 the means of adjacent
// points of linspace(0.1, 1, 2^i+1), times ±10^(i-6), plus 0 and 1, sorted.
// All arithmetic is float32 as in torch; linspace is evaluated as torch's
// CPU kernel writes it (start + step·k below the halfway point, end −
// step·(n−1−k) from it) without fused multiply-adds. Torch builds that
// vectorize or fuse that loop differ in the last bit or two of a few dozen
// entries (Debian's torch 1.13 on AVX2: 44 entries, ≤ 2 ulp); a
// bitsandbytes checkpoint stores the map it used.
func dynamicMap() [256]float32 {
	vals := make([]float32, 0, 256)
	for i := range 7 {
		n := 1<<i + 1
		start, end := float32(0.1), float32(1)
		step := (end - start) / float32(n-1)
		lin := make([]float32, n)
		for k := range lin {
			if k < n/2 {
				lin[k] = start + float32(step*float32(k))
			} else {
				lin[k] = end - float32(step*float32(n-1-k))
			}
		}
		scale := float32(math.Pow10(i - 6))
		for k := 0; k+1 < n; k++ {
			mean := (lin[k] + lin[k+1]) / 2
			vals = append(vals, scale*mean, -scale*mean)
		}
	}
	vals = append(vals, 0, 1)
	var m [256]float32
	copy(m[:], vals)
	slices.Sort(m[:])
	return m
}

// nf4Index is the NF4 code of a normalized value s: the number of
// thresholds strictly below s.
func nf4Index(s float32) byte {
	lo, hi := 0, len(nf4Mid)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s > nf4Mid[mid] {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return byte(lo)
}

// dynIndex is the dynamic-map index of a normalized value s: nearest by
// midpoints, a tie going to the even index.
func dynIndex(s float32) uint8 {
	lo, hi := 0, len(dynMid)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s > dynMid[mid] {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(dynMid) && s == dynMid[lo] {
		lo += lo & 1
	}
	return uint8(lo)
}

// blockAbsmax is max |x| over x; it panics on a non-finite value.
func blockAbsmax(x []float32, base int) float32 {
	var m float32
	for i, v := range x {
		a := float32(math.Abs(float64(v)))
		if !(a <= math.MaxFloat32) {
			panic(fmt.Sprintf("paca: NF4: non-finite weight %v at index %d", v, base+i))
		}
		m = max(m, a)
	}
	return m
}

// normalizer returns float32(1/absmax) (0 for absmax 0) and whether that
// overflowed, in which case values are divided by absmax instead.
func normalizer(absmax float32) (inv float32, divide bool) {
	if absmax == 0 {
		return 0, false
	}
	inv = 1 / absmax
	return inv, inv > math.MaxFloat32
}

// QuantizeNF4 quantizes the rows×cols row-major weight w to NF4, with the
// block scales double-quantized if doubleQuant is set. Large weights are
// quantized in parallel.
func QuantizeNF4(w []float32, rows, cols int, doubleQuant bool) *NF4 {
	if rows < 0 || cols < 0 || len(w) != rows*cols {
		panic(fmt.Sprintf("paca: QuantizeNF4: %d values for a %d×%d weight", len(w), rows, cols))
	}
	n := len(w)
	nb := (n + NF4BlockSize - 1) / NF4BlockSize
	q := &NF4{Rows: rows, Cols: cols, Codes: make([]byte, (n+1)/2)}
	absmax := make([]float32, nb)
	nf4Parallel(nb, n, func(b0, b1 int) {
		for b := b0; b < b1; b++ {
			lo := b * NF4BlockSize
			hi := min(lo+NF4BlockSize, n)
			absmax[b] = quantizeNF4Block(q.Codes[lo/2:(hi+1)/2], w[lo:hi], lo)
		}
	})
	if !doubleQuant {
		q.Absmax = absmax
		return q
	}
	var sum float64
	for _, a := range absmax {
		sum += float64(a)
	}
	if nb > 0 {
		q.AbsmaxOffset = float32(sum / float64(nb))
	}
	d := make([]float32, nb)
	for b, a := range absmax {
		d[b] = a - q.AbsmaxOffset
	}
	q.QAbsmax, q.AbsmaxScale = quantizeDynamic(d, NF4DoubleQuantBlockSize)
	return q
}

// quantizeNF4Block writes the packed codes of one block x (at flat index
// base) to dst and returns its absmax.
func quantizeNF4Block(dst []byte, x []float32, base int) float32 {
	absmax := blockAbsmax(x, base)
	inv, divide := normalizer(absmax)
	code := func(v float32) byte {
		if divide {
			return nf4Index(v / absmax)
		}
		return nf4Index(v * inv)
	}
	for j := range dst {
		c := code(x[2*j]) << 4
		if 2*j+1 < len(x) {
			c |= code(x[2*j+1])
		} else {
			c |= nf4ZeroCode
		}
		dst[j] = c
	}
	return absmax
}

// quantizeDynamic is bitsandbytes' 8-bit blockwise quantization with the
// signed dynamic map: one index per value, one float32 absmax per block.
func quantizeDynamic(x []float32, blockSize int) (codes []uint8, absmax []float32) {
	codes = make([]uint8, len(x))
	absmax = make([]float32, (len(x)+blockSize-1)/blockSize)
	for b := range absmax {
		lo := b * blockSize
		hi := min(lo+blockSize, len(x))
		a := blockAbsmax(x[lo:hi], lo)
		absmax[b] = a
		inv, divide := normalizer(a)
		for i, v := range x[lo:hi] {
			switch {
			case a == 0:
				codes[lo+i] = dynZeroCode
			case divide:
				codes[lo+i] = dynIndex(v / a)
			default:
				codes[lo+i] = dynIndex(v * inv)
			}
		}
	}
	return codes, absmax
}

// blockScale returns absmax of block b, dequantizing it under double
// quantization.
func (q *NF4) blockScale(b int) float32 {
	if q.QAbsmax == nil {
		return q.Absmax[b]
	}
	// The explicit conversion rounds the product, so it is never fused
	// into a multiply-add (bitsandbytes rounds it too).
	return float32(dynMap[q.QAbsmax[b]]*q.AbsmaxScale[b/NF4DoubleQuantBlockSize]) + q.AbsmaxOffset
}

// Dequantize writes the Rows×Cols dequantized weight, row-major, to dst.
// Large weights are dequantized in parallel.
func (q *NF4) Dequantize(dst []float32) {
	n := q.Rows * q.Cols
	if len(dst) != n {
		panic(fmt.Sprintf("paca: NF4.Dequantize: dst has %d values, want %d×%d", len(dst), q.Rows, q.Cols))
	}
	nb := (n + NF4BlockSize - 1) / NF4BlockSize
	// Blocks per core: as nf4Parallel splits the work, on tensor.Parallel
	// because training dequantizes on every step and must not allocate.
	minWork := nb
	if n >= nf4ParallelMin {
		minWork = nf4ParallelMin / 4 / NF4BlockSize
	}
	tensor.RunJob(&dequantizeJobs, nb, minWork, dequantizeJob{q: q, dst: dst})
}

type dequantizeJob struct {
	q   *NF4
	dst []float32
}

var dequantizeJobs tensor.Jobs[dequantizeJob]

func (j *dequantizeJob) Range(b0, b1 int) {
	q, dst := j.q, j.dst
	n := len(dst)
	for b := b0; b < b1; b++ {
		s := q.blockScale(b)
		lo := b * NF4BlockSize
		if lo+NF4BlockSize <= n {
			src := (*[NF4BlockSize / 2]byte)(q.Codes[lo/2:])
			out := (*[NF4BlockSize]float32)(dst[lo:])
			for j, c := range src {
				p := &nf4PairLUT[c]
				out[2*j] = p[0] * s
				out[2*j+1] = p[1] * s
			}
			continue
		}
		for i := lo; i < n; i++ { // the last, partial block
			dst[i] = nf4PairLUT[q.Codes[i>>1]][i&1] * s
		}
	}
}

// DequantizeCols writes columns idx of the dequantized weight to dst, a
// Rows×len(idx) row-major matrix: dst[r·len(idx)+k] = W[r, idx[k]]. Only
// those values are decoded.
func (q *NF4) DequantizeCols(dst []float32, idx []int) {
	k := len(idx)
	if len(dst) != q.Rows*k {
		panic(fmt.Sprintf("paca: NF4.DequantizeCols: dst has %d values, want %d×%d", len(dst), q.Rows, k))
	}
	for _, c := range idx {
		if c < 0 || c >= q.Cols {
			panic(fmt.Sprintf("paca: NF4.DequantizeCols: column %d out of range [0, %d)", c, q.Cols))
		}
	}
	nf4Parallel(q.Rows, q.Rows*k, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			row := dst[r*k : (r+1)*k]
			base := r * q.Cols
			for j, c := range idx {
				i := base + c
				row[j] = nf4PairLUT[q.Codes[i>>1]][i&1] * q.blockScale(i/NF4BlockSize)
			}
		}
	})
}

// Bytes is the storage of the quantized weight: the packed codes and the
// scales (with double quantization the 8-bit indices, their float32 scales
// and the offset). The shared codebook and dynamic map are not counted.
func (q *NF4) Bytes() int64 {
	n := int64(len(q.Codes)) + 4*int64(len(q.Absmax))
	if q.QAbsmax != nil {
		n += int64(len(q.QAbsmax)) + 4*int64(len(q.AbsmaxScale)) + 4
	}
	return n
}

// nf4ParallelMin is the number of values below which work stays on one
// goroutine.
const nf4ParallelMin = 1 << 16

// nf4Parallel splits [0, units) into contiguous ranges and runs fn on them
// concurrently when the work (values in all) is large enough.
func nf4Parallel(units, values int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), units, values/(nf4ParallelMin/4))
	if workers <= 1 || values < nf4ParallelMin {
		fn(0, units)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := units*w/workers, units*(w+1)/workers
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}
