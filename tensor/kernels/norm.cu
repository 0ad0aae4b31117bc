// RMSNorm and rotary embeddings: cpu.go's RMSNorm, RMSNormBackward, RoPE;
// decode.go's RoPEAt.

// RMSNorm forward, one block per row of x (rows, cols):
//
//	rstd[r] = 1/√(mean(x[r]²) + eps),  y[r, j] = x[r, j]·rstd[r]·w[j]
//
// The sum of squares is accumulated in float64, as on the CPU.
extern "C" __global__ void rmsnorm_fwd(float* y, float* rstd, const float* x, const float* w, int cols, float eps) {
	__shared__ double sh[32];
	const float* xr = x + (i64)blockIdx.x * cols;
	float* yr = y + (i64)blockIdx.x * cols;
	double ss = 0;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) ss += (double)xr[j] * (double)xr[j];
	ss = block_sum_d(ss, sh);
	float inv = (float)(1.0 / sqrt(ss / cols + (double)eps));
	if (threadIdx.x == 0) rstd[blockIdx.x] = inv;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = xr[j] * inv * w[j];
}

// RMSNorm backward for dx, one block per row: with x̂ = x·rstd, g = dy ⊙ w,
//
//	dx += rstd · (g − x̂ · mean(g ⊙ x̂))
extern "C" __global__ void rmsnorm_bwd_dx(float* dx, const float* dy, const float* x, const float* w, const float* rstd, int cols) {
	__shared__ double sh[32];
	i64 off = (i64)blockIdx.x * cols;
	float inv = rstd[blockIdx.x];
	double dot = 0;
	for (int j = threadIdx.x; j < cols; j += blockDim.x)
		dot += (double)(dy[off + j] * w[j]) * (double)(x[off + j] * inv);
	dot = block_sum_d(dot, sh);
	float m = (float)(dot / cols);
	for (int j = threadIdx.x; j < cols; j += blockDim.x)
		dx[off + j] += inv * (dy[off + j] * w[j] - x[off + j] * inv * m);
}

// RMSNorm backward for the weight: dw[j] += Σ_r dy[r, j]·x[r, j]·rstd[r],
// one thread per column, rows in order (the CPU's float32 order).
extern "C" __global__ void rmsnorm_bwd_dw(float* dw, const float* dy, const float* x, const float* rstd, int rows, int cols) {
	int j = blockIdx.x * blockDim.x + threadIdx.x;
	if (j >= cols) return;
	float acc = dw[j];
	for (int r = 0; r < rows; r++) {
		i64 i = (i64)r * cols + j;
		acc += dy[i] * x[i] * rstd[r];
	}
	dw[j] = acc;
}

// Rotate-half RoPE of x (rows, cols = heads·hd) into d (d may be x): row r
// is at position start + r mod seq; cs, sn are (positions, hd/2) tables.
// One thread per rotated pair (x[i], x[i + hd/2]) of a head; sign = −1
// rotates by −θ (RoPE's backward).
extern "C" __global__ void rope(float* d, const float* x, const float* cs, const float* sn, i64 rows, int cols, int seq, int start, int hd, float sign) {
	int half = hd / 2, pairs = cols / 2;
	FOR_EACH(e, rows * pairs) {
		i64 r = e / pairs;
		int p = (int)(e - r * pairs);
		int h = p / half, i = p - h * half;
		i64 pos = start + r % seq;
		float c = cs[pos * half + i], s = sign * sn[pos * half + i];
		i64 o = r * cols + (i64)h * hd + i;
		float x1 = x[o], x2 = x[o + half];
		d[o] = x1 * c - x2 * s;
		d[o + half] = x2 * c + x1 * s;
	}
}
