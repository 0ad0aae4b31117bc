#!/usr/bin/python3
"""Make testdata/optim/golden.safetensors: reference optimizer trajectories.

Each scenario runs a few steps of a PyTorch optimizer, in float64, on two
small parameter tensors ("p0" of shape (3, 4) and "p1" of shape (5,)) with a
fixed, precomputed sequence of pseudo-random gradients. Before every step the
gradients are clipped with torch.nn.utils.clip_grad_norm_ and the learning
rate comes from torch.optim.lr_scheduler.LambdaLR driven by the HF
transformers schedule multipliers, which are reimplemented here from their
definitions in transformers/optimization.py (transformers is not needed):

    warmup (all):  k / max(1, warmup)                      for k < warmup
    constant:      1
    linear:        max(0, (total - k) / max(1, total - warmup))
    cosine:        max(0, 0.5 (1 + cos(pi * 0.5 * 2 * progress))),
                   progress = (k - warmup) / max(1, total - warmup)

k is the 0-based index of the optimizer step about to be taken (the Trainer
calls optimizer.step() then scheduler.step(), and LambdaLR starts at k = 0).

Initial parameters and gradients are rounded to float32 values, so the Go
tests (float32 compute) start from exactly the same inputs.

Stored, for scenario S (all F64):
    S.p0.init, S.p1.init      initial parameters
    S.p0.grad, S.p1.grad      (steps, ...) raw gradients, before clipping
    S.has_grad                (steps, 2) 1 where the parameter had a
                              gradient that step, 0 where .grad was None
    S.lr                      (steps,) learning rate used by each step
    S.norm                    (steps,) total gradient norm (before clipping)
    S.p0.after, S.p1.after    (steps, ...) parameters after each step
    schedule.<name>.w<W>.t<T> multipliers λ(k) for k = 0 .. T+4
The metadata key "scenarios" holds each scenario's hyperparameters as JSON,
"schedules" the list of schedule tables.

Run with Debian's torch:  /usr/bin/python3 testdata/make_optim_golden.py
"""

import json
import math
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "optim", "golden.safetensors")

SHAPES = {"p0": (3, 4), "p1": (5,)}
STEPS = 8
# Per-step gradient scales: total norms are ~4·scale, so max_norm 1 clips on
# the large steps and leaves the small ones alone.
SCALES = [0.1, 0.6, 0.15, 1.0, 0.05, 0.5, 0.2, 0.8]


# ---------------------------------------------------------------- schedules

def warmup_lambda(k, warmup):
    return float(k) / float(max(1, warmup))


def constant_lambda(k, warmup, total):
    if k < warmup:
        return warmup_lambda(k, warmup)
    return 1.0


def linear_lambda(k, warmup, total):
    if k < warmup:
        return warmup_lambda(k, warmup)
    return max(0.0, float(total - k) / float(max(1, total - warmup)))


