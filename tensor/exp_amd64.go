//go:build amd64 && !purego

package tensor

// expAVX2 reports whether the exp kernels run in assembly (exp_amd64.s).
var expAVX2 = hasAVX2FMA()

// expSubAVX2 is expSubGo with AVX2/FMA, eight elements at a time; the
// tail of fewer than eight goes through masked loads and stores. dst must
// be at least as long as src.
//
//go:noescape
func expSubAVX2(dst, src []float32, m float32) float32

// sigmoidAVX2 is sigmoidGo with AVX2/FMA. dst must be at least as long
// as src.
//
//go:noescape
func sigmoidAVX2(dst, src []float32)

// maxAVX2 is maxGo with AVX2.
//
//go:noescape
func maxAVX2(x []float32) float32

func expSubBlock(dst, src []float32, m float32) float32 {
	if expAVX2 {
		return expSubAVX2(dst, src, m)
	}
	return expSubGo(dst, src, m)
}

func sigmoidBlock(dst, src []float32) {
	if expAVX2 {
		sigmoidAVX2(dst, src)
		return
	}
	sigmoidGo(dst, src)
}

func maxBlock(x []float32) float32 {
	if expAVX2 {
		return maxAVX2(x)
	}
	return maxGo(x)
}
