#!/usr/bin/env bash
# Compares tensor's GEMM with OpenBLAS (through Debian's numpy) on the GEMM
# shapes of a SmolLM2-135M training step and the skinny LoRA/PaCA ones,
# both on the same number of threads, and prints per shape the median
# GFLOP/s of each and their ratio.
#
#   scripts/gemm_bench.sh [rounds] [threads] [bench regexp]
#
# Defaults: 5 rounds, 2 threads, every shape of BenchmarkGemm. Go and numpy
# runs alternate shape by shape, so that both see about the same load on a
# shared machine. Needs /usr/bin/python3 with python3-numpy linked to
# OpenBLAS (apt-get install python3-numpy libopenblas0-pthread;
# python3-threadpoolctl shows which OpenBLAS kernel runs).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
threads=${2:-2}
filter=${3:-.}
py=/usr/bin/python3
here=scripts/gemm_bench.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine for the
# sake of older OpenBLAS builds; they would slow the comparison down, so
# the benchmark (and only it) runs without them.
blas_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
	OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads")

"${blas_env[@]}" "$py" "$here" info
go test -c -o "$tmp/tensor.test" ./tensor
echo "go: $(go version | cut -d' ' -f3-), GOMAXPROCS=$threads, $rounds rounds"

# The shapes: one quick pass lists BenchmarkGemm's sub-benchmarks.
GOMAXPROCS=$threads "$tmp/tensor.test" -test.run '^$' \
	-test.bench "BenchmarkGemm\$/($filter)" -test.benchtime 1x >"$tmp/list"
names=$(sed -n 's|^BenchmarkGemm/\([^ \t]*\).*|\1|p' "$tmp/list" | sed 's/-[0-9]*$//')
[ -n "$names" ] || { echo "no benchmark matches $filter" >&2; exit 1; }

# Go and numpy alternate shape by shape, so that both see about the same
# load on a shared machine; the report takes medians over the rounds.
for r in $(seq "$rounds"); do
	for name in $names; do
		GOMAXPROCS=$threads "$tmp/tensor.test" -test.run '^$' \
			-test.bench "BenchmarkGemm\$/^${name}\$" -test.benchtime 0.3s |
			grep '^BenchmarkGemm/' >>"$tmp/go.txt"
		"${blas_env[@]}" "$py" "$here" run "$name" >>"$tmp/np.txt"
	done
	echo "round $r/$rounds done" >&2
done
"$py" "$here" report "$tmp/go.txt" "$tmp/np.txt"
