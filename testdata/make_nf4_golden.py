#!/usr/bin/python3
"""Make testdata/nf4/golden.safetensors, the reference for paca/nf4.go.

An independent NumPy implementation of QLoRA's NF4 storage format as
bitsandbytes defines it (CUDA kernels kQuantizeBlockwise / dQuantizeNF4 /
dQuantize, functional.quantize_4bit / dequantize_4bit / create_dynamic_map):

  * NF4: the weight, flattened row-major, in blocks of 64 values; absmax_b =
    max |x| over the block; s = x * float32(1 / absmax_b) (a float32
    reciprocal, then a multiply, as the kernel does); code = the number of
    thresholds t_k < s, t_k the float32 values of the kernel's float literals
    for the midpoints (c[k] + c[k+1]) / 2, so a value exactly on a threshold
    takes the lower code (the kernel's `x > t` tree). Four t_k are one ulp
    off the float32-rounded midpoints (the exact midpoint is halfway between
    two float32 values); bitsandbytes' pure-PyTorch backend uses the latter.
    Two codes per byte, first value in the high nibble; an odd length pads the
    last low nibble with the code of 0.0 (7), as the kernel's zero fill does.
    An all-zero block (absmax 0) stores code 7; if 1/absmax overflows float32
    (absmax < 2^-128) s = x / absmax instead (the kernel would produce NaN).
    Dequantized: float32(c[code] * absmax_b).
  * Double quant (compress_statistics=True): offset = mean of the absmax
    values (a float64 sum in order, divided by the count, rounded to
    float32); d = float32(absmax - offset) quantized in blocks of 256 to
    8 bits with the signed dynamic map: scale = max |d| over the block,
    s = d * float32(1 / scale), code = nearest map value by float32 midpoints;
    a value exactly on a midpoint takes the even index of the two (the
    kernel's binary search always ends on an even pivot and keeps it on a
    tie). An all-zero block stores the index of 0.0 (127).
    Dequantized absmax: float32(float32(map[q] * scale) + offset).
  * The dynamic map: bitsandbytes' create_dynamic_map(signed=True), with
    torch.linspace(0.1, 1, n, float32) evaluated as its CPU kernel writes it
    (step = (1 - 0.1) / (n - 1); start + step*i for i < n/2, else
    end - step*(n-1-i)) in plain float32 arithmetic, no fused multiply-add.

Run with Debian's numpy:  /usr/bin/python3 testdata/make_nf4_golden.py
Deterministic (seeded). Prints a short summary.
"""

import json
import os
import struct
from fractions import Fraction

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "nf4", "golden.safetensors")

f32 = np.float32
BLOCK = 64
DQ_BLOCK = 256

# bitsandbytes' NF4 table (float32 constants, index 7 is 0).
NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
    0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0], dtype=f32)

# The thresholds of bitsandbytes' dQuantizeNF4 decision tree, as written in
# csrc/kernels.cu: float literals of the codebook midpoints. A C compiler
# rounds a float literal straight from decimal to float32, so they are parsed
# here exactly (via Fraction), not through float64.
CUDA_TREE = [
    "-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906",
    "-0.33967943489551544", "-0.23460740596055984", "-0.13791173323988914",
    "-0.045525018125772476", "0.03979014977812767", "0.1202552504837513",
    "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
    "0.5016634166240692", "0.6427869200706482", "0.8614784181118011"]


def f32_from_decimal(s):
    """The float32 nearest the decimal s (round to nearest, ties to even)."""
    x = Fraction(s)
    d = f32(float(s))
    cands = [np.nextafter(d, f32(-2)), d, np.nextafter(d, f32(2))]
    errs = [abs(Fraction(float(c)) - x) for c in cands]
    best = min(errs)
    hits = [c for c, e in zip(cands, errs) if e == best]
    if len(hits) > 1:  # exact tie: the even significand
        hits = [c for c in hits if int(np.array(c, dtype=f32).view(np.uint32)) % 2 == 0]
    return hits[0]


