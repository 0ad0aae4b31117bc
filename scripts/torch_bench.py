#!/usr/bin/python3
"""The incumbent side of `paca bench`: the same training step in PyTorch.

  torch_bench.py [--shape smollm2-135m] [--seq-len 512] [--batch-size 1] [--rank 16]
                 [--methods paca,lora,full] [--steps 3] [--warmup 1] [--threads 2] [--json FILE]
  torch_bench.py compare GO.json TORCH.json      Go/PyTorch table of two result files

Builds the shapes of `paca bench` (tiny, smollm2-135m, llama-7b-layer) with random weights as a
plain-PyTorch LLaMA that follows HF transformers' modeling_llama (eager attention: the T×T
probabilities are materialized, as HF does without SDPA; RMSNorm in float32; rotate_half RoPE;
GQA by repeating KV heads; SwiGLU MLP; tied embeddings where the shape has them; HF's shifted
causal-LM loss), then for each method in a process of its own (so that its peak RSS is its own):

  lora  HF PEFT's LoRA layer: base_layer(x) + lora_B(lora_A(dropout(x))) * alpha/r, with lora_A and
        lora_B separate nn.Linear modules (A kaiming-uniform(a=√5), B zero), lora_dropout 0 (Identity)
  paca  HF PEFT's PaCA layer (src/peft/tuners/paca/layer.py): a torch.autograd.Function that swaps
        the adapted columns W[:, I] + s·Δ into the base weight, runs one F.linear, restores the
        columns, and saves only x[..., I] (plus the out×r original and adapted columns); backward
        swaps them in again for dx = dy W_eff and computes dΔ = s · dyᵀ x[..., I]
  full  the target projections' weights trainable (as `paca bench`/`paca train --method full`)

on the target projections (all seven by default), and trains with torch.optim.AdamW (lr 1e-4,
weight decay 0, clipping at 1.0 as `paca bench`) on random tokens: --warmup untimed and --steps
timed steps. Prints per method the median step time, tokens/s and peak RSS: ru_maxrss of the
worker process (import torch, model, training) and the peak over the training steps alone
(VmHWM reset through /proc/self/clear_refs once the model and optimizer were in place).

Needs only Debian's python3-torch (apt-get install python3-torch): no transformers, no peft.
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

METHODS = ["paca", "lora", "full"]
PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# The shapes of paca/bench/shapes.go.
SHAPES = {
    "tiny": dict(vocab=256, hidden=64, inter=160, layers=2, heads=4, kv=2, head_dim=16, eps=1e-5,
                 theta=10000.0, tied=True, max_pos=2048),
    "smollm2-135m": dict(vocab=49152, hidden=576, inter=1536, layers=30, heads=9, kv=3, head_dim=64,
                         eps=1e-5, theta=100000.0, tied=True, max_pos=8192),
    "llama-7b-layer": dict(vocab=1024, hidden=4096, inter=11008, layers=1, heads=32, kv=32, head_dim=128,
                           eps=1e-6, theta=10000.0, tied=False, max_pos=4096),
}


def proc_status():
    """(VmRSS, VmHWM) of this process in bytes, from /proc/self/status (0, 0 without /proc)."""
    rss = hwm = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, hwm


def reset_peak_rss():
    """Set VmHWM back to the current RSS (Linux ≥ 4.0); True if it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- the model


