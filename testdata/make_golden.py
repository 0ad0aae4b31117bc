#!/usr/bin/python3
"""Make the golden model fixtures under testdata/golden/.

Each fixture is a tiny random HuggingFace-style LLaMA-family checkpoint
(config.json + model.safetensors), a two-record batch (data.jsonl) and the
reference values computed from it in float64 with PyTorch autograd
(golden.safetensors): logits, the causal-LM loss and the gradient of the loss
with respect to every parameter.

The reference model is written out here (no `transformers` needed) and follows
the semantics of HF `modeling_llama.py` / `modeling_qwen2.py`:
RMSNorm, rotate_half RoPE (optionally llama3-scaled), GQA by repeating KV
heads, SwiGLU MLP, pre-norm residual layers, final norm, lm_head (or the tied
embedding matrix) and the shifted cross-entropy loss with ignore index -100.

Run with Debian's torch:  /usr/bin/python3 testdata/make_golden.py
Deterministic: weights and data come from seeded numpy generators.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "golden")

B, T = 2, 7
IGNORE = -100


# ---------------------------------------------------------------- safetensors

def f32_to_bf16_bits(a):
    """Round-to-nearest-even float32 -> bfloat16, returned as uint16 bits."""
    u = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    rounding = ((u >> 16) & 1) + 0x7FFF
    return ((u + rounding) >> 16).astype("<u2")


def bf16_bits_to_f64(bits):
    return (bits.astype("<u4") << 16).view("<f4").astype(np.float64)


def write_safetensors(path, tensors):
    """tensors: dict name -> (dtype string, shape list, raw little-endian bytes)."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        n = int(np.prod(shape)) if shape else 1
        size = {"F64": 8, "F32": 4, "BF16": 2}[dtype]
        assert len(raw) == n * size, (name, len(raw), n, size)
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Minimal reader, used to check what we wrote round-trips."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        raw = data[base + s:base + e]
        if info["dtype"] == "F32":
            a = np.frombuffer(raw, "<f4").astype(np.float64)
        elif info["dtype"] == "F64":
            a = np.frombuffer(raw, "<f8").copy()
        elif info["dtype"] == "BF16":
            a = bf16_bits_to_f64(np.frombuffer(raw, "<u2"))
        else:
            raise ValueError(info["dtype"])
        out[name] = a.reshape(info["shape"])
    return out


# ---------------------------------------------------------------- model specs

def llama_gqa_config(dtype):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 61,
        "hidden_size": 32,
        "intermediate_size": 40,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        # With head_dim 8 and theta 1e4 the wavelengths are 2*pi*10^k,
        # k = 0..3 = 6.3, 62.8, 628, 6283.  With original 160 the bands are
        # high < 40, low > 160: 6.3 is high (unchanged), 62.8 is medium
        # (smooth = 0.52), 628 and 6283 are low (divided by factor).
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 160,
        },
        "max_position_embeddings": 1280,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pretraining_tp": 1,
        "use_cache": True,
        "torch_dtype": dtype,
        "initializer_range": 0.02,
    }


def llama_tied_config():
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 50,
        "hidden_size": 32,
        "intermediate_size": 36,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "head_dim": 12,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "bos_token_id": 1,
        "eos_token_id": [2, 3],
        "pretraining_tp": 1,
        "use_cache": True,
        "torch_dtype": "float32",
        "initializer_range": 0.02,
    }


def qwen2_bias_config():
    # Like real Qwen2 configs: no head_dim, attention_bias or mlp_bias fields;
    # q/k/v projections carry a bias, o_proj and the MLP do not.
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": 40,
        "hidden_size": 24,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 3,
        "num_key_value_heads": 1,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "rope_scaling": None,
        "max_position_embeddings": 256,
        "max_window_layers": 2,
        "use_sliding_window": False,
        "sliding_window": 256,
        "tie_word_embeddings": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "use_cache": True,
        "torch_dtype": "float32",
        "initializer_range": 0.02,
    }


def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def rope_params(cfg):
    """(theta, scaling dict or None) from either the old or the new form."""
    rp = cfg.get("rope_parameters")
    if rp is not None:
        theta = rp["rope_theta"]
        scaling = rp if rp.get("rope_type", "default") != "default" else None
    else:
        theta = cfg["rope_theta"]
        scaling = cfg.get("rope_scaling")
        if scaling is not None and scaling.get("rope_type", scaling.get("type")) == "default":
            scaling = None
    return theta, scaling


def qkv_bias(cfg):
    if cfg["model_type"] == "qwen2":
        return True
    return bool(cfg.get("attention_bias", False))


def o_bias(cfg):
    if cfg["model_type"] == "qwen2":
        return False
    return bool(cfg.get("attention_bias", False))


