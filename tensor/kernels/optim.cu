// AdamW (adamw.go). Every operation is rounded on its own, in the order of
// the Go code, so that the update is bit for bit the CPU's: no fused
// multiply-adds (the _rn intrinsics are never contracted).
//
//	m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g·g
//	p ← p·decay − stepSize·m / (√v / √bc2 + eps)
extern "C" __global__ void adamw(float* p, const float* g, float* m, float* v, i64 n,
                                 float decay, float stepSize, float bc2Sqrt, float b1, float b2, float b1c, float b2c, float e) {
	FOR_EACH(i, n) {
		float gi = g[i];
		float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(b1c, gi));
		float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(b2c, gi), gi));
		m[i] = mi;
		v[i] = vi;
		float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2Sqrt), e);
		p[i] = __fsub_rn(__fmul_rn(p[i], decay), __fdiv_rn(__fmul_rn(stepSize, mi), denom));
	}
}