NF4_T = np.array([f32_from_decimal(s) for s in CUDA_TREE], dtype=f32)
_mid = ((NF4[:-1] + NF4[1:]) / f32(2)).astype(f32)
# Each threshold is the float32-rounded midpoint or its neighbour; they
# differ where the exact midpoint is halfway between two float32 values.
assert np.all(np.abs(NF4_T.view(np.int32) - _mid.view(np.int32)) <= 1)
assert list(np.nonzero(NF4_T != _mid)[0]) == [0, 8, 12, 14]


def linspace_f32(n):
    start, end = f32(0.1), f32(1.0)
    step = f32(f32(end - start) / f32(n - 1))
    out = np.empty(n, dtype=f32)
    for i in range(n):
        if i < n // 2:
            out[i] = f32(start + f32(step * f32(i)))
        else:
            out[i] = f32(end - f32(step * f32(n - 1 - i)))
    return out


def dynamic_map():
    vals = []
    for i in range(7):  # max_exponent_bits = 7, non_sign_bits = 7
        b = linspace_f32(2 ** i + 1)
        means = ((b[:-1] + b[1:]) / f32(2)).astype(f32)
        scale = f32(10.0 ** (i - 6))
        vals += list((scale * means).astype(f32))
        vals += list((-scale * means).astype(f32))
    vals += [f32(0.0), f32(1.0)]
    assert len(vals) == 256
    m = np.array(sorted(vals), dtype=f32)
    assert np.all(np.diff(m) > 0) and m[127] == 0 and m[255] == 1
    return m


DYN = dynamic_map()
DYN_MID = ((DYN[:-1] + DYN[1:]) / f32(2)).astype(f32)


def scaled(x, absmax):
    """x * float32(1/absmax); x / absmax where the reciprocal overflows; 0 for absmax 0."""
    if absmax == 0:
        return np.zeros_like(x)
    with np.errstate(over="ignore", divide="ignore"):
        inv = f32(f32(1) / absmax)
    if np.isinf(inv):
        return (x / absmax).astype(f32)
    return (x * inv).astype(f32)


def nf4_codes(s):
    q = np.searchsorted(NF4_T, s, side="left")  # count of thresholds < s
    # Sanity: the code is a nearest one (up to float32 rounding of midpoints).
    d = np.abs(s.astype(np.float64)[:, None] - NF4.astype(np.float64)[None, :])
    best = d.min(axis=1)
    assert np.all(d[np.arange(len(s)), q] <= best + 1e-7)
    return q.astype(np.uint8)


def dyn_codes(s):
    q = np.searchsorted(DYN_MID, s, side="left")
    tie = (q < 255) & (s == DYN_MID[np.minimum(q, 254)])
    q = np.where(tie, q + (q & 1), q)  # a tie goes to the even index
    return q.astype(np.uint8)


def quantize_nf4(w):
    x = w.reshape(-1).astype(f32)
    n = x.size
    nb = (n + BLOCK - 1) // BLOCK
    absmax = np.zeros(nb, dtype=f32)
    q = np.full(nb * BLOCK, 7, dtype=np.uint8)
    deq = np.zeros(n, dtype=f32)
    for b in range(nb):
        xb = x[b * BLOCK:(b + 1) * BLOCK]
        a = f32(np.max(np.abs(xb)))
        absmax[b] = a
        q[b * BLOCK:b * BLOCK + xb.size] = nf4_codes(scaled(xb, a))
    q = q[:n + (n & 1)]
    packed = ((q[0::2] << 4) | q[1::2]).astype(np.uint8)
    for b in range(nb):
        sl = slice(b * BLOCK, min(n, (b + 1) * BLOCK))
        deq[sl] = (NF4[q[sl]] * absmax[b]).astype(f32)
    return packed, absmax, deq, q[:n]


