// The adapters' kernels: 4-bit base weights (cpu_extra.go's DequantizeNF4),
// dropout (ops_extra.go's dropoutJob) and DoRA's row norms (DoRANorms).

#define NF4_BLOCK 64

// d[i] = code[c_i]·scale[i / 64] from packed = codebook (16) | scales
// (blocks) | codes, two a byte, high nibble first. One thread per byte.
extern "C" __global__ void nf4_dequant(float* d, const float* packed, i64 n, int blocks) {
	const float* code = packed;
	const float* scales = packed + 16;
	const unsigned char* codes = (const unsigned char*)(packed + 16 + blocks);
	FOR_EACH(k, (n + 1) / 2) {
		unsigned c = codes[k];
		i64 i = 2 * k;
		d[i] = code[c >> 4] * scales[i / NF4_BLOCK];
		if (i + 1 < n) d[i + 1] = code[c & 15] * scales[(i + 1) / NF4_BLOCK];
	}
}

// Go's math/rand/v2 PCG: a 128-bit LCG, state ← state·mul + inc, whose
// output is the DXSM mix of the new state. Dropout seeds one generator per
// chunk of DROP_CHUNK elements and draws one number per element in order;
// here each thread jumps ahead to its own stretch of the chunk.
struct u128 {
	u64 hi, lo;
};

__device__ __forceinline__ u128 mul128(u128 a, u128 b) {
	u128 r;
	r.lo = a.lo * b.lo;
	r.hi = __umul64hi(a.lo, b.lo) + a.lo * b.hi + a.hi * b.lo;
	return r;
}

__device__ __forceinline__ u128 add128(u128 a, u128 b) {
	u128 r;
	r.lo = a.lo + b.lo;
	r.hi = a.hi + b.hi + (r.lo < a.lo ? 1 : 0);
	return r;
}

__device__ __forceinline__ u128 pcg_mul() {
	u128 m = {2549297995355413924ULL, 4865540595714422341ULL};
	return m;
}

__device__ __forceinline__ u128 pcg_inc() {
	u128 c = {6364136223846793005ULL, 1442695040888963407ULL};
	return c;
}

// pcg_jump advances state s by k steps: the k-fold LCG step is again an
// LCG, state·M + C, whose M and C are built by squaring (F. Brown, "Random
// number generation with arbitrary strides", 1994).
__device__ u128 pcg_jump(u128 s, u64 k) {
	u128 one = {0, 1}, M = one, C = {0, 0}, m = pcg_mul(), c = pcg_inc();
	while (k) {
		if (k & 1) {
			M = mul128(M, m);
			C = add128(mul128(C, m), c);
		}
		c = mul128(add128(m, one), c);
		m = mul128(m, m);
		k >>= 1;
	}
	return add128(mul128(M, s), C);
}

__device__ __forceinline__ u64 pcg_next(u128* s) {
	*s = add128(mul128(*s, pcg_mul()), pcg_inc());
	u64 hi = s->hi;
	hi ^= hi >> 32;
	hi *= 0xda942042e4dd58b5ULL;
	hi ^= hi >> 48;
	hi *= (s->lo | 1);
	return hi;
}

__device__ __forceinline__ u64 splitmix64(u64 x) {
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

#define DROP_CHUNK 4096
#define DROP_THREADS 64 // per chunk (block), DROP_CHUNK / DROP_THREADS elements each

// Dropout: element i is kept when its draw u (53 bits, /2⁵³) is ≥ p; kept
// elements write x·keep to d (or add it). grid = chunks, DROP_THREADS threads.
extern "C" __global__ void dropout(float* d, const float* x, i64 n, double p, u64 seed, float keep, int acc) {
	u64 c = blockIdx.x;
	u128 s = {splitmix64(seed ^ (c * 0x9e3779b97f4a7c15ULL)), splitmix64(seed + c)};
	int per = DROP_CHUNK / DROP_THREADS, o0 = threadIdx.x * per;
	s = pcg_jump(s, (u64)o0);
	i64 base = (i64)c * DROP_CHUNK + o0;
	for (int k = 0; k < per; k++) {
		i64 i = base + k;
		if (i >= n) break;
		u64 r = pcg_next(&s);
		if ((double)(r & ((1ULL << 53) - 1)) / 9007199254740992.0 >= p) {
			float y = x[i] * keep;
			d[i] = acc ? d[i] + y : y;
		}
	}
}

// DoRA: inv[o] = 1/√max(w2[o] + 2s·B_o·WA_o + s²·B_o G B_oᵀ, 0) in float64,
// one thread per output row; b and wa are (out, r), g is (r, r).
extern "C" __global__ void dora_norms(float* inv, const float* w2, const float* wa, const float* g, const float* b,
                                      int out, int r, double s) {
	int o = blockIdx.x * blockDim.x + threadIdx.x;
	if (o >= out) return;
	const float* bo = b + (i64)o * r;
	const float* wao = wa + (i64)o * r;
	double cross = 0, quad = 0;
	for (int i = 0; i < r; i++) {
		double bi = bo[i], gb = 0;
		cross += bi * (double)wao[i];
		for (int j = 0; j < r; j++) gb += (double)g[i * r + j] * (double)bo[j];
		quad += bi * gb;
	}
	inv[o] = (float)(1.0 / sqrt(fmax((double)w2[o] + 2 * s * cross + s * s * quad, 0.0)));
}
