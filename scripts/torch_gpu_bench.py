#!/usr/bin/env python3
"""The PyTorch side of `paca bench` on a GPU: the same model shape, batch, sequence, rank, targets,
optimizer and steps, trained on CUDA in float32.

  torch_gpu_bench.py [--shape smollm2-135m] [--seq-len 1024] [--batch-size 1] [--rank 16]
                     [--methods paca,lora,full] [--steps 5] [--warmup 2] [--device cuda] [--json FILE]

The model is a plain-PyTorch LLaMA as in scripts/torch_bench.py (RMSNorm in float32, rotate_half
RoPE, GQA, SwiGLU, tied embeddings where the shape has them, HF's shifted causal-LM loss), with
attention through F.scaled_dot_product_attention (is_causal), as HF's default "sdpa" attention.
The methods:

  lora  HF PEFT's LoRA (LoraConfig + inject_adapter_in_model) when peft is importable, else
        torch_bench.py's replica of PEFT's lora.Linear
  paca  HF PEFT's PaCA when this peft has it (PacaConfig), else torch_bench.py's replica of
        PEFT's PaCA layer (one F.linear with the adapted columns swapped in; saves x[..., I])
  full  the target projections' weights trainable

AdamW (lr 1e-4, no weight decay), clipping at 1.0, random tokens. Per method: median step time
(CUDA-synchronized), tokens/s, and the peak of torch.cuda.max_memory_allocated over the training
steps (model, adapters, gradients, optimizer state and activations), comparable with the peak
accounted tensor memory of `paca bench`.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bench as tb  # noqa: E402  (SHAPES, PROJ, build_model, make_lora, make_paca)


def build_model(torch, s, seed):
    """torch_bench.py's LLaMA with attention through F.scaled_dot_product_attention, as HF's
    default "sdpa" attention (eager where this torch has no SDPA)."""
    return tb.build_model(torch, s, seed, sdpa=True)


def apply_method(torch, model, method, targets, r, alpha, seed):
    """Adapts the target projections; returns (trainable params, what implemented the method)."""
    for p in model.parameters():
        p.requires_grad_(False)
    impl = "this script"
    try:
        import peft
    except ImportError:
        peft = None
    if method == "lora" and peft is not None:
        cfg = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets, bias="none")
        peft.inject_adapter_in_model(cfg, model)
        impl = f"HF PEFT {peft.__version__} LoRA"
    elif method == "paca" and peft is not None and hasattr(peft, "PacaConfig"):
        try:
            cfg = peft.PacaConfig(r=r, paca_alpha=alpha, target_modules=targets, random_seed=seed)
            peft.inject_adapter_in_model(cfg, model)
            impl = f"HF PEFT {peft.__version__} PaCA"
        except Exception as e:  # an API this script does not know: use the replica
            print(f"PEFT PaCA unavailable ({e}); using the replica", file=sys.stderr)
            impl = ""
    else:
        impl = ""
    if impl == "":
        impl = "PEFT-equivalent layer of torch_bench.py"
        gen = torch.Generator().manual_seed(seed)
        for layer in model.layers:
            for name in targets:
                parent = layer.self_attn if name in tb.PROJ[:4] else layer.mlp
                base = getattr(parent, name)
                if method == "full":
                    base.weight.requires_grad_(True)
                    impl = "full fine-tuning"
                elif method == "lora":
                    setattr(parent, name, tb.make_lora(torch, base, r, alpha))
                elif method == "paca":
                    setattr(parent, name, tb.make_paca(torch, base, r, alpha, gen))
                else:
                    raise SystemExit(f"method {method!r} has no PyTorch counterpart here (paca, lora, full)")
    return [p for p in model.parameters() if p.requires_grad], impl


def run_method(torch, a, method):
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    s = tb.SHAPES[a.shape]
    alpha = a.alpha or 2.0 * a.rank
    targets = tb.PROJ if a.targets == "all-linear" else a.targets.split(",")
    model = build_model(torch, s, a.seed)
    params, impl = apply_method(torch, model, method, targets, a.rank, alpha, a.seed)
    model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    gen = torch.Generator().manual_seed(a.seed + 1)
    batches = [torch.randint(0, s["vocab"], (a.batch_size, a.seq_len), generator=gen).to(dev)
               for _ in range(a.warmup + a.steps)]
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, loss_v = [], float("nan")
    for i, ids in enumerate(batches):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = tb.causal_lm_loss(torch, model(ids), ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sync()
        el = time.perf_counter() - t0
        loss_v = loss.item()
        if i >= a.warmup:
            times.append(1000 * el)
        print(f"torch {method}: {'warm-up' if i < a.warmup else 'step'} {i + 1}  {1000 * el:.1f} ms  loss {loss_v:.4f}",
              file=sys.stderr, flush=True)
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    med = statistics.median(times) if times else 0.0
    res = dict(method=method, impl=impl, trainable_params=sum(p.numel() for p in params), step_ms=med,
               step_ms_all=times, tokens_per_s=a.batch_size * a.seq_len / (med / 1000) if med else 0.0,
               peak_bytes=peak, final_loss=loss_v)
    del model, opt, params, batches
    if cuda:
        torch.cuda.empty_cache()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="smollm2-135m", choices=sorted(tb.SHAPES))
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=0)
    ap.add_argument("--methods", default="paca,lora,full")
    ap.add_argument("--targets", default="all-linear")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda", help="cuda, or cpu (to try the script; no memory figures)")
    ap.add_argument("--json")
    a = ap.parse_args()
    import torch
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("PyTorch sees no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 GEMMs, as paca's default
    torch.backends.cudnn.allow_tf32 = False
    try:
        import peft
        peft_version = peft.__version__
    except ImportError:
        peft_version = None
    out = dict(shape=a.shape, seq_len=a.seq_len, batch_size=a.batch_size, rank=a.rank, targets=a.targets,
               steps=a.steps, warmup=a.warmup, torch=torch.__version__, peft=peft_version,
               device=torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu", order=[], methods={})
    for m in [m.strip() for m in a.methods.split(",") if m.strip()]:
        try:
            out["methods"][m] = run_method(torch, a, m)
            out["order"].append(m)
        except Exception as e:  # keep the other methods' figures
            print(f"torch {m}: {type(e).__name__}: {e}", file=sys.stderr)
            out["methods"][m] = dict(method=m, error=f"{type(e).__name__}: {e}")
    if "lora" in out["methods"] and out["methods"]["lora"].get("step_ms"):
        lo = out["methods"]["lora"]
        out["ratios_to_lora"] = {m: dict(step_time=r["step_ms"] / lo["step_ms"],
                                         peak_bytes=r["peak_bytes"] / lo["peak_bytes"] if lo["peak_bytes"] else 0)
                                 for m, r in out["methods"].items() if r.get("step_ms")}
    text = json.dumps(out, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
