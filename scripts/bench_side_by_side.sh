#!/usr/bin/env bash
# Runs `paca bench` and its PyTorch counterpart (scripts/torch_bench.py) on
# the same shape, batch, sequence length, rank, targets, steps and number
# of threads, and prints both tables and the Go/PyTorch ratios.
#
#   scripts/bench_side_by_side.sh [rounds] [paca bench flags...]
#
# e.g.  scripts/bench_side_by_side.sh 1 --shape smollm2-135m --seq-len 512 --batch-size 1 --rank 16
#
# Defaults: 1 round; smollm2-135m, seq 512, batch 1, rank 16, methods
# paca,lora,full, all seven projections, 1 warm-up + 3 timed steps, 2
# threads (THREADS=n to change). Each round runs Go, then PyTorch; with
# several rounds the comparison takes each figure's median over rounds,
# which is what to do on a shared machine. Both sides run every method in
# a process of its own, so each peak RSS is that method's alone.
#
# PACA=path/to/paca uses a built binary instead of building ./cmd/paca.
# Only the flags below are passed to both sides; the PyTorch side knows
# the methods paca, lora and full. Needs Go and /usr/bin/python3 with
# Debian's python3-torch (apt-get install python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=1
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
	rounds=$1
	shift
fi
threads=${THREADS:-2}
py=/usr/bin/python3

shape=smollm2-135m seq=512 batch=1 rank=16 methods=paca,lora,full steps=3 warmup=1 targets=all-linear
while [[ $# -gt 0 ]]; do
	case $1 in
	--shape) shape=$2 ;;
	--seq-len) seq=$2 ;;
	--batch-size) batch=$2 ;;
	--rank) rank=$2 ;;
	--methods) methods=$2 ;;
	--steps) steps=$2 ;;
	--warmup) warmup=$2 ;;
	--targets) targets=$2 ;;
	*)
		echo "unknown flag $1 (want --shape, --seq-len, --batch-size, --rank, --methods, --steps, --warmup, --targets)" >&2
		exit 2
		;;
	esac
	shift 2
done
common=(--shape "$shape" --seq-len "$seq" --batch-size "$batch" --rank "$rank"
	--methods "$methods" --steps "$steps" --warmup "$warmup" --targets "$targets")

out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
echo "results in $out"
paca=${PACA:-}
if [[ -z $paca ]]; then
	paca=$out/paca
	go build -o "$paca" ./cmd/paca
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"

gos=() torches=()
for r in $(seq "$rounds"); do
	echo "== round $r/$rounds: Go (GOMAXPROCS=$threads)"
	GOMAXPROCS=$threads "$paca" bench "${common[@]}" --json "$out/go.$r.json" \
		--markdown "$out/go.$r.md" --png "$out/go.$r.png" 2>"$out/go.$r.log"
	echo "== round $r/$rounds: PyTorch ($threads threads)"
	OMP_NUM_THREADS=$threads "$py" scripts/torch_bench.py "${common[@]}" --threads "$threads" \
		--json "$out/torch.$r.json" 2>"$out/torch.$r.log"
	gos+=("$out/go.$r.json")
	torches+=("$out/torch.$r.json")
done
"$py" scripts/torch_bench.py compare "$(
	IFS=,
	echo "${gos[*]}"
)" "$(
	IFS=,
	echo "${torches[*]}"
)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