def quantize_dyn(x, block=DQ_BLOCK):
    n = x.size
    nb = (n + block - 1) // block
    scale = np.zeros(nb, dtype=f32)
    q = np.zeros(n, dtype=np.uint8)
    for b in range(nb):
        xb = x[b * block:(b + 1) * block]
        a = f32(np.max(np.abs(xb)))
        scale[b] = a
        q[b * block:b * block + xb.size] = dyn_codes(scaled(xb, a))
    return q, scale


def double_quant(absmax, codes):
    s = 0.0
    for v in absmax.tolist():
        s += v
    offset = f32(s / absmax.size)
    d = (absmax - offset).astype(f32)
    qa, scale = quantize_dyn(d)
    am = np.empty(absmax.size, dtype=f32)
    for i in range(absmax.size):
        am[i] = f32(f32(DYN[qa[i]] * scale[i // DQ_BLOCK]) + offset)
    n = codes.size
    deq = np.empty(n, dtype=f32)
    for b in range(absmax.size):
        sl = slice(b * BLOCK, min(n, (b + 1) * BLOCK))
        deq[sl] = (NF4[codes[sl]] * am[b]).astype(f32)
    return qa, scale, offset, deq


def nudge(v, k):
    """v moved k float32 steps (k may be negative)."""
    v = f32(v)
    for _ in range(abs(k)):
        v = np.nextafter(v, f32(np.inf) if k > 0 else f32(-np.inf))
    return v


def tie_block(a):
    """64 values whose block absmax is a: a, -a, a*midpoints, their float32
    neighbours and a times each code."""
    vals = [f32(a), f32(-a)]
    m = (NF4_T * f32(a)).astype(f32)
    vals += list(m)
    vals += [nudge(v, 1) for v in m] + [nudge(v, -1) for v in m]
    vals += list((NF4 * f32(a)).astype(f32)) + [f32(0.5 * a)]
    assert len(vals) == 64, len(vals)
    return np.array(vals, dtype=f32)


def reciprocal_block(rng, a):
    """A block (absmax a) of values near midpoints whose code differs
    between x * (1/absmax) (bitsandbytes) and x / absmax."""
    a = f32(a)
    inv = f32(f32(1) / a)
    found = []
    for m in NF4_T:
        c = f32(m * a)
        for k in range(-40, 41):
            x = nudge(c, k)
            if abs(x) >= a:
                continue
            q1 = nf4_codes(np.array([f32(x * inv)]))[0]
            q2 = nf4_codes(np.array([f32(x / a)]))[0]
            if q1 != q2:
                found.append(x)
    assert found, "no reciprocal-sensitive values found"
    vals = [a] + found[:63]
    while len(vals) < 64:
        vals.append(f32(rng.uniform(-a, a)))
    return np.array(vals, dtype=f32), len(found[:63])


def main():
    rng = np.random.default_rng(20250417)
    mats = {}

    mats["a"] = (rng.standard_normal((3, 64)) * 0.05).astype(f32)
    mats["b"] = rng.standard_normal((7, 100)).astype(f32)  # 700: partial last block

    c = (rng.standard_normal((16, 256)) * 0.1).astype(f32).reshape(-1)
    c[5 * 64:6 * 64] = 0  # an all-zero block
    c[9 * 64:10 * 64] = tie_block(1.0)  # exact ties on the midpoints
    c[10 * 64:11 * 64] = tie_block(2.0)
    c[11 * 64:12 * 64] = rng.permutation(tie_block(0.25))
    nrecip = 0
    for i, a in enumerate([1.7, 0.9, 0.37]):
        rblock, k = reciprocal_block(rng, a)
        c[(12 + i) * 64:(13 + i) * 64] = rblock
        nrecip += k
    mats["c"] = c.reshape(16, 256)

    d = (rng.standard_normal((8, 96)) * 0.02).astype(f32).reshape(-1)
    for i, v in [(3, 6.0), (100, -40.0), (257, 12.5), (511, -3.0), (700, 0.75)]:
        d[i] = v
    d[640:704] = (rng.standard_normal(64) * 1e-40).astype(f32)  # 1/absmax overflows
    mats["d"] = d.reshape(8, 96)

    mats["e"] = rng.standard_normal((5, 13)).astype(f32)  # 65 values: odd, pad nibble
    mats["g"] = rng.standard_normal((4, 16)).astype(f32)  # one block: double-quant scale 0
    rows = np.exp(rng.uniform(-3, 1, size=(129, 1))).astype(f32)
    f = (rng.standard_normal((129, 256)) * rows).astype(f32)
    f[0, :] = 0  # zero NF4 blocks inside a double-quant run
    mats["f"] = f  # 516 NF4 blocks: three double-quant blocks, the last partial

    tensors = {}

    def put(name, arr, dtype):
        arr = np.ascontiguousarray(arr)
        if dtype == "F32":
            raw = arr.astype("<f4").tobytes()
        else:
            raw = arr.astype(np.uint8).tobytes()
        shape = list(arr.shape)
        tensors[name] = (dtype, shape, raw)

    for name, w in mats.items():
        packed, absmax, deq, codes = quantize_nf4(w)
        qa, scale, offset, deq2 = double_quant(absmax, codes)
        assert not np.any(np.isnan(deq)) and not np.any(np.isnan(deq2))
        put(name + ".w", w, "F32")
        put(name + ".codes", packed, "U8")
        put(name + ".absmax", absmax, "F32")
        put(name + ".deq", deq.reshape(w.shape), "F32")
        put(name + ".dq.qabsmax", qa, "U8")
        put(name + ".dq.absmax_scale", scale, "F32")
        put(name + ".dq.offset", np.array([offset], dtype=f32), "F32")
        put(name + ".dq.deq", deq2.reshape(w.shape), "F32")
        print(f"{name}: shape {w.shape}, {absmax.size} blocks, "
              f"{scale.size} double-quant blocks, offset {offset!r}")

    # The 8-bit blockwise quantizer on its own: all 255 midpoints (ties),
    # the map values, their neighbours, random values, a partial block.
    x = np.concatenate([
        np.concatenate([[f32(1)], DYN_MID]),
        np.concatenate([[f32(-1)], DYN[1:]]),
        np.concatenate([[f32(1)], [nudge(v, 1 if i % 2 else -1) for i, v in enumerate(DYN_MID)]]),
        rng.uniform(-3, 3, 256),
        rng.standard_normal(100) * 1e-3,
    ]).astype(f32)
    qx, sx = quantize_dyn(x)
    put("dynamic_map", DYN, "F32")
    put("dyn.x", x, "F32")
    put("dyn.codes", qx, "U8")
    put("dyn.absmax", sx, "F32")
    ties = int(np.sum(x[1:256] == DYN_MID))
    print(f"dynamic map: {DYN.size} values; dyn: {x.size} values, {ties} exact ties; "
          f"c: {nrecip} reciprocal-sensitive values")

    try:  # informational only: this machine's torch, if any
        import torch
        vals = []
        for i in range(7):
            b = torch.linspace(0.1, 1, 2 ** i + 1, dtype=torch.float32)
            means = (b[:-1] + b[1:]) / 2.0
            vals += ((10 ** (i - 6)) * means).tolist() + (-(10 ** (i - 6)) * means).tolist()
        vals = np.array(sorted(vals + [0.0, 1.0]), dtype=f32)
        diff = vals.view(np.int32).astype(np.int64) - DYN.view(np.int32)
        print(f"torch {torch.__version__} linspace map vs this map: "
              f"{int(np.sum(diff != 0))} entries differ, max {int(np.max(np.abs(diff)))} ulp")
    except ImportError:
        pass

    write_safetensors(OUT, tensors)
    print("wrote", os.path.relpath(OUT, os.path.dirname(HERE)))


def write_safetensors(path, tensors):
    """tensors: name -> (dtype, shape, raw little-endian bytes)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hj)))
        fh.write(hj)
        for raw in blobs:
            fh.write(raw)


if __name__ == "__main__":
    main()
