// Softmax cross-entropy (cpu.go's CrossEntropy, CrossEntropyBackward) and
// the float64 reductions that bring one scalar back to the host (the loss
// sum, cpu_extra.go's SumSquares). No kernel holds more than one row of
// probabilities: the forward keeps each row's log-sum-exp, the backward
// recomputes softmax from it.

// Forward, one block per row of z (rows, V): lse[r] = max + log Σ exp(z − max)
// (the sum in float64), rowloss[r] = lse[r] − z[r, tgt[r]] for counted rows
// (tgt ≥ 0), else 0.
extern "C" __global__ void ce_fwd(float* lse, double* rowloss, const float* z, const int* tgt, int V) {
	__shared__ double shd[32];
	__shared__ float shf[32];
	const float* zr = z + (i64)blockIdx.x * V;
	float m = NEG_INF;
	for (int j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, zr[j]);
	m = block_max(m, shf);
	double s = 0;
	for (int j = threadIdx.x; j < V; j += blockDim.x) s += exp((double)(zr[j] - m));
	s = block_sum_d(s, shd);
	if (threadIdx.x == 0) {
		float l = m + (float)log(s);
		lse[blockIdx.x] = l;
		int t = tgt[blockIdx.x];
		rowloss[blockIdx.x] = t >= 0 ? (double)l - (double)zr[t] : 0.0;
	}
}

// Backward, one block per counted row: d[r, j] += scale·(softmax_j − [j = tgt]).
extern "C" __global__ void ce_bwd(float* d, const float* z, const float* lse, const int* tgt, int V, float scale) {
	int t = tgt[blockIdx.x];
	if (t < 0) return;
	i64 off = (i64)blockIdx.x * V;
	float l = lse[blockIdx.x];
	for (int j = threadIdx.x; j < V; j += blockDim.x) {
		float x = d[off + j] + scale * (float)exp((double)(z[off + j] - l));
		if (j == t) x -= scale;
		d[off + j] = x;
	}
}

// out[0] = Σ in[0…n), in one block.
extern "C" __global__ void sum_f64(double* out, const double* in, int n) {
	__shared__ double sh[32];
	double s = 0;
	for (int i = threadIdx.x; i < n; i += blockDim.x) s += in[i];
	s = block_sum_d(s, sh);
	if (threadIdx.x == 0) out[0] = s;
}

// partial[blockIdx.x] = Σ x² over the block's grid-stride share of x, in
// float64 (SumSquares; sum_f64 adds the partials up).
extern "C" __global__ void sumsq_partial(double* partial, const float* x, i64 n) {
	__shared__ double sh[32];
	double s = 0;
	FOR_EACH(i, n) s += (double)x[i] * (double)x[i];
	s = block_sum_d(s, sh);
	if (threadIdx.x == 0) partial[blockIdx.x] = s;
}
