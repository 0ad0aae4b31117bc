package tensor

// extraKernels are the Backend's kernels for the work around the model's
// ops that runs on every step: gradient clipping, 4-bit base weights, the
// elementwise products and dropout of the adapters, DoRA's row norms. On a
// GPU each would otherwise read tensor memory on the host and pull its
// pages back from the device. The CPU versions live in cpu_extra.go.
type extraKernels interface {
	// SumSquares returns Σ x² over every element of every tensor in xs,
	// accumulated in float64.
	SumSquares(xs []*Tensor) float64
	// Scale sets x = alpha·x.
	Scale(x *Tensor, alpha float32)

	// MulElems sets dst = a ⊙ b, or adds it to dst when accumulate is set.
	MulElems(dst, a, b *Tensor, accumulate bool)
	// MulCols sets dst[r,c] = y[r,c]·v[c] (v has Cols values), or adds it
	// when accumulate is set; SumRowsMul accumulates the column sums of
	// a ⊙ b into dst (Cols values), summed in float64.
	MulCols(dst, y, v *Tensor, accumulate bool)
	SumRowsMul(dst, a, b *Tensor)

	// Dropout applies the mask of Tape.Dropout(p, seed) to x: the kept
	// elements, scaled by 1/(1−p), are written to dst (added when
	// accumulate is set); the dropped ones leave dst alone. The mask is a
	// function of (seed, element index) only: see dropoutJob.
	Dropout(dst, x *Tensor, p float64, seed uint64, accumulate bool)

	// DequantizeNF4 writes the dst.Len() values of a 4-bit weight to dst.
	// packed holds, as float32 values, the 16-entry codebook, then one
	// scale per block of NF4Block values, then the codes packed two a
	// byte, high nibble first (NF4Packed builds it):
	//
	//	dst[i] = codebook[code_i] · scale[i / NF4Block]
	DequantizeNF4(dst, packed *Tensor)

	// DoRANorms sets inv[o] = 1/√max(w2[o] + 2s·B_o·WA_o + s²·B_o G B_oᵀ, 0)
	// for every row o of b (out, r): the inverse row norms of W + s·B A
	// from w2 = ‖W_o‖² (out), wa = W Aᵀ (out, r) and g = A Aᵀ (r, r),
	// accumulated in float64.
	DoRANorms(inv, w2, wa, g, b *Tensor, s float64)
}

// NF4Block is the number of values that share one scale in
// DequantizeNF4's packed weight.
const NF4Block = 64

// NF4PackedLen is the length, in float32 values, of the packed form of an
// n-value 4-bit weight (see Backend.DequantizeNF4).
func NF4PackedLen(n int) int {
	blocks := (n + NF4Block - 1) / NF4Block
	codeBytes := (n + 1) / 2
	return 16 + blocks + (codeBytes+3)/4
}

// NF4Packed lays out a 4-bit weight for DequantizeNF4 in dst, a tensor of
// NF4PackedLen(n) values: codebook, per-block scales, codes.
func NF4Packed(dst *Tensor, codebook *[16]float32, scales []float32, codes []byte) {
	d := dst.Data()
	copy(d, codebook[:])
	copy(d[16:], scales)
	copy(float32Bytes(d[16+len(scales):]), codes)
}
