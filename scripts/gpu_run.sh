#!/usr/bin/env bash
# Runs, on a GPU machine with no Go toolchain, what scripts/gpu_build.sh
# built: every test binary (their CUDA tests compare each kernel with the
# CPU backend; the nn and paca suites, golden models and PaCA's gradient
# identity included, run with tensors on the GPU), then `paca bench` on the
# SmolLM2-135M shape at sequence 1024 and, where PyTorch sees the GPU, the
# same training in PyTorch (+ HF PEFT where installed) side by side
# (scripts/torch_gpu_bench.py). It writes gpu_results.md, with every log
# and JSON file beside it, to OUT (default: a new folder under /tmp).
#
#   scripts/gpu_run.sh [BUILD]        BUILD: the folder or the
#                                     gpu-bundle.tar.gz of gpu_build.sh
#
# Run it from the repository root of a checkout of the commit that was
# built. It plans for about 5 minutes on an H100 and stops starting work
# after BUDGET seconds (default 480), each part also under its own timeout.
# STEPS (default 5), SEQ (1024), SHAPE (smollm2-135m), METHODS
# (paca,lora,full) tune the benchmark; TESTS=0 or BENCH=0 skip a part.
set -uo pipefail
t0=$(date +%s)
budget=${BUDGET:-480}
# left N [R]: seconds a part may take: N, or what is left of the budget
# once R seconds are kept for the parts after it.
left() {
	local rest=$((budget - ${2:-0} - ($(date +%s) - t0)))
	((rest < $1)) && echo $((rest > 10 ? rest : 10)) || echo "$1"
}
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build/gpu}
out=${OUT:-$(mktemp -d /tmp/paca-gpu.XXXXXX)}
mkdir -p "$out"
if [[ -f $build && $build == *.tar.gz ]]; then
	dir=$(mktemp -d /tmp/paca-gpu-build.XXXXXX)
	tar -xzf "$build" -C "$dir"
	build=$dir
fi
build=$(cd "$build" && pwd)
steps=${STEPS:-5} seq=${SEQ:-1024} shape=${SHAPE:-smollm2-135m} methods=${METHODS:-paca,lora,full}
py=$(command -v python3 || true)

# The CUDA libraries: the driver's from the system, cuBLAS and NVRTC from
# the system's CUDA or from the Python wheels that PyTorch brought.
libdirs=()
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
	[[ -d $d ]] && libdirs+=("$d")
done
if [[ -n $py ]]; then
	while IFS= read -r d; do libdirs+=("$d"); done < <("$py" - <<'PY' 2>/dev/null
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
try:
    import nvidia
    roots += list(nvidia.__path__)
except Exception:
    pass
seen = set()
for r in roots:
    for pat in ("nvidia/*/lib", "*/lib", "torch/lib"):
        for d in glob.glob(os.path.join(r, pat)):
            if d not in seen and glob.glob(os.path.join(d, "lib*.so*")):
                seen.add(d)
                print(d)
PY
	)
fi
export PACA_CUDA_LIB_PATH=$(IFS=:; echo "${libdirs[*]}")
export LD_LIBRARY_PATH=${PACA_CUDA_LIB_PATH}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PACA_CUDA_CACHE=/tmp/paca-kernel-cache

{
	echo "commit: $(cat "$build/COMMIT" 2>/dev/null || echo unknown)"
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -4
	echo "CUDA library folders: $PACA_CUDA_LIB_PATH"
} | tee "$out/machine.txt"

# ---- tests
: >"$out/tests.tsv"
if [[ ${TESTS:-1} != 0 ]]; then
	for bin in "$build"/*.test; do
		name=$(basename "$bin" .test)
		pkg=${name//_//}
		[[ -d $root/$pkg ]] || { echo "no folder $pkg for $bin" >&2; continue; }
		echo "== test $pkg"
		start=$(date +%s)
		lim=$(left 120 200) # keep 200 s for the benchmarks
		(cd "$root/$pkg" && timeout "$lim" "$bin" -test.v -test.count=1) >"$out/test.$name.log" 2>&1
		rc=$?
		secs=$(($(date +%s) - start))
		pass=$(grep -c -- '--- PASS' "$out/test.$name.log")
		fail=$(grep -c -- '--- FAIL' "$out/test.$name.log")
		skip=$(grep -c -- '--- SKIP' "$out/test.$name.log")
		on=$(grep -m1 -E '^tests on ' "$out/test.$name.log" | sed -E 's/^tests on //')
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pkg" "$rc" "$pass" "$fail" "$skip" "$secs" "$on" >>"$out/tests.tsv"
		echo "   exit $rc: $pass passed, $fail failed, $skip skipped in ${secs}s"
		grep -- '--- FAIL' "$out/test.$name.log" | head -20
	done
fi

# ---- benchmarks
if [[ ${BENCH:-1} != 0 ]]; then
	echo "== paca bench --shape $shape --seq-len $seq"
	timeout "$(left 240)" "$build/paca" bench --shape "$shape" --seq-len "$seq" --batch-size 1 --rank 16 \
		--methods "$methods" --steps "$steps" --warmup 2 \
		--json "$out/go_bench.json" --markdown "$out/go_bench.md" >"$out/go_bench.txt" 2>"$out/go_bench.log"
	echo "   exit $?"
	tail -25 "$out/go_bench.txt"
	if [[ -n $py ]] && "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
		echo "== PyTorch on the GPU"
		timeout "$(left 150)" "$py" scripts/torch_gpu_bench.py --shape "$shape" --seq-len "$seq" --batch-size 1 --rank 16 \
			--methods "$methods" --steps "$steps" --warmup 2 --json "$out/torch_bench.json" 2>"$out/torch_bench.log"
		echo "   exit $?"
	else
		echo "== PyTorch with CUDA not found: no side-by-side run" | tee "$out/torch_bench.log"
	fi
fi

if [[ -n $py ]]; then
	"$py" scripts/gpu_report.py "$out" >"$out/gpu_results.md"
else
	cat "$out/tests.tsv" "$out/go_bench.txt" >"$out/gpu_results.md" 2>/dev/null
fi
echo "== results: $out/gpu_results.md"
cat "$out/gpu_results.md"