def cosine_lambda(k, warmup, total, num_cycles=0.5):
    if k < warmup:
        return warmup_lambda(k, warmup)
    progress = float(k - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


LAMBDAS = {"constant": constant_lambda, "linear": linear_lambda, "cosine": cosine_lambda}


# ---------------------------------------------------------------- safetensors

def write_safetensors(path, tensors, metadata):
    """tensors: dict name -> float64 numpy array; metadata: dict str -> str."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f8")
        raw = a.tobytes()
        header[name] = {"dtype": "F64", "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = metadata
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + s:8 + n + e], "<f8").reshape(info["shape"])
    return out, header["__metadata__"]


# ---------------------------------------------------------------- scenarios

SCENARIOS = [
    # AdamW with decoupled decay, linear warmup+decay, clipping.
    dict(name="adamw_wd_linear", optimizer="adamw", lr=0.05, beta1=0.9, beta2=0.999,
         eps=1e-8, weight_decay=0.1, max_norm=1.0, schedule="linear", warmup=2,
         total=STEPS, seed=1, none=[]),
    # AdamW without decay, cosine; some gradients are None, so the two
    # parameters' bias corrections (per-parameter step counts) diverge.
    dict(name="adamw_nowd_cosine_none", optimizer="adamw", lr=0.02, beta1=0.9, beta2=0.999,
         eps=1e-8, weight_decay=0.0, max_norm=1.0, schedule="cosine", warmup=1,
         total=STEPS, seed=2, none=[(2, "p1"), (3, "p1"), (5, "p0")]),
    # AdamW, constant schedule without warmup, clipping disabled (max_norm 0
    # in Go; here the norm is only measured).
    dict(name="adamw_noclip_constant", optimizer="adamw", lr=0.01, beta1=0.9, beta2=0.999,
         eps=1e-8, weight_decay=0.1, max_norm=0.0, schedule="constant", warmup=0,
         total=STEPS, seed=3, none=[]),
    # SGD with L2 weight decay, constant schedule with warmup, clipping.
    dict(name="sgd_wd_constant", optimizer="sgd", lr=0.1, beta1=0, beta2=0, eps=0,
         weight_decay=0.1, max_norm=1.0, schedule="constant", warmup=3,
         total=STEPS, seed=4, none=[]),
    # SGD without decay, linear, tighter clipping.
    dict(name="sgd_linear", optimizer="sgd", lr=0.2, beta1=0, beta2=0, eps=0,
         weight_decay=0.0, max_norm=0.5, schedule="linear", warmup=1,
         total=STEPS, seed=5, none=[(4, "p0")]),
]

SCHEDULE_TABLES = [(0, 10), (3, 10), (10, 10), (12, 10), (4, 1), (0, 1), (0, 0), (5, 100)]


def f32(a):
    """Round to float32 values, kept as float64."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def run(sc):
    rng = np.random.default_rng(sc["seed"])
    init = {n: f32(rng.normal(0, 1, s)) for n, s in SHAPES.items()}
    grads = {n: f32(np.stack([rng.normal(0, SCALES[k], s) for k in range(STEPS)]))
             for n, s in SHAPES.items()}
    has = np.ones((STEPS, len(SHAPES)))
    for k, n in sc["none"]:
        has[k, list(SHAPES).index(n)] = 0
        grads[n][k] = 0  # stored as zeros; the mask says None

    params = {n: torch.tensor(init[n], dtype=torch.float64, requires_grad=True) for n in SHAPES}
    plist = [params[n] for n in SHAPES]
    if sc["optimizer"] == "adamw":
        opt = torch.optim.AdamW(plist, lr=sc["lr"], betas=(sc["beta1"], sc["beta2"]),
                                eps=sc["eps"], weight_decay=sc["weight_decay"])
    else:
        opt = torch.optim.SGD(plist, lr=sc["lr"], momentum=0, weight_decay=sc["weight_decay"])
    lam = LAMBDAS[sc["schedule"]]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: lam(k, sc["warmup"], sc["total"]))

    lrs, norms = [], []
    after = {n: [] for n in SHAPES}
    clipped = 0
    for k in range(STEPS):
        for i, n in enumerate(SHAPES):
            params[n].grad = (torch.tensor(grads[n][k], dtype=torch.float64)
                              if has[k, i] else None)
        if sc["max_norm"] > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(plist, sc["max_norm"]))
            clipped += norm > sc["max_norm"]
        else:
            norm = float(torch.nn.utils.clip_grad_norm_(plist, math.inf))
        lr = opt.param_groups[0]["lr"]
        assert abs(lr - sc["lr"] * lam(k, sc["warmup"], sc["total"])) <= 1e-15, (k, lr)
        lrs.append(lr)
        norms.append(norm)
        opt.step()
        sched.step()
        for n in SHAPES:
            after[n].append(params[n].detach().numpy().copy())
    if sc["max_norm"] > 0:
        assert 0 < clipped < STEPS, (sc["name"], clipped)

    out = {f"{sc['name']}.has_grad": has,
           f"{sc['name']}.lr": np.array(lrs),
           f"{sc['name']}.norm": np.array(norms)}
    for n in SHAPES:
        out[f"{sc['name']}.{n}.init"] = init[n]
        out[f"{sc['name']}.{n}.grad"] = grads[n]
        out[f"{sc['name']}.{n}.after"] = np.stack(after[n])
    return out


def main():
    torch.set_default_dtype(torch.float64)
    tensors = {}
    meta_sc = []
    for sc in SCENARIOS:
        tensors.update(run(sc))
        meta_sc.append({k: v for k, v in sc.items() if k not in ("seed", "none")} | {"steps": STEPS})
    meta_sched = []
    for name, lam in LAMBDAS.items():
        for w, t in SCHEDULE_TABLES:
            key = f"schedule.{name}.w{w}.t{t}"
            tensors[key] = np.array([lam(k, w, t) for k in range(t + 5)])
            meta_sched.append({"key": key, "name": name, "warmup": w, "total": t})
    meta = {"format": "pt",
            "scenarios": json.dumps(meta_sc, sort_keys=True),
            "schedules": json.dumps(meta_sched, sort_keys=True)}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_safetensors(OUT, tensors, meta)
    back, back_meta = read_safetensors(OUT)
    assert back_meta == meta
    for k, v in tensors.items():
        assert np.array_equal(back[k], v), k
    print(f"wrote {OUT}: {len(tensors)} tensors, torch {torch.__version__}")


if __name__ == "__main__":
    main()
