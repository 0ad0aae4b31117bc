// Gathers and scatters of rows (embeddings) and columns (PaCA), and the KV
// cache write: cpu.go's GatherRows, ScatterAddRows, GatherCols,
// ScatterAddCols; decode.go's CacheWrite.

// d[i, :] = t[ids[i], :] (GatherRows)
extern "C" __global__ void gather_rows(float* d, const float* t, const int* ids, int n, int cols) {
	FOR_EACH(e, (i64)n * cols) {
		i64 i = e / cols;
		int c = (int)(e - i * cols);
		d[e] = t[(i64)ids[i] * cols + c];
	}
}

// GatherRows from a 16-bit table (bfloat16, or binary16 when f16 is set),
// widened to float32.
extern "C" __global__ void gather_rows_half(float* d, const unsigned short* t, const int* ids, int n, int cols, int f16) {
	FOR_EACH(e, (i64)n * cols) {
		i64 i = e / cols;
		int c = (int)(e - i * cols);
		d[e] = half_to_float(t[(i64)ids[i] * cols + c], f16);
	}
}

// d[ids[i], :] += s[i, :] (ScatterAddRows): one thread per column walks the
// ids in order, so repeated ids add up in the CPU's order and never race.
extern "C" __global__ void scatter_add_rows(float* d, const float* s, const int* ids, int n, int cols) {
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= cols) return;
	for (int i = 0; i < n; i++) d[(i64)ids[i] * cols + c] += s[(i64)i * cols + c];
}

// d (rows, r)[i, j] = s (rows, scols)[i, idx[j]] (GatherCols)
extern "C" __global__ void gather_cols(float* d, const float* s, const int* idx, int rows, int scols, int r) {
	FOR_EACH(e, (i64)rows * r) {
		i64 i = e / r;
		int j = (int)(e - i * r);
		d[e] = s[i * scols + idx[j]];
	}
}

// d (rows, dcols)[i, idx[j]] += alpha·s (rows, r)[i, j] (ScatterAddCols):
// one thread per row, columns in order (repeated indices add up in order).
extern "C" __global__ void scatter_add_cols(float* d, float alpha, const float* s, const int* idx, int rows, int dcols, int r) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= rows) return;
	float* row = d + (i64)i * dcols;
	const float* in = s + (i64)i * r;
	for (int j = 0; j < r; j++) row[idx[j]] += alpha * in[j];
}

// cache (B·cap, cols) rows start…start+T−1 of each sequence = x (B·T, cols)
// (CacheWrite)
extern "C" __global__ void cache_write(float* cache, const float* x, int B, int T, int start, int cap, int cols) {
	FOR_EACH(e, (i64)B * T * cols) {
		i64 row = e / cols;
		int c = (int)(e - row * cols);
		int b = (int)(row / T), t = (int)(row - (i64)b * T);
		cache[((i64)b * cap + start + t) * cols + c] = x[e];
	}
}
