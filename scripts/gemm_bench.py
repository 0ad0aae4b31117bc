#!/usr/bin/python3
"""OpenBLAS side of scripts/gemm_bench.sh, and its report.

  gemm_bench.py info                 which BLAS numpy runs, and its kernel
  gemm_bench.py run NAME...          time each GEMM through numpy
  gemm_bench.py report GO NUMPY      median table of the two sets of runs

NAME is a sub-benchmark name of tensor's BenchmarkGemm, "NT_512x576x576_what":
op(A), op(B) (N or T), then m×k×n. Each run prints "NAME GFLOP/s".
Uses only the standard library and numpy (Debian's python3-numpy).
"""
import re
import statistics
import sys
import time

SHAPE = re.compile(r"^([NT])([NT])_(\d+)x(\d+)x(\d+)_")


def info():
    import numpy as np
    try:
        from threadpoolctl import threadpool_info
        pools = threadpool_info()
    except ImportError:
        pools = None
    if pools is not None:
        blas = [p for p in pools if p.get("user_api") == "blas"]
        for p in blas:
            print(f"numpy {np.__version__}: {p.get('internal_api')} {p.get('version')} "
                  f"kernel {p.get('architecture')} threads {p.get('num_threads')} ({p.get('filepath')})")
        if not any(p.get("internal_api") == "openblas" for p in blas):
            sys.exit("numpy does not run OpenBLAS: apt-get install libopenblas0-pthread")
    else:
        print(f"numpy {np.__version__} (install python3-threadpoolctl to see the BLAS kernel)")


def run(names):
    import numpy as np
    rng = np.random.default_rng(1)
    for name in names:
        m_ = SHAPE.match(name)
        if not m_:
            continue
        ta, tb = m_.group(1) == "T", m_.group(2) == "T"
        m, k, n = (int(m_.group(i)) for i in (3, 4, 5))
        a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
        a = a.T if ta else a  # a transposed view: BLAS gets the trans flag
        b = b.T if tb else b
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(a, b, out=c)  # warm up
        reps, t0 = 0, time.perf_counter()
        while True:
            np.matmul(a, b, out=c)
            reps += 1
            el = time.perf_counter() - t0
            if el >= 0.3 and reps >= 3:
                break
        print(f"{name} {2.0 * m * n * k * reps / el / 1e9:.2f}", flush=True)


def load(path, strip_procs):
    runs = {}
    with open(path) as f:
        for line in f:
            if strip_procs:  # a go test -bench line
                mm = re.match(r"^BenchmarkGemm/(\S+?)(?:-\d+)?\s.*?([\d.]+) GFLOP/s", line)
            else:
                mm = re.match(r"^(\S+) ([\d.]+)$", line)
            if mm:
                runs.setdefault(mm.group(1), []).append(float(mm.group(2)))
    return runs


def report(gopath, nppath):
    gor, npr = load(gopath, True), load(nppath, False)
    cpu = load_cpu(gopath)
    print(f"{'shape: op(A)op(B)_m×k×n':40} {'Go':>7} {'OpenBLAS':>9} {'ratio':>6} {'Go/core':>8}  runs")
    for name, gv in gor.items():
        nv = npr.get(name)
        g = statistics.median(gv)
        c = f"{statistics.median(cpu[name]):8.1f}" if cpu.get(name) else f"{'-':>8}"
        if not nv:
            print(f"{name:40} {g:7.1f} {'-':>9} {'-':>6} {c}  {len(gv)}")
            continue
        o = statistics.median(nv)
        print(f"{name:40} {g:7.1f} {o:9.1f} {g / o:6.2f} {c}  {len(gv)}/{len(nv)}")
    print("(median GFLOP/s over the runs; ratio = Go / OpenBLAS; Go/core = GFLOP "
          "per CPU-second of the Go process, which the machine's load moves less)")


def load_cpu(path):
    runs = {}
    with open(path) as f:
        for line in f:
            mm = re.match(r"^BenchmarkGemm/(\S+?)(?:-\d+)?\s.*?([\d.]+) GFLOP/cpu-s", line)
            if mm:
                runs.setdefault(mm.group(1), []).append(float(mm.group(2)))
    return runs


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "info":
        info()
    elif cmd == "run":
        run(sys.argv[2:])
    elif cmd == "report" and len(sys.argv) == 4:
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