def mlp_bias(cfg):
    return bool(cfg.get("mlp_bias", False))


def param_shapes(cfg):
    """Ordered dict of HF parameter name -> shape."""
    V, D, F = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim_of(cfg)
    shapes = {"model.embed_tokens.weight": [V, D]}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = [D]
        for proj, out in (("q_proj", H * hd), ("k_proj", KV * hd), ("v_proj", KV * hd)):
            shapes[p + f"self_attn.{proj}.weight"] = [out, D]
            if qkv_bias(cfg):
                shapes[p + f"self_attn.{proj}.bias"] = [out]
        shapes[p + "self_attn.o_proj.weight"] = [D, H * hd]
        if o_bias(cfg):
            shapes[p + "self_attn.o_proj.bias"] = [D]
        shapes[p + "post_attention_layernorm.weight"] = [D]
        for proj, shp in (("gate_proj", [F, D]), ("up_proj", [F, D]), ("down_proj", [D, F])):
            shapes[p + f"mlp.{proj}.weight"] = shp
            if mlp_bias(cfg):
                shapes[p + f"mlp.{proj}.bias"] = [shp[0]]
    shapes["model.norm.weight"] = [D]
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = [V, D]
    return shapes


def init_params(cfg, seed):
    """Random float32 weights (numpy), large enough that attention is peaked."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("layernorm.weight") or name == "model.norm.weight":
            a = 1.0 + 0.2 * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            a = 0.1 * rng.standard_normal(shape)
        elif name == "model.embed_tokens.weight":
            a = 0.5 * rng.standard_normal(shape)
        else:
            fan_in = shape[1]
            a = (1.6 / math.sqrt(fan_in)) * rng.standard_normal(shape)  # std ~0.25-0.3
        params[name] = a.astype(np.float32)
    return params


def make_batch(vocab, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocab, size=(B, T))
    ids[:, 0] = 1  # bos
    labels = ids.copy()
    labels[0, 0] = IGNORE
    labels[0, 1] = IGNORE
    labels[1, 3] = IGNORE
    return ids, labels


# ---------------------------------------------------------------- reference

def inv_freq_of(cfg):
    hd = head_dim_of(cfg)
    theta, scaling = rope_params(cfg)
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).to(torch.float64) / hd))
    branches = None
    if scaling is not None:
        rt = scaling.get("rope_type", scaling.get("type"))
        assert rt == "llama3", rt
        factor = scaling["factor"]
        low = scaling["low_freq_factor"]
        high = scaling["high_freq_factor"]
        orig = scaling["original_max_position_embeddings"]
        low_wavelen = orig / low
        high_wavelen = orig / high
        wavelen = 2 * math.pi / inv
        out = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (orig / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        out = torch.where(medium, smoothed, out)
        branches = []
        for w, m, s in zip(wavelen.tolist(), medium.tolist(), smooth.tolist()):
            if w < high_wavelen:
                branches.append(("high", w, None))
            elif w > low_wavelen:
                branches.append(("low", w, None))
            else:
                assert m
                branches.append(("medium", w, s))
        inv = out
    return inv, branches


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def linear(x, P, name):
    y = x @ P[name + ".weight"].T
    if name + ".bias" in P:
        y = y + P[name + ".bias"]
    return y


def forward(cfg, P, ids):
    D = cfg["hidden_size"]
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim_of(cfg)
    eps = cfg["rms_norm_eps"]
    Bn, Tn = ids.shape
    inv, _ = inv_freq_of(cfg)
    pos = torch.arange(Tn, dtype=torch.float64)
    freqs = pos[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [T, hd]
    mask = torch.full((Tn, Tn), float("-inf"), dtype=torch.float64).triu(1)
    n_rep = H // KV

    x = P["model.embed_tokens.weight"][ids]  # [B, T, D]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, P[p + "input_layernorm.weight"], eps)
        q = linear(h, P, p + "self_attn.q_proj").view(Bn, Tn, H, hd).transpose(1, 2)
        k = linear(h, P, p + "self_attn.k_proj").view(Bn, Tn, KV, hd).transpose(1, 2)
        v = linear(h, P, p + "self_attn.v_proj").view(Bn, Tn, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head j uses kv head j // n_rep
        k = k[:, :, None].expand(Bn, KV, n_rep, Tn, hd).reshape(Bn, H, Tn, hd)
        v = v[:, :, None].expand(Bn, KV, n_rep, Tn, hd).reshape(Bn, H, Tn, hd)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + mask
        att = torch.softmax(scores, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(Bn, Tn, H * hd)
        x = x + linear(o, P, p + "self_attn.o_proj")
        h = rms_norm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = linear(h, P, p + "mlp.gate_proj")
        u = linear(h, P, p + "mlp.up_proj")
        x = x + linear(torch.nn.functional.silu(g) * u, P, p + "mlp.down_proj")
    x = rms_norm(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else P["lm_head.weight"]
    return x @ head.T, att


def causal_lm_loss(logits, labels):
    V = logits.shape[-1]
    shift_logits = logits[:, :-1].reshape(-1, V)
    shift_labels = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(shift_logits, shift_labels,
                                             ignore_index=IGNORE, reduction="mean")


# ---------------------------------------------------------------- driver

def build(name, cfg, seed, bf16=False, params=None):
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "model"), exist_ok=True)
    if params is None:
        params = init_params(cfg, seed)
    ids, labels = make_batch(cfg["vocab_size"], seed + 1000)

    # checkpoint
    tensors = {}
    P = {}
    for pname, a in params.items():
        if bf16:
            bits = f32_to_bf16_bits(a)
            # cross-check against torch's own rounding
            tb = torch.from_numpy(a).to(torch.bfloat16).view(torch.int16).numpy().view("<u2")
            assert np.array_equal(bits, tb), pname
            tensors[pname] = ("BF16", list(a.shape), bits.tobytes())
            w = bf16_bits_to_f64(bits)
        else:
            tensors[pname] = ("F32", list(a.shape), np.ascontiguousarray(a, "<f4").tobytes())
            w = a.astype(np.float64)
        P[pname] = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    write_safetensors(os.path.join(d, "model", "model.safetensors"), tensors)
    with open(os.path.join(d, "model", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(d, "data.jsonl"), "w") as f:
        for b in range(B):
            f.write(json.dumps({"input_ids": ids[b].tolist(), "labels": labels[b].tolist()}) + "\n")

    # reference
    logits, att = forward(cfg, P, torch.tensor(ids))
    loss = causal_lm_loss(logits, torch.tensor(labels))
    loss.backward()
    lv = loss.item()
    V = cfg["vocab_size"]
    assert math.isfinite(lv), lv
    assert lv > 0.5, f"loss {lv} trivially small"
    for pname, t in P.items():
        g = t.grad
        assert g is not None and torch.isfinite(g).all(), pname
        assert g.abs().max().item() > 1e-6, f"gradient of {pname} is ~0"

    golden = {
        "logits": ("F64", list(logits.shape), logits.detach().numpy().astype("<f8").tobytes()),
        "loss": ("F64", [], np.array(lv, dtype="<f8").tobytes()),
    }
    for pname, t in P.items():
        golden["grad." + pname] = ("F64", list(t.shape), t.grad.numpy().astype("<f8").tobytes())
    gpath = os.path.join(d, "golden.safetensors")
    write_safetensors(gpath, golden)

    # round-trip check of what was written
    back = read_safetensors(os.path.join(d, "model", "model.safetensors"))
    for pname, t in P.items():
        assert np.array_equal(back[pname], t.detach().numpy()), pname
    gback = read_safetensors(gpath)
    assert np.array_equal(gback["logits"], logits.detach().numpy())
    assert gback["loss"].shape == () and gback["loss"] == lv

    last_att_max = att[:, :, -1].max(-1).values.mean().item()
    print(f"{name}: loss={lv:.10f} (ln V = {math.log(V):.4f}), "
          f"max|logit|={logits.abs().max().item():.4f}, "
          f"mean max attn prob at last position (last layer)={last_att_max:.3f}, "
          f"params={len(P)}, counted tokens={(labels[:, 1:] != IGNORE).sum()}")
    for root, _, files in os.walk(d):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            print(f"  wrote {os.path.relpath(p, HERE)} ({os.path.getsize(p)} bytes)")
    return params


def main():
    torch.set_default_dtype(torch.float64)
    cfg = llama_gqa_config("float32")
    _, branches = inv_freq_of(cfg)
    kinds = {b[0] for b in branches}
    print("llama3 rope branches per frequency (kind, wavelen, smooth):")
    for b in branches:
        print("  ", b)
    assert kinds == {"high", "medium", "low"}, branches
    for kind, w, s in branches:
        if kind == "medium":
            assert 0.2 < s < 0.8, s

    params = build("llama_gqa", cfg, seed=1)
    build("llama_tied", llama_tied_config(), seed=2)
    build("qwen2_bias", qwen2_bias_config(), seed=3)
    build("llama_gqa_bf16", llama_gqa_config("bfloat16"), seed=1, bf16=True, params=params)

    total = 0
    for root, _, files in os.walk(OUT):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    print(f"total {total} bytes under {os.path.relpath(OUT, os.getcwd())}")
    assert total < 2_000_000


if __name__ == "__main__":
    sys.exit(main())
