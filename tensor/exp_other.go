//go:build !amd64 || purego

package tensor

const expAVX2 = false

func expSubBlock(dst, src []float32, m float32) float32 { return expSubGo(dst, src, m) }

func sigmoidBlock(dst, src []float32) { sigmoidGo(dst, src) }

func maxBlock(x []float32) float32 { return maxGo(x) }
