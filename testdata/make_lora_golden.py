#!/usr/bin/python3
"""Make the LoRA and DoRA golden values under testdata/golden/*/.

For each golden model written by make_golden.py (llama_gqa, llama_tied,
qwen2_bias) this attaches a rank-4 adapter (lora_alpha 8, dropout 0) to all
seven projections of every decoder layer and records, in float64 with
PyTorch autograd, the loss, the logits and the gradient of the loss with
respect to every adapter tensor:

  lora_golden.safetensors   LoRA: `<module>.lora_A.weight` [r, in],
                            `<module>.lora_B.weight` [out, r], `loss` [],
                            `logits` [B, T, V], `grad.<module>.lora_A.weight`,
                            `grad.<module>.lora_B.weight`.
                            qwen2_bias also holds an rsLoRA variant (scaling
                            alpha/sqrt(r)) under the same names prefixed
                            `rslora.`.
  dora_golden.safetensors   DoRA (use_dora=True): the same plus
                            `<module>.lora_magnitude_vector` [out] and its
                            gradient `grad.<module>.lora_magnitude_vector`.

`__metadata__` records r, lora_alpha, use_rslora, the scaling and the seed
of each variant (a variant's keys are prefixed with `<variant>.` unless it
is the main one).

A and B are both random and non-zero (PEFT initialises B to zero, which
would make dL/dA vanish and the test weak); the DoRA magnitude is
||W + s B A||_row * (1 + 0.1 noise) so that its gradient is not trivial.
Adapter values are rounded to float32 so that a float32 implementation
loads exactly the values the reference used.

The reference follows HF PEFT (src/peft/tuners/lora/layer.py, variants.py,
dora.py) in plain torch (no peft or transformers needed):

  LoRA:  result = base_layer(x) + lora_B(lora_A(dropout(x))) * scaling
  DoRA:  lora_weight = (lora_B(lora_A(eye))).T            (= B A)
         weight_norm = ||W + scaling * lora_weight.detach()||_row, detached
         mag_norm_scale = m / weight_norm
         base_result = result - bias                      (dropout is identity)
         result = result + (mag_norm_scale - 1) * base_result
                         + mag_norm_scale * lora_B(lora_A(x)) * scaling

The model itself is make_golden.py's reference, imported as a module; only
its `linear` is wrapped to add the adapters.

Run with Debian's torch:  /usr/bin/python3 testdata/make_lora_golden.py
Deterministic: adapter values come from seeded numpy generators.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden as mg  # noqa: E402

R, ALPHA = 4, 8.0
MODELS = [("llama_gqa", 11), ("llama_tied", 12), ("qwen2_bias", 13)]
RSLORA_MODELS = {"qwen2_bias"}
PROJS = [("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"),
         ("self_attn", "o_proj"), ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj")]


def write_safetensors(path, tensors, metadata):
    """tensors: dict name -> float64 numpy array; metadata: dict str -> str."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(tensors[name].shape),
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


