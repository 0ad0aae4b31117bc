// Shared by every kernel file. NVRTC compiles all of them as one program,
// this file first, with no headers: only its built-in device functions
// (expf, __shfl_xor_sync, ...) are used.
//
// Conventions: row-major float32 tensors; "n" is an element count (64-bit),
// rows and cols are ints. Kernels that produce gradients accumulate (+=)
// into their outputs, as the CPU backend does (tensor/backend.go). Each
// kernel's comment names the CPU function it must agree with.

typedef unsigned long long u64;
typedef long long i64;

#define NEG_INF __int_as_float(0xff800000)
#define FULL_MASK 0xffffffffu

// grid-stride loop over [0, n)
#define FOR_EACH(i, n) \
	for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

__device__ __forceinline__ float warp_sum(float v) {
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v) {
	for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
	return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
	return v;
}

// block_sum_d returns the sum of v over the block (blockDim.x a multiple of
// 32, at most 1024) to every thread. sh holds 32 doubles of shared memory.
__device__ double block_sum_d(double v, double* sh) {
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
	v = warp_sum_d(v);
	__syncthreads(); // sh may still be read by a previous call
	if (lane == 0) sh[w] = v;
	__syncthreads();
	if (w == 0) {
		v = lane < nw ? sh[lane] : 0.0;
		v = warp_sum_d(v);
		if (lane == 0) sh[0] = v;
	}
	__syncthreads();
	return sh[0];
}

// block_max returns the maximum of v over the block to every thread.
__device__ float block_max(float v, float* sh) {
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
	v = warp_max(v);
	__syncthreads();
	if (lane == 0) sh[w] = v;
	__syncthreads();
	if (w == 0) {
		v = lane < nw ? sh[lane] : NEG_INF;
		v = warp_max(v);
		if (lane == 0) sh[0] = v;
	}
	__syncthreads();
	return sh[0];
}

// half_to_float widens a 16-bit value: bfloat16 (f16 = 0) or IEEE binary16
// (f16 = 1), exactly (tensor.BF16ToF32, F16ToF32).
__device__ __forceinline__ float half_to_float(unsigned short h, int f16) {
	if (!f16) return __uint_as_float((unsigned)h << 16);
	unsigned sign = (unsigned)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	if (exp == 31) return __uint_as_float(sign | 0x7f800000u | (man << 13)); // Inf, NaN
	if (exp != 0) return __uint_as_float(sign | ((exp + 112) << 23) | (man << 13));
	if (man == 0) return __uint_as_float(sign);
	int e = -1; // subnormal: shift the leading 1 to bit 10
	do {
		e++;
		man <<= 1;
	} while (!(man & 0x400));
	return __uint_as_float(sign | ((unsigned)(112 - e) << 23) | ((man & 0x3ff) << 13));
}
