#!/usr/bin/env bash
# Builds, on a machine with Go, what scripts/gpu_run.sh runs on a GPU
# machine without Go: the paca tool and the test binaries of the packages
# whose tests use tensors, all with -tags cuda (linux/amd64; they need
# glibc ≥ 2.34 there, and the CUDA driver, cuBLAS and NVRTC libraries).
#
#   scripts/gpu_build.sh [DIR]        default build/gpu
#
# DIR gets paca, one PKG.test per package (PKG with / as _) and
# gpu-bundle.tar.gz holding both, to carry where a size limit applies.
# Run the binaries from a checkout of the same commit: tests read their
# testdata relative to their package folder, as gpu_run.sh arranges.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
dir=${1:-build/gpu}
mkdir -p "$dir"
export GOOS=linux GOARCH=amd64 CGO_ENABLED=1
flags=(-tags cuda -trimpath -ldflags=-s\ -w)
for pkg in tensor nn paca paca/bench paca/demo cmd/paca; do
	echo "go test -c ${pkg}"
	go test -c "${flags[@]}" -o "$dir/${pkg//\//_}.test" "./$pkg"
done
echo "go build paca"
go build "${flags[@]}" -o "$dir/paca" ./cmd/paca
git rev-parse HEAD >"$dir/COMMIT" 2>/dev/null || true
tar -czf "$dir/gpu-bundle.tar.gz" -C "$dir" --exclude=gpu-bundle.tar.gz $(cd "$dir" && ls)
ls -la "$dir"