def load(name):
    d = os.path.join(mg.OUT, name)
    with open(os.path.join(d, "model", "config.json")) as f:
        cfg = json.load(f)
    P = {k: torch.tensor(v) for k, v in mg.read_safetensors(os.path.join(d, "model", "model.safetensors")).items()}
    ids, labels = [], []
    with open(os.path.join(d, "data.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            ids.append(rec["input_ids"])
            labels.append(rec["labels"])
    return d, cfg, P, torch.tensor(ids), torch.tensor(labels)


def module_paths(cfg):
    return [f"model.layers.{i}.{g}.{p}" for i in range(cfg["num_hidden_layers"]) for g, p in PROJS]


def f32(a):
    return a.astype(np.float32).astype(np.float64)


def make_adapters(cfg, P, seed, dora, scaling):
    rng = np.random.default_rng(seed)
    ad = {}
    for path in module_paths(cfg):
        W = P[path + ".weight"]
        out, inn = W.shape
        bound = 1 / math.sqrt(inn)  # kaiming_uniform_(a=sqrt(5))
        A = f32(rng.uniform(-bound, bound, size=(R, inn)))
        B = f32(0.2 * rng.standard_normal((out, R)))
        a = {"A": torch.tensor(A, requires_grad=True), "B": torch.tensor(B, requires_grad=True)}
        if dora:
            norm = torch.linalg.norm(W + scaling * (a["B"] @ a["A"]).detach(), dim=1).numpy()
            m = f32(norm * (1 + 0.1 * rng.standard_normal(out)))
            a["m"] = torch.tensor(m, requires_grad=True)
        ad[path] = a
    return ad


def run(cfg, P, ids, labels, adapters, scaling, dora):
    base_linear = mg.linear

    def linear(x, P_, name):
        result = base_linear(x, P_, name)
        a = adapters.get(name)
        if a is None:
            return result
        lora_result = (x @ a["A"].T) @ a["B"].T  # lora_B(lora_A(dropout(x))), dropout = identity
        if not dora:
            return result + lora_result * scaling
        eye = torch.eye(a["A"].shape[1])
        lora_weight = ((eye @ a["A"].T) @ a["B"].T).T
        W = P_[name + ".weight"]
        weight_norm = torch.linalg.norm(W + scaling * lora_weight.detach(), dim=1).detach()
        mag_norm_scale = (a["m"] / weight_norm).view(1, -1)
        base_result = result
        if name + ".bias" in P_:
            base_result = result - P_[name + ".bias"]
        return result + (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * scaling

    mg.linear = linear
    try:
        logits, _ = mg.forward(cfg, P, ids)
    finally:
        mg.linear = base_linear
    loss = mg.causal_lm_loss(logits, labels)
    return logits, loss


def check_merged(cfg, P, ids, logits, adapters, scaling, dora):
    """The base model with PEFT's merged weights gives the same logits:
    W + s B A for LoRA, (m / ||W + s B A||_row) (W + s B A) for DoRA."""
    M = dict(P)
    with torch.no_grad():
        for path, a in adapters.items():
            w = P[path + ".weight"] + scaling * (a["B"] @ a["A"])
            if dora:
                w = (a["m"] / torch.linalg.norm(w, dim=1)).view(-1, 1) * w
            M[path + ".weight"] = w
        merged, _ = mg.forward(cfg, M, ids)
    err = (merged - logits).abs().max().item()
    assert err < 1e-12, err


def variant(cfg, P, ids, labels, seed, dora, rslora, prefix=""):
    scaling = ALPHA / math.sqrt(R) if rslora else ALPHA / R
    adapters = make_adapters(cfg, P, seed, dora, scaling)
    logits, loss = run(cfg, P, ids, labels, adapters, scaling, dora)
    check_merged(cfg, P, ids, logits.detach(), adapters, scaling, dora)
    loss.backward()
    lv = loss.item()
    assert math.isfinite(lv) and lv > 0.5, lv
    out = {prefix + "loss": np.array(lv), prefix + "logits": logits.detach().numpy()}
    names = {"A": "lora_A.weight", "B": "lora_B.weight", "m": "lora_magnitude_vector"}
    for path, a in adapters.items():
        for k, t in a.items():
            g = t.grad
            assert g is not None and torch.isfinite(g).all(), (path, k)
            assert g.abs().max().item() > 1e-6, f"gradient of {path} {k} is ~0"
            out[f"{prefix}{path}.{names[k]}"] = t.detach().numpy()
            out[f"{prefix}grad.{path}.{names[k]}"] = g.numpy()
    meta = {
        prefix + "r": str(R),
        prefix + "lora_alpha": repr(ALPHA),
        prefix + "use_rslora": "true" if rslora else "false",
        prefix + "use_dora": "true" if dora else "false",
        prefix + "lora_dropout": "0.0",
        prefix + "scaling": repr(scaling),
        prefix + "seed": str(seed),
    }
    return out, meta, lv


def check_identity(cfg, P, ids, labels, base_loss, dora):
    """With B = 0 (PEFT's init) the adapted model is the base model."""
    scaling = ALPHA / R
    adapters = make_adapters(cfg, P, 0, dora, scaling)
    for path, a in adapters.items():
        with torch.no_grad():
            a["B"].zero_()
            if dora:
                a["m"].copy_(torch.linalg.norm(P[path + ".weight"], dim=1))
    _, loss = run(cfg, P, ids, labels, adapters, scaling, dora)
    assert abs(loss.item() - base_loss) <= 1e-12 * base_loss, (loss.item(), base_loss)


def main():
    torch.set_default_dtype(torch.float64)
    total = 0
    for name, seed in MODELS:
        d, cfg, P, ids, labels = load(name)
        base_loss = mg.read_safetensors(os.path.join(d, "golden.safetensors"))["loss"].item()
        logits, loss = run(cfg, P, ids, labels, {}, 0, False)
        assert abs(loss.item() - base_loss) <= 1e-12, (loss.item(), base_loss)
        for dora in (False, True):
            check_identity(cfg, P, ids, labels, base_loss, dora)

        tensors, meta, lv = variant(cfg, P, ids, labels, seed, dora=False, rslora=False)
        meta["variants"] = "main"
        msg = f"{name}: base loss {base_loss:.8f}, LoRA loss {lv:.8f}"
        if name in RSLORA_MODELS:
            t2, m2, lv2 = variant(cfg, P, ids, labels, seed, dora=False, rslora=True, prefix="rslora.")
            tensors.update(t2)
            meta.update(m2)
            meta["variants"] = "main,rslora"
            msg += f", rsLoRA loss {lv2:.8f}"
        meta["format"] = "pt"
        path = os.path.join(d, "lora_golden.safetensors")
        write_safetensors(path, tensors, meta)
        total += os.path.getsize(path)

        tensors, meta, lv = variant(cfg, P, ids, labels, seed + 100, dora=True, rslora=False)
        meta["variants"] = "main"
        meta["format"] = "pt"
        path = os.path.join(d, "dora_golden.safetensors")
        write_safetensors(path, tensors, meta)
        total += os.path.getsize(path)
        msg += f", DoRA loss {lv:.8f}"

        back = mg.read_safetensors(path)
        for k, v in tensors.items():
            assert np.array_equal(back[k], v), k
        print(msg)
    print(f"total {total} bytes")
    assert total < 1_500_000, total


if __name__ == "__main__":
    sys.exit(main())