def build_model(torch, shape, seed, sdpa=False):
    """HF's LLaMA in plain PyTorch, eager attention; with sdpa (HF's default on torch >= 2) through
    F.scaled_dot_product_attention where this torch has it."""
    nn, F = torch.nn, torch.nn.functional
    use_sdpa = sdpa and hasattr(F, "scaled_dot_product_attention")

    class RMSNorm(nn.Module):
        def __init__(self, n, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))
            self.eps = eps

        def forward(self, x):
            dt = x.dtype
            x = x.to(torch.float32)
            var = x.pow(2).mean(-1, keepdim=True)
            x = x * torch.rsqrt(var + self.eps)
            return self.weight * x.to(dt)

    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def repeat_kv(x, n):
        if n == 1:
            return x
        b, kv, t, d = x.shape
        return x[:, :, None, :, :].expand(b, kv, n, t, d).reshape(b, kv * n, t, d)

    class Attention(nn.Module):
        def __init__(self, s):
            super().__init__()
            h, kv, d, c = s["heads"], s["kv"], s["head_dim"], s["hidden"]
            self.h, self.kv, self.d = h, kv, d
            self.q_proj = nn.Linear(c, h * d, bias=False)
            self.k_proj = nn.Linear(c, kv * d, bias=False)
            self.v_proj = nn.Linear(c, kv * d, bias=False)
            self.o_proj = nn.Linear(h * d, c, bias=False)

        def forward(self, x, cos, sin, mask):
            b, t, _ = x.shape
            q = self.q_proj(x).view(b, t, self.h, self.d).transpose(1, 2)
            k = self.k_proj(x).view(b, t, self.kv, self.d).transpose(1, 2)
            v = self.v_proj(x).view(b, t, self.kv, self.d).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = repeat_kv(k, self.h // self.kv)
            v = repeat_kv(v, self.h // self.kv)
            if use_sdpa:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                w = torch.matmul(q, k.transpose(2, 3)) * (self.d ** -0.5) + mask
                w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
                o = torch.matmul(w, v)
            return self.o_proj(o.transpose(1, 2).reshape(b, t, self.h * self.d))

    class MLP(nn.Module):
        def __init__(self, s):
            super().__init__()
            c, i = s["hidden"], s["inter"]
            self.gate_proj = nn.Linear(c, i, bias=False)
            self.up_proj = nn.Linear(c, i, bias=False)
            self.down_proj = nn.Linear(i, c, bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nn.Module):
        def __init__(self, s):
            super().__init__()
            self.self_attn = Attention(s)
            self.mlp = MLP(s)
            self.input_layernorm = RMSNorm(s["hidden"], s["eps"])
            self.post_attention_layernorm = RMSNorm(s["hidden"], s["eps"])

        def forward(self, x, cos, sin, mask):
            x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
            return x + self.mlp(self.post_attention_layernorm(x))

    class Llama(nn.Module):
        def __init__(self, s):
            super().__init__()
            self.s = s
            self.embed_tokens = nn.Embedding(s["vocab"], s["hidden"])
            self.layers = nn.ModuleList([Layer(s) for _ in range(s["layers"])])
            self.norm = RMSNorm(s["hidden"], s["eps"])
            self.lm_head = nn.Linear(s["hidden"], s["vocab"], bias=False)
            if s["tied"]:
                self.lm_head.weight = self.embed_tokens.weight
            d = s["head_dim"]
            self.register_buffer("inv_freq", 1.0 / (s["theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d)),
                                 persistent=False)

        def forward(self, ids):
            b, t = ids.shape
            x = self.embed_tokens(ids)
            pos = torch.arange(t, dtype=torch.float32, device=ids.device)
            freqs = torch.outer(pos, self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos()[None, None], emb.sin()[None, None]
            mask = None if use_sdpa else torch.full((t, t), torch.finfo(torch.float32).min, device=ids.device).triu(1)[None, None]
            for layer in self.layers:
                x = layer(x, cos, sin, mask)
            return self.lm_head(self.norm(x))

    torch.manual_seed(seed)
    m = Llama(shape)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
    return m


def causal_lm_loss(torch, logits, labels):
    """HF's loss: logits at t predict label t+1, mean over the counted tokens."""
    v = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits[:, :-1, :].reshape(-1, v).float(),
                                             labels[:, 1:].reshape(-1), ignore_index=-100)


# ---------------------------------------------------------------- the methods


def make_lora(torch, base, r, alpha):
    nn = torch.nn

    class LoraLinear(nn.Module):
        """HF PEFT's lora.Linear (one adapter, not merged, use_dora=False)."""

        def __init__(self):
            super().__init__()
            self.base_layer = base
            self.lora_dropout = nn.Identity()  # lora_dropout = 0
            self.lora_A = nn.Linear(base.in_features, r, bias=False)
            self.lora_B = nn.Linear(r, base.out_features, bias=False)
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B.weight)
            self.scaling = alpha / r

        def forward(self, x):
            result = self.base_layer(x)
            x = x.to(self.lora_A.weight.dtype)
            return result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling

    return LoraLinear()


def make_paca(torch, base, r, alpha, gen):
    nn, F = torch.nn, torch.nn.functional

    class PacaFunction(torch.autograd.Function):
        """HF PEFT's _PacaLinearFunction for one adapter."""

        @staticmethod
        def forward(ctx, x, bias, layer, idx, scaling, delta):
            weight = layer.base_layer.weight.data
            original = weight.index_select(1, idx)
            adapted = torch.empty_like(original)
            torch.add(original, delta, alpha=scaling, out=adapted)
            weight.index_copy_(1, idx, adapted)
            try:
                result = F.linear(x, weight, bias)
            finally:
                weight.index_copy_(1, idx, original)
            x_part = x.index_select(-1, idx).to(result.dtype)
            ctx.save_for_backward(x_part, original, adapted)
            ctx.layer, ctx.idx, ctx.scaling = layer, idx, scaling
            ctx.delta_dtype, ctx.x_dtype = delta.dtype, x.dtype
            return result

        @staticmethod
        def backward(ctx, grad_output):
            x_part, original, adapted = ctx.saved_tensors
            grad_x = grad_delta = None
            if ctx.needs_input_grad[0]:
                weight = ctx.layer.base_layer.weight.data
                weight.index_copy_(1, ctx.idx, adapted)
                try:
                    grad_x = grad_output.matmul(weight.to(grad_output.dtype))
                finally:
                    weight.index_copy_(1, ctx.idx, original)
                grad_x = grad_x.to(ctx.x_dtype)
            if ctx.needs_input_grad[5]:
                g2 = grad_output.reshape(-1, grad_output.shape[-1])
                x2 = x_part.reshape(-1, x_part.shape[-1]).to(g2.dtype)
                grad_delta = torch.mm(g2.t(), x2).to(ctx.delta_dtype)
                if ctx.scaling != 1:
                    grad_delta.mul_(ctx.scaling)
            return grad_x, None, None, None, None, grad_delta

    class PacaLinear(nn.Module):
        """HF PEFT's paca.Linear (one adapter, not merged)."""

        def __init__(self):
            super().__init__()
            self.base_layer = base
            idx = torch.randperm(base.in_features, generator=gen)[:r]
            self.register_buffer("paca_indices", torch.sort(idx).values)
            self.paca_delta = nn.Parameter(torch.zeros(base.out_features, r))
            self.scaling = alpha / r

        def forward(self, x):
            return PacaFunction.apply(x, self.base_layer.bias, self, self.paca_indices, self.scaling, self.paca_delta)

    return PacaLinear()


def apply_method(torch, model, method, targets, r, alpha, seed):
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    for layer in model.layers:
        for name in targets:
            parent = layer.self_attn if name in PROJ[:4] else layer.mlp
            base = getattr(parent, name)
            if method == "full":
                base.weight.requires_grad_(True)
            elif method == "lora":
                setattr(parent, name, make_lora(torch, base, r, alpha))
            elif method == "paca":
                setattr(parent, name, make_paca(torch, base, r, alpha, gen))
            else:
                raise SystemExit(f"method {method!r} has no PyTorch counterpart here (paca, lora, full)")
    return [p for p in model.parameters() if p.requires_grad]


# ---------------------------------------------------------------- running


def worker(a):
    rss_start, _ = proc_status()
    import torch
    torch.set_num_threads(a.threads)
    rss_torch, _ = proc_status()
    s = SHAPES[a.shape]
    alpha = a.alpha or 2.0 * a.rank
    targets = PROJ if a.targets == "all-linear" else a.targets.split(",")
    model = build_model(torch, s, a.seed)
    model.train()
    params = apply_method(torch, model, a.method, targets, a.rank, alpha, a.seed)
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    gen = torch.Generator().manual_seed(a.seed + 1)
    batches = [torch.randint(0, s["vocab"], (a.batch_size, a.seq_len), generator=gen)
               for _ in range(a.warmup + a.steps)]

    rss_before, setup_hwm = proc_status()
    reset_ok = reset_peak_rss()
    times, loss_v = [], float("nan")
    for i, ids in enumerate(batches):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = causal_lm_loss(torch, model(ids), ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        el = time.perf_counter() - t0
        loss_v = loss.item()
        kind = "warm-up" if i < a.warmup else "step"
        print(f"torch {a.method}: {kind} {i + 1 if i < a.warmup else i - a.warmup + 1}  {1000 * el:.1f} ms  loss {loss_v:.4f}",
              file=sys.stderr, flush=True)
        if i >= a.warmup:
            times.append(1000 * el)
    _, train_hwm = proc_status()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    step = statistics.median(times)
    res = dict(method=a.method, trainable_params=trainable, step_ms=step, step_ms_all=times,
               tokens_per_s=a.batch_size * a.seq_len / (step / 1000), final_loss=loss_v,
               peak_rss_bytes=max(maxrss, setup_hwm, train_hwm), train_peak_rss_bytes=train_hwm if reset_ok else 0,
               rss_before_train_bytes=rss_before, rss_after_import_bytes=rss_torch, rss_at_start_bytes=rss_start,
               torch=torch.__version__, threads=torch.get_num_threads())
    print(json.dumps(res), flush=True)


def fmt_bytes(n):
    for u, m in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= m:
            return f"{n / m:.2f} {u}"
    return f"{n} B"


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = []
    for r in [header] + rows:
        out.append("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
    return "\n".join(out)


def run_all(a):
    results = {}
    order = [m.strip() for m in a.methods.split(",") if m.strip()]
    skipped = [m for m in order if m not in METHODS]
    if skipped:
        print(f"PyTorch side skips {','.join(skipped)}: no counterpart here (bitsandbytes/DoRA not implemented)",
              file=sys.stderr)
        order = [m for m in order if m in METHODS]
    if not order:
        raise SystemExit(f"no method with a PyTorch counterpart (want some of {','.join(METHODS)})")
    for m in order:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", m] + [
            f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items()
            if k not in ("worker", "methods", "json", "cmd", "files") and v is not None]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, text=True).stdout
        results[m] = json.loads(out.strip().splitlines()[-1])
    s = SHAPES[a.shape]
    any_r = next(iter(results.values()))
    print(f"\nPyTorch {any_r['torch']}, {any_r['threads']} threads; {a.shape}; batch {a.batch_size} × seq {a.seq_len}, "
          f"rank {a.rank} on {a.targets}; AdamW, {a.warmup} warm-up + {a.steps} timed steps (median); "
          f"one process per method")
    lora = results.get("lora")
    rows = []
    for m in order:
        r = results[m]
        row = [m, r["trainable_params"], f"{r['step_ms']:.1f} ms", f"{r['tokens_per_s']:.1f}",
               fmt_bytes(r["peak_rss_bytes"]), fmt_bytes(r["train_peak_rss_bytes"]), fmt_bytes(r["rss_after_import_bytes"])]
        if lora:
            row += [f"{r['step_ms'] / lora['step_ms']:.2f}×", f"{r['peak_rss_bytes'] / lora['peak_rss_bytes']:.2f}×"]
        rows.append(row)
    header = ["method", "trainable", "step (median)", "tokens/s", "peak RSS", "train RSS", "RSS after import"]
    if lora:
        header += ["step/LoRA", "RSS/LoRA"]
    print(table(rows, header))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(shape=a.shape, seq_len=a.seq_len, batch_size=a.batch_size, rank=a.rank, targets=a.targets,
                           steps=a.steps, warmup=a.warmup, threads=a.threads, order=order, methods=results,
                           date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), f, indent=2)
        print(f"wrote {a.json}", file=sys.stderr)


def compare(go_paths, torch_paths):
    """Median over rounds of each side's figures, and the Go/PyTorch ratios."""
    def load(paths):
        runs = [json.load(open(p)) for p in paths]
        out = {}
        for m in runs[0]["order"]:
            rs = [r["methods"][m] for r in runs if m in r["methods"]]
            out[m] = {k: statistics.median(r[k] for r in rs)
                      for k in ("step_ms", "tokens_per_s", "peak_rss_bytes", "train_peak_rss_bytes")}
            out[m]["peak_bytes"] = statistics.median(r.get("peak_bytes", 0) for r in rs)
        return runs[0]["order"], out, len(runs)

    go_order, go, n_go = load(go_paths)
    t_order, tr, n_t = load(torch_paths)
    print(f"\nGo (paca bench) next to PyTorch, medians over {n_go} and {n_t} run(s):")
    rows = []
    for m in go_order + [m for m in t_order if m not in go]:
        g, t = go.get(m), tr.get(m)
        gs = lambda k, f: f(g[k]) if g else "–"
        ts = lambda k, f: f(t[k]) if t else "–"
        rat = lambda k: f"{g[k] / t[k]:.2f}×" if g and t and t[k] else "–"
        rows.append([m, gs("step_ms", lambda v: f"{v:.0f} ms"), ts("step_ms", lambda v: f"{v:.0f} ms"), rat("step_ms"),
                     gs("peak_rss_bytes", fmt_bytes), ts("peak_rss_bytes", fmt_bytes), rat("peak_rss_bytes"),
                     gs("train_peak_rss_bytes", fmt_bytes), ts("train_peak_rss_bytes", fmt_bytes),
                     gs("peak_bytes", fmt_bytes)])
    print(table(rows, ["method", "Go step", "PyTorch step", "Go/PyTorch", "Go peak RSS", "PyTorch peak RSS",
                       "Go/PyTorch", "Go train RSS", "PyTorch train RSS", "Go accounted"]))
    for m in ("paca",):
        if m in go and "lora" in go:
            print(f"\nGo PaCA / Go LoRA: step time {go['paca']['step_ms'] / go['lora']['step_ms']:.2f}×, "
                  f"peak accounted {go['paca']['peak_bytes'] / go['lora']['peak_bytes']:.2f}×, "
                  f"peak RSS {go['paca']['peak_rss_bytes'] / go['lora']['peak_rss_bytes']:.2f}×")
        if m in tr and "lora" in tr:
            print(f"PyTorch PaCA / PyTorch LoRA: step time {tr['paca']['step_ms'] / tr['lora']['step_ms']:.2f}×, "
                  f"peak RSS {tr['paca']['peak_rss_bytes'] / tr['lora']['peak_rss_bytes']:.2f}×")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        # compare GO.json[,GO2.json…] TORCH.json[,TORCH2.json…]
        if len(sys.argv) != 4:
            raise SystemExit("usage: torch_bench.py compare GO.json[,…] TORCH.json[,…]")
        compare(sys.argv[2].split(","), sys.argv[3].split(","))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="smollm2-135m", choices=sorted(SHAPES))
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=0.0, help="0: 2·rank, as paca bench")
    p.add_argument("--methods", default="paca,lora,full")
    p.add_argument("--targets", default="all-linear")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.steps < 1:
        raise SystemExit("--steps must be at least 1")
    if a.worker:
        a.method = a.worker
        worker(a)
    else:
        run_all(a)


if __name__ == "__main__":
    main()
