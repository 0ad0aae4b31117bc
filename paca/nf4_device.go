package paca

import "github.com/gopaca/paca/tensor"

// NF4 weights on a device backend. Training dequantizes every 4-bit weight
// on every pass; on a GPU that runs on the backend's DequantizeNF4 kernel,
// reading a packed image of the weight kept in tensor (device) memory: the
// codebook, each block's scale (already resolved from the double-quantized
// form, bit for bit what blockScale returns) and the packed codes. The
// image is built on first use and accounted as Frozen in place of the host
// copy, so the Frozen figure still counts the weight once.

// The packed layout's block is NF4's (a compile error otherwise).
var _ = [1]int{}[NF4BlockSize-tensor.NF4Block]

// dequantizeInto writes deq(W) to w (Rows×Cols): on the backend's kernel
// when tensors live on a device, else on the host.
func (q *NF4) dequantizeInto(w *tensor.Tensor) {
	if !tensor.OnDevice() {
		q.Dequantize(w.Data())
		return
	}
	tensor.CurrentBackend().DequantizeNF4(w, q.packed())
}

// packed returns the device image of q, building it on first use.
func (q *NF4) packed() *tensor.Tensor {
	if q.img != nil {
		return q.img
	}
	n := q.Rows * q.Cols
	scales := make([]float32, (n+NF4BlockSize-1)/NF4BlockSize)
	for b := range scales {
		scales[b] = q.blockScale(b)
	}
	q.img = tensor.New(tensor.Frozen, tensor.NF4PackedLen(n))
	tensor.NF4Packed(q.img, &nf4Code, scales, q.Codes)
	tensor.Track(tensor.Frozen, -q.Bytes()) // the image stands for it now
	return q.img
}

// release takes q's memory out of the accounts: its device image, or the
// host copy that NewQLoRA and NewQPaCA tracked.
func (q *NF4) release() {
	if q.img != nil {
		q.img.Release()
		q.img = nil
		return
	}
	tensor.Track(tensor.Frozen, -q.Bytes())
}
