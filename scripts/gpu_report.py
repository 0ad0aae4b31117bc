#!/usr/bin/env python3
"""Writes the Markdown results table of scripts/gpu_run.sh from the files in its output folder:
machine.txt, tests.tsv, go_bench.json and torch_bench.json (each optional).

  gpu_report.py OUT_DIR > OUT_DIR/gpu_results.md
"""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def mib(n):
    return f"{n / 2**20:.1f} MiB" if n else "–"


def num(x, fmt):
    return fmt.format(x) if x else "–"


def main():
    out = sys.argv[1]
    print("# paca on the GPU\n")
    try:
        with open(os.path.join(out, "machine.txt")) as f:
            print("```\n" + f.read().strip() + "\n```\n")
    except OSError:
        pass

    rows = []
    try:
        with open(os.path.join(out, "tests.tsv")) as f:
            rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    except OSError:
        pass
    if rows:
        print("## Tests (`go test -c -tags cuda` binaries)\n")
        print("| package | result | passed | failed | skipped | seconds | ran on |")
        print("|---|---|---:|---:|---:|---:|---|")
        for pkg, rc, p, fl, sk, secs, *on in rows:
            res = "ok" if rc == "0" else ("timeout" if rc == "124" else f"FAIL (exit {rc})")
            print(f"| {pkg} | {res} | {p} | {fl} | {sk} | {secs} | {(on or [''])[0]} |")
        total_fail = sum(int(r[3]) for r in rows)
        print(f"\n{sum(int(r[2]) for r in rows)} passed, {total_fail} failed, {sum(int(r[4]) for r in rows)} skipped "
              "(subtests included); failing tests are listed in test.PKG.log.\n")

    go, pt = load(os.path.join(out, "go_bench.json")), load(os.path.join(out, "torch_bench.json"))
    if go:
        print(f"## Training step: {go.get('shape')}, batch {go.get('batch_size')} × seq {go.get('seq_len')}, "
              f"rank {go.get('rank')}, {go.get('steps')} timed steps (median)\n")
        print(f"paca backend: {go.get('backend', '?')}")
        if pt:
            print(f"PyTorch {pt.get('torch')} on {pt.get('device')}; PEFT {pt.get('peft') or 'not installed'}")
        print()
        print("| method | side | implementation | step time | tokens/s | peak memory | step time / LoRA | memory / LoRA |")
        print("|---|---|---|---:|---:|---:|---:|---:|")
        order = list(go.get("order", []))
        for m in (pt or {}).get("order", []):
            if m not in order:
                order.append(m)
        for m in order:
            g = go.get("methods", {}).get(m)
            if g:
                r = go.get("ratios_to_lora", {}).get(m, {})
                print(f"| {m} | paca (Go) | accounted tensor memory | {num(g.get('step_ms'), '{:.1f} ms')} | "
                      f"{num(g.get('tokens_per_s'), '{:.0f}')} | {mib(g.get('peak_bytes'))} | "
                      f"{num(r.get('step_time'), '{:.2f}×')} | {num(r.get('peak_bytes'), '{:.2f}×')} |")
            t = (pt or {}).get("methods", {}).get(m)
            if t:
                if t.get("error"):
                    print(f"| {m} | PyTorch | {t['error']} | – | – | – | – | – |")
                    continue
                r = pt.get("ratios_to_lora", {}).get(m, {})
                print(f"| {m} | PyTorch | {t.get('impl')} (max_memory_allocated) | {num(t.get('step_ms'), '{:.1f} ms')} | "
                      f"{num(t.get('tokens_per_s'), '{:.0f}')} | {mib(t.get('peak_bytes'))} | "
                      f"{num(r.get('step_time'), '{:.2f}×')} | {num(r.get('peak_bytes'), '{:.2f}×')} |")
        print()
        gm = go.get("methods", {})
        if gm:
            cats = sorted({c for r in gm.values() for c in r.get("peak_by_category", {})})
            print("paca's peak accounted memory by category:\n")
            print("| method | " + " | ".join(cats) + " |")
            print("|---|" + "---:|" * len(cats))
            for m, r in gm.items():
                print(f"| {m} | " + " | ".join(mib(r.get("peak_by_category", {}).get(c, 0)) for c in cats) + " |")
            print()
    elif os.path.exists(os.path.join(out, "go_bench.log")):
        print("## paca bench failed\n\n```")
        with open(os.path.join(out, "go_bench.log")) as f:
            print("".join(f.readlines()[-30:]))
        print("```")


if __name__ == "__main__":
    main()
