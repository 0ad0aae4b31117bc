// Elementwise and row/column-vector kernels: cpu.go's Add, AddScaled,
// AddRowVector, SumRows; activation.go's SwiGLU(Backward); cpu_extra.go's
// Scale, MulElems, MulCols, SumRowsMul; the casts between float32 and the
// 16-bit types (dtype.go's Convert, bfloat16 GEMM operands).

// d = a + b (Add)
extern "C" __global__ void add(float* d, const float* a, const float* b, i64 n) {
	FOR_EACH(i, n) d[i] = a[i] + b[i];
}

// d += alpha·s (AddScaled)
extern "C" __global__ void add_scaled(float* d, float alpha, const float* s, i64 n) {
	FOR_EACH(i, n) d[i] += alpha * s[i];
}

// d (rows, cols) += v (cols) on every row (AddRowVector)
extern "C" __global__ void add_row_vector(float* d, const float* v, i64 n, int cols) {
	FOR_EACH(i, n) d[i] += v[i % cols];
}

// d (cols) += Σ_r s[r, :] (SumRows): one thread per column, rows in order,
// so the float32 sum rounds exactly as the CPU's does.
extern "C" __global__ void sum_rows(float* d, const float* s, int rows, int cols) {
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= cols) return;
	float acc = d[c];
	for (int r = 0; r < rows; r++) acc += s[(i64)r * cols + c];
	d[c] = acc;
}

// x = alpha·x (Scale)
extern "C" __global__ void scale(float* x, float alpha, i64 n) {
	FOR_EACH(i, n) x[i] *= alpha;
}

// d = a ⊙ b, or d += a ⊙ b (MulElems)
extern "C" __global__ void mul_elems(float* d, const float* a, const float* b, i64 n, int acc) {
	FOR_EACH(i, n) {
		float v = a[i] * b[i];
		d[i] = acc ? d[i] + v : v;
	}
}

// d[r, c] = y[r, c]·v[c], or += (MulCols)
extern "C" __global__ void mul_cols(float* d, const float* y, const float* v, i64 n, int cols, int acc) {
	FOR_EACH(i, n) {
		float x = y[i] * v[i % cols];
		d[i] = acc ? d[i] + x : x;
	}
}

// d (cols) += Σ_r a[r, c]·b[r, c], summed in float64 (SumRowsMul): one
// thread per column, rows in order.
extern "C" __global__ void sum_rows_mul(float* d, const float* a, const float* b, int rows, int cols) {
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= cols) return;
	double acc = 0;
	for (int r = 0; r < rows; r++) {
		i64 i = (i64)r * cols + c;
		acc += (double)a[i] * (double)b[i];
	}
	d[c] += (float)acc;
}

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

// out = silu(g)·u (SwiGLU)
extern "C" __global__ void swiglu_fwd(float* o, const float* g, const float* u, i64 n) {
	FOR_EACH(i, n) o[i] = g[i] * sigmoidf(g[i]) * u[i];
}

// dg += dy·u·σ(g)·(1 + g·(1 − σ(g))), du += dy·g·σ(g) (SwiGLUBackward)
extern "C" __global__ void swiglu_bwd(float* dg, float* du, const float* dy, const float* g, const float* u, i64 n) {
	FOR_EACH(i, n) {
		float x = g[i], s = sigmoidf(x);
		dg[i] += dy[i] * u[i] * s * (1.0f + x * (1.0f - s));
		du[i] += dy[i] * x * s;
	}
}

// d = float32(s) for 16-bit s (Convert to float32)
extern "C" __global__ void half_to_f32(float* d, const unsigned short* s, i64 n, int f16) {
	FOR_EACH(i, n) d[i] = half_to_float(s[i], f16);
}

// d = bfloat16(s), rounded to nearest even, NaN kept quiet (tensor.F32ToBF16)
extern "C" __global__ void f32_to_bf16(unsigned short* d, const float* s, i64 n) {
	FOR_EACH(i, n) {
		unsigned u = __float_as_uint(s[i]);
		if ((u & 0x7fffffffu) > 0x7f800000u) {
			d[i] = (unsigned short)(u >> 16) | 0x0040;
		} else {
			u += 0x7fffu + ((u >> 16) & 1u);
			d[i] = (unsigned short)(u >> 16);
		}
	}
}
