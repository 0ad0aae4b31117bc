#!/usr/bin/env bash
# Compiles the CUDA kernels (tensor/kernels) to PTX with clang, as a syntax
# and type check on a machine without the CUDA toolkit. NVRTC compiles them
# at run time on the GPU machine; this only catches mistakes earlier. The
# few built-ins NVRTC provides without headers are declared in a prelude
# here. Skipped (exit 0) when no clang is installed (apt-get install clang).
#
#   scripts/cuda_check.sh [sm_XY]        default sm_80
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-sm_80}
clang=""
for c in clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
	if command -v "$c" >/dev/null 2>&1; then
		clang=$c
		break
	fi
done
if [[ -z $clang ]]; then
	echo "cuda_check: no clang++ found, skipped"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/crt"
for f in sm_70_rt.hpp sm_80_rt.hpp sm_90_rt.hpp; do : >"$tmp/crt/$f"; done
cat >"$tmp/prelude.h" <<'H'
#define __host__ __attribute__((host))
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define CUDA_VERSION 12000
typedef __SIZE_TYPE__ size_t;
#define INT_MAX __INT_MAX__
#define INT_MIN (-__INT_MAX__ - 1)
#define HUGE_VAL __builtin_huge_val()
#define HUGE_VALF __builtin_huge_valf()
#include <__clang_cuda_builtin_vars.h>
#include <__clang_cuda_libdevice_declares.h>
#undef __DEVICE__
#include <__clang_cuda_device_functions.h>
#undef __DEVICE__
#include <__clang_cuda_math.h>
static __device__ __forceinline__ float __shfl_xor_sync(unsigned m, float v, int l) { return __nvvm_shfl_sync_bfly_f32(m, v, l, 0x1f); }
static __device__ __forceinline__ int __shfl_xor_sync(unsigned m, int v, int l) { return __nvvm_shfl_sync_bfly_i32(m, v, l, 0x1f); }
static __device__ __forceinline__ double __shfl_xor_sync(unsigned m, double v, int l) {
	long long x = __double_as_longlong(v);
	int lo = __nvvm_shfl_sync_bfly_i32(m, (int)x, l, 0x1f), hi = __nvvm_shfl_sync_bfly_i32(m, (int)(x >> 32), l, 0x1f);
	return __longlong_as_double(((long long)hi << 32) | (unsigned)lo);
}
static __device__ __forceinline__ float __shfl_sync(unsigned m, float v, int l) { return __nvvm_shfl_sync_idx_f32(m, v, l, 0x1f); }
static __device__ __forceinline__ int __shfl_sync(unsigned m, int v, int l) { return __nvvm_shfl_sync_idx_i32(m, v, l, 0x1f); }
H
# The same order as the Go side: common.cuh, then the .cu files by name.
src="$tmp/all.cu"
cat tensor/kernels/common.cuh >"$src"
for f in tensor/kernels/*.cu; do cat "$f" >>"$src"; done
"$clang" -x cuda --cuda-device-only --cuda-gpu-arch="$arch" -nocudainc -nocudalib \
	-Xclang -target-feature -Xclang +ptx70 -I"$tmp" -include "$tmp/prelude.h" \
	-Wall -Wno-unknown-cuda-version -Werror -S -o "$tmp/all.ptx" "$src"
kernels=$(grep -c '^\.visible \.entry' "$tmp/all.ptx" || true)
echo "cuda_check: $clang compiled tensor/kernels for $arch: $kernels kernels"
