"""Step time and peak memory of DP-BiTFiT (dpaudit, torch and fused paths) against its baselines.

Issue 3: "a private step at the cost of a non-private one". For a random-weight BERT-base and BERT-large
encoder (``transformers.BertConfig``) with mean pooling and a 2-way linear head, at batch×seq 32×128
and 64×512, it times one optimizer step (forward, backward, DP processing, SGD update) of:

  (a) full      non-private full fine-tuning (plain autograd)
  (b) bitfit    non-private BiTFiT: biases + head trainable, plain autograd — the reference
  (c) opacus_bitfit  Opacus DP-SGD, biases + head trainable (GradSampleModule + DPOptimizer)
  (d) opacus_full    Opacus DP-SGD, everything trainable
  (e) dpaudit_torch  dpaudit DP-BiTFiT (BankedClassifier + DPAggregator), torch path (DPAUDIT_FUSED=0)
  (f) dpaudit_fused  the same with the fused Triton kernels
  (g) dpaudit_bank16 (f) with a BiasBank of K=16 models, B/16 examples each (same total batch)

fp32 (TF32 matmuls unless --no-tf32) for all; bf16 autocast also for (b), (e), (f). Each method runs
in its own subprocess (one per method and model; peak memory is ``torch.cuda.max_memory_allocated``
reset before each configuration), reports the median step time of up to ``--steps`` steps after
``--warmup``, and ratios are taken against (b) from the same run. Failures (OOM, missing opacus, …)
are caught per configuration and reported. Results go to ``--out`` (JSON) and a Markdown table to
stdout (and ``gpu_step.md`` beside the JSON; both also into ``$OUT`` when that folder exists).

    PYTHONPATH=. python benchmarks/gpu_step.py            # on the GPU, from the repo root
    PYTHONPATH=. python benchmarks/gpu_step.py --smoke    # CPU, tiny BERT, 1 step: checks the script
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

METHODS = {
    "bitfit": "(b) non-private BiTFiT",
    "dpaudit_fused": "(f) dpaudit DP-BiTFiT fused",
    "dpaudit_torch": "(e) dpaudit DP-BiTFiT torch",
    "full": "(a) non-private full FT",
    "opacus_bitfit": "(c) Opacus DP bias-only",
    "dpaudit_bank16": "(g) dpaudit bank K=16",
    "opacus_full": "(d) Opacus DP full FT",
}  # run order: the most important first, in case the time budget runs out
BF16_METHODS = ("bitfit", "dpaudit_fused", "dpaudit_torch")
MODELS = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
SMOKE_MODEL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
SHAPES = ((32, 128), (64, 512))
SMOKE_SHAPES = ((16, 8), (32, 16))
BANK_K = 16
NUM_LABELS = 2
RESULT_TAG = "RESULT "


# ----------------------------------------------------------------------------------------------- worker
def _build(method: str, model: str, smoke: bool, device):
    """(model, step(batch, bf16) -> None, kernel names) for one method; weights random, train mode."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from transformers import BertConfig, BertModel

    dims = SMOKE_MODEL if smoke else MODELS[model]
    cfg = BertConfig(vocab_size=30522 if not smoke else 128, max_position_embeddings=512, **dims)
    with torch.device(device):
        backbone = BertModel(cfg, add_pooling_layer=False)
    backbone.train()  # (from_pretrained would return eval mode; a config-built model is already in train)
    lr = 1e-5

    if method.startswith("dpaudit"):
        from dpaudit.trainers.classifier import BankedClassifier
        from dpaudit.trainers.dp import ClippingConfig, DPAggregator
        from dpaudit.trainers.randomness import make_sources

        k = BANK_K if method == "dpaudit_bank16" else 1
        clf = BankedClassifier.from_backbone(backbone, num_models=k, num_labels=NUM_LABELS).train()
        agg = DPAggregator(clf, clipping=ClippingConfig(max_grad_norm=1.0), noise_multiplier=1.0,
                           sources=make_sources(list(range(k))))
        steps_done = [0]  # finalize() keys the seeded noise by the step
        opt = torch.optim.SGD([s.param for s in clf.slots], lr=lr)

        def step(batch: dict, bf16: bool) -> None:
            b = batch["input_ids"].shape[0]
            m = torch.arange(k, device=device).repeat_interleave(b // k)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = clf(batch["input_ids"], batch["attention_mask"], m, batch["token_type_ids"])
            F.cross_entropy(logits.float(), batch["labels"], reduction="sum").backward()
            agg.accumulate()
            agg.finalize(expected_batch_size=[b / k] * k, step=steps_done[0])
            steps_done[0] += 1
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step, lambda: {"bank": clf.bank._kernels.name, "aggregator": agg.kernels.name}

    class MeanPoolClassifier(nn.Module):  # the same pooling and head as BankedClassifier
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            self.head = nn.Linear(cfg.hidden_size, NUM_LABELS)

        def forward(self, input_ids, attention_mask, token_type_ids, position_ids):
            h = self.backbone(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * mask).sum(1) / mask.sum(1).clamp_min(1.0))

    net = MeanPoolClassifier().to(device).train()
    if method in ("bitfit", "opacus_bitfit"):
        for name, p in net.named_parameters():
            p.requires_grad_(name.endswith("bias") or name.startswith("head."))
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr)
    module = net
    if method.startswith("opacus"):
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        module = GradSampleModule(net, batch_first=True, loss_reduction="mean")
        dp_opts: dict[int, DPOptimizer] = {}

    def step(batch: dict, bf16: bool) -> None:
        b = batch["input_ids"].shape[0]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            # position_ids / token_type_ids with a batch dimension: Opacus' per-sample embedding grads need it
            logits = module(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                            batch["position_ids"])
        F.cross_entropy(logits.float(), batch["labels"]).backward()
        o = opt
        if method.startswith("opacus"):
            if b not in dp_opts:
                dp_opts[b] = DPOptimizer(opt, noise_multiplier=1.0, max_grad_norm=1.0, expected_batch_size=b)
            o = dp_opts[b]
        o.step()
        o.zero_grad(set_to_none=True)

    return step, lambda: {}


def _batch(b: int, t: int, vocab: int, device) -> dict:
    import torch

    g = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(0, vocab, (b, t), generator=g).to(device),
        "attention_mask": torch.ones(b, t, dtype=torch.long, device=device),
        "token_type_ids": torch.zeros(b, t, dtype=torch.long, device=device),
        "position_ids": torch.arange(t, device=device).expand(b, t).contiguous(),
        "labels": torch.randint(0, NUM_LABELS, (b,), generator=g).to(device),
    }


def _emit(record: dict) -> None:
    print(RESULT_TAG + json.dumps(record), flush=True)


def worker(spec: dict) -> None:
    """Run one (method, model) over its configurations; print one RESULT line per configuration."""
    method, model, smoke = spec["method"], spec["model"], spec["smoke"]
    root = str(Path(__file__).resolve().parents[1])  # `trainers` importable without PYTHONPATH=.
    if root not in sys.path:
        sys.path.insert(0, root)
    if smoke and method in ("dpaudit_fused", "dpaudit_bank16"):
        os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: the kernels run on CPU
    import torch

    device = torch.device("cpu" if smoke or not torch.cuda.is_available() else "cuda")
    cuda = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = bool(spec["tf32"])
    torch.backends.cudnn.allow_tf32 = bool(spec["tf32"])
    base = {"method": method, "label": METHODS[method], "model": model, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if cuda else None, "torch": torch.__version__}
    configs = [(b, t, p) for (b, t) in spec["shapes"] for p in spec["precisions"]]
    try:
        if not smoke and not cuda:
            raise RuntimeError("no CUDA device visible (use --smoke to check the script on CPU)")
        if smoke and method in ("dpaudit_fused", "dpaudit_bank16"):  # off CUDA, backend() would pick torch
            import dpaudit.trainers.bank
            import dpaudit.trainers.dp
            from dpaudit.trainers.fused import FusedBackend

            dpaudit.trainers.bank.kernel_backend = dpaudit.trainers.dp.kernel_backend = lambda *a, **k: FusedBackend
        step, kernels = _build(method, model, smoke, device)
    except Exception as exc:  # noqa: BLE001 — reported per configuration, the run goes on
        err = f"{type(exc).__name__}: {exc}"
        for b, t, p in configs:
            _emit({**base, "batch": b, "seq": t, "precision": p, "status": "error", "error": err[:2000],
                   "traceback": traceback.format_exc()[-3000:]})
        return
    vocab = 128 if smoke else 30522
    for b, t, precision in configs:
        rec = {**base, "batch": b, "seq": t, "precision": precision}
        if time.time() > spec["deadline"]:
            _emit({**rec, "status": "skipped", "error": "time budget spent (--budget-s)"})
            continue
        batch = None
        try:
            batch = _batch(b, t, vocab, device)
            bf16 = precision == "bf16"
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(device)
            for _ in range(spec["warmup"]):
                step(batch, bf16)
            times: list[float] = []
            start = time.perf_counter()
            for _ in range(spec["steps"]):
                t0 = time.perf_counter()
                step(batch, bf16)
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
                if len(times) >= spec["min_steps"] and time.perf_counter() - start > spec["max_config_s"]:
                    break
            rec.update(status="ok", steps=len(times), median_ms=1e3 * statistics.median(times),
                       min_ms=1e3 * min(times), max_ms=1e3 * max(times),
                       peak_mem_gib=torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
                       kernels=kernels())
            want = {"dpaudit_fused": "fused", "dpaudit_bank16": "fused", "dpaudit_torch": "torch"}.get(method)
            if want and set(rec["kernels"].values()) != {want}:
                rec.update(status="wrong-path", error=f"asked for the {want} path, ran {rec['kernels']}")
        except Exception as exc:  # noqa: BLE001
            oom = isinstance(exc, torch.OutOfMemoryError) if hasattr(torch, "OutOfMemoryError") else False
            rec.update(status="oom" if oom else "error", error=f"{type(exc).__name__}: {str(exc)[:1500]}")
            if not oom:
                rec["traceback"] = traceback.format_exc()[-3000:]
        finally:
            del batch
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
        _emit(rec)


def kernel_check(spec: dict) -> None:
    """Fused vs torch path on CUDA at BERT sizes: max relative error and median µs per call."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    if spec["smoke"]:
        os.environ["TRITON_INTERPRET"] = "1"
    import torch

    from dpaudit.trainers import bias_sums
    from dpaudit.trainers.fused import FusedBackend

    device = torch.device("cpu" if spec["smoke"] or not torch.cuda.is_available() else "cuda")
    cuda = device.type == "cuda"
    if spec["smoke"]:
        rowsum_cases, bank_cases, reps = [(4, 8, 33), (2, 5, 3, 3)], [(16, 16, 33)], 2
    else:
        rowsum_cases = [(32, 128, 768), (32, 128, 3072), (64, 512, 768), (64, 512, 3072),
                        (32, 64, 56, 56)]  # the last: channels-first conv output (B, C, H, W)
        bank_cases = [(32, 1, 768), (64, 1, 3072), (512, 16, 768), (1024, 16, 3072)]
        reps = 50

    def timed(fn) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(reps):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return 1e6 * statistics.median(times)

    def rel(a, b) -> float:
        return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))

    for kind, cases in (("rowsum_sqnorm", rowsum_cases), ("scaled_bank_sum", bank_cases)):
        for case in cases:
            for dtype in (torch.float32, torch.bfloat16):
                rec = {"kernel": kind, "shape": list(case), "dtype": str(dtype).replace("torch.", "")}
                try:
                    g = torch.Generator(device=device).manual_seed(0)
                    if kind == "rowsum_sqnorm":
                        cd = 1 if len(case) == 4 else -1
                        x = torch.randn(*case, generator=g, device=device).to(dtype)
                        sq_f, sq_t = torch.zeros(case[0], device=device), torch.zeros(case[0], device=device)
                        err = max(rel(FusedBackend.rowsum_sqnorm(x, cd, sq_f), bias_sums.rowsum_sqnorm(x, cd, sq_t)),
                                  rel(sq_f, sq_t))
                        args = (x, cd, torch.zeros(case[0], device=device))
                    else:
                        b, k, p = case
                        x = torch.randn(b, p, generator=g, device=device).to(dtype)
                        sc = torch.rand(b, generator=g, device=device)
                        m = torch.randint(0, k, (b,), generator=g, device=device)
                        o_f, o_t = torch.zeros(k, p, device=device), torch.zeros(k, p, device=device)
                        FusedBackend.scaled_bank_sum(x, sc, m, o_f)
                        bias_sums.scaled_bank_sum(x, sc, m, o_t)
                        err = rel(o_f, o_t)
                        args = (x, sc, m, torch.zeros(k, p, device=device))
                    tol = 1e-5 if dtype == torch.float32 else 1e-2
                    fused_us = timed(lambda: getattr(FusedBackend, kind)(*args))
                    torch_us = timed(lambda: getattr(bias_sums, kind)(*args))
                    rec.update(status="ok" if err <= tol else "MISMATCH", rel_err=err, tol=tol,
                               fused_us=fused_us, torch_us=torch_us, speedup=torch_us / fused_us)
                except Exception as exc:  # noqa: BLE001
                    rec.update(status="error", error=f"{type(exc).__name__}: {str(exc)[:1500]}",
                               traceback=traceback.format_exc()[-3000:])
                _emit(rec)


# ----------------------------------------------------------------------------------------------- parent
def _run_kernel_check(smoke: bool, timeout: float) -> list[dict]:
    cmd = [sys.executable, os.path.abspath(__file__), "--kernel-check", json.dumps({"smoke": smoke})]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        recs = [json.loads(x[len(RESULT_TAG):]) for x in out.splitlines() if x.startswith(RESULT_TAG)]
        return recs + [{"kernel": "-", "status": "error", "error": f"kernel check killed after {timeout:.0f}s"}]
    recs = [json.loads(x[len(RESULT_TAG):]) for x in proc.stdout.splitlines() if x.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not recs:
        recs.append({"kernel": "-", "status": "error",
                     "error": f"exit {proc.returncode}; stderr tail: {proc.stderr[-1500:]}"})
    return recs


def _run_worker(spec: dict, timeout: float) -> list[dict]:
    env = dict(os.environ)
    env["DPAUDIT_FUSED"] = "0" if spec["method"] == "dpaudit_torch" else "1"
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
        status = None if proc.returncode == 0 else f"worker exited with {proc.returncode}"
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        status = f"worker killed after {timeout:.0f}s"
    records = [json.loads(line[len(RESULT_TAG):]) for line in out.splitlines() if line.startswith(RESULT_TAG)]
    done = {(r["batch"], r["seq"], r["precision"]) for r in records}
    for b, t in spec["shapes"]:
        for p in spec["precisions"]:
            if (b, t, p) not in done:
                records.append({"method": spec["method"], "label": METHODS[spec["method"]], "model": spec["model"],
                                "batch": b, "seq": t, "precision": p, "status": "error",
                                "error": f"{status or 'no result'}; stderr tail: {err[-1500:]}"})
    return records


def _ratios(results: list[dict]) -> list[dict]:
    """Fill ``ratio_vs_bitfit``; return the BiasBank throughput comparisons."""
    ok = {(r["model"], r["batch"], r["seq"], r["precision"], r["method"]): r for r in results if r["status"] == "ok"}
    bank = []
    for r in results:
        key = (r["model"], r["batch"], r["seq"], r["precision"])
        ref = ok.get(key + ("bitfit",))
        r["ratio_vs_bitfit"] = r["median_ms"] / ref["median_ms"] if r["status"] == "ok" and ref else None
        single = ok.get(key + ("dpaudit_fused",))
        if r["method"] == "dpaudit_bank16" and r["status"] == "ok" and single:
            bank.append({"model": r["model"], "batch": r["batch"], "seq": r["seq"], "precision": r["precision"],
                         "num_models": BANK_K, "examples_per_model": r["batch"] // BANK_K,
                         "bank_ms": r["median_ms"], "single_model_ms": single["median_ms"],
                         "throughput_ratio": single["median_ms"] / r["median_ms"]})
    return bank


def _markdown(results: list[dict], bank: list[dict], kernels: list[dict]) -> str:
    def f(x, fmt):
        return format(x, fmt) if isinstance(x, (int, float)) else "–"

    lines = []
    if kernels:
        lines += ["Kernels: fused (Triton) vs torch path, one call, median µs (rowsum shape B,T,p or B,C,H,W; bank B,K,p)", "",
                  "| kernel | shape | dtype | rel. err | torch µs | fused µs | speedup | status |",
                  "|---|---|---|---:|---:|---:|---:|---|"]
        for k in kernels:
            status = k["status"] if k["status"] == "ok" else f"{k['status']}: {str(k.get('error', ''))[:80]}"
            lines.append(f"| {k['kernel']} | {k.get('shape', '')} | {k.get('dtype', '')} | {f(k.get('rel_err'), '.1e')} | "
                         f"{f(k.get('torch_us'), '.1f')} | {f(k.get('fused_us'), '.1f')} | "
                         f"{f(k.get('speedup'), '.2f')} | {status} |")
        lines.append("")
    lines += ["| model | batch×seq | prec | method | median ms | × BiTFiT (b) | peak GiB | steps | status |",
             "|---|---|---|---|---:|---:|---:|---:|---|"]
    for r in results:
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {str(r.get('error', ''))[:60]}"
        lines.append(f"| {r['model']} | {r['batch']}×{r['seq']} | {r['precision']} | {r['label']} | "
                     f"{f(r.get('median_ms'), '.1f')} | {f(r.get('ratio_vs_bitfit'), '.3f')} | "
                     f"{f(r.get('peak_mem_gib'), '.2f')} | {r.get('steps', '–')} | {status} |")
    if bank:
        lines += ["", f"BiasBank: K={BANK_K} models × B/{BANK_K} examples vs one model at the same total batch "
                  "(fused path; throughput ratio = single-model step time / bank step time)", "",
                  "| model | batch×seq | prec | bank ms | single ms | throughput ratio |", "|---|---|---|---:|---:|---:|"]
        for x in bank:
            lines.append(f"| {x['model']} | {x['batch']}×{x['seq']} | {x['precision']} | {x['bank_ms']:.1f} | "
                         f"{x['single_model_ms']:.1f} | {x['throughput_ratio']:.3f} |")
    return "\n".join(lines)


def _write(path: Path, payload: dict, md: str) -> list[Path]:
    targets = [path]
    out = os.environ.get("OUT")
    if out and Path(out).is_dir():
        targets.append(Path(out) / path.name)
    for p in targets:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(payload, indent=2) + "\n")
        p.with_suffix(".md").write_text(md + "\n")
    return targets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny BERT, 1 step: checks the script end to end")
    ap.add_argument("--models", default=None, help=f"comma list of {list(MODELS)} (default: all)")
    ap.add_argument("--methods", default=None, help=f"comma list of {list(METHODS)} (default: all)")
    ap.add_argument("--shapes", default=None, help="comma list of BxT, e.g. 32x128,64x512 (default)")
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast variants of (b), (e), (f)")
    ap.add_argument("--no-tf32", action="store_true", help="fp32 matmuls without TF32 (slower, 'true' fp32)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per configuration (at most)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, autotuning, caches)")
    ap.add_argument("--min-steps", type=int, default=5, help="timed steps always taken, even past --max-config-s")
    ap.add_argument("--max-config-s", type=float, default=6.0, help="stop timing a configuration after this long")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="whole-run wall-clock budget; configurations past it are reported as skipped")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/gpu_step.json)")
    ap.add_argument("--no-kernel-check", action="store_true",
                    help="skip the fused-vs-torch kernel correctness and timing check run first")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--kernel-check", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if args.kernel_check:
        kernel_check(json.loads(args.kernel_check))
        return 0

    t_start = time.time()
    models = args.models.split(",") if args.models else list(MODELS)
    methods = args.methods.split(",") if args.methods else list(METHODS)
    for name, given, known in (("models", models, MODELS), ("methods", methods, METHODS)):
        bad = [x for x in given if x not in known]
        if bad:
            ap.error(f"--{name} must be among {list(known)}, got {bad}")
    if args.shapes:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",")]
    else:
        shapes = list(SMOKE_SHAPES if args.smoke else SHAPES)
    if any(b % BANK_K for b, _ in shapes) and "dpaudit_bank16" in methods:
        ap.error(f"every batch must be a multiple of {BANK_K} for dpaudit_bank16, got shapes {shapes}")
    if args.smoke:
        models = models[:1]
        args.steps, args.warmup, args.min_steps = min(args.steps, 1), min(args.warmup, 1), 1
    out = args.out or (Path(tempfile.gettempdir()) / "dpaudit_gpu_step_smoke.json" if args.smoke
                       else Path(__file__).resolve().parent / "results" / "gpu_step.json")
    deadline = t_start + args.budget_s

    kernels: list[dict] = []
    if not args.no_kernel_check:
        kernels = _run_kernel_check(args.smoke, timeout=120.0)
        for k in kernels:
            print(f"[{time.time() - t_start:6.1f}s] kernel {k['kernel']} {k.get('shape', '')} {k.get('dtype', '')}: "
                  f"{k['status']} {k.get('speedup', k.get('error', ''))}", file=sys.stderr, flush=True)
    results: list[dict] = []
    for model in models:
        for method in methods:
            precisions = ["fp32"] + (["bf16"] if method in BF16_METHODS and not args.no_bf16 else [])
            spec = {"method": method, "model": model, "smoke": args.smoke, "shapes": shapes,
                    "precisions": precisions, "steps": args.steps, "warmup": args.warmup,
                    "min_steps": args.min_steps, "max_config_s": args.max_config_s, "deadline": deadline,
                    "tf32": not args.no_tf32}
            if time.time() > deadline:
                recs = [{"method": method, "label": METHODS[method], "model": model, "batch": b, "seq": t,
                         "precision": p, "status": "skipped", "error": "time budget spent (--budget-s)"}
                        for b, t in shapes for p in precisions]
            else:
                recs = _run_worker(spec, timeout=max(60.0, deadline - time.time() + 90.0))
            for r in recs:
                ms = f"{r['median_ms']:.1f} ms, {r.get('peak_mem_gib') or 0:.2f} GiB" if r["status"] == "ok" else \
                    f"{r['status']}: {str(r.get('error', ''))[:200]}"
                print(f"[{time.time() - t_start:6.1f}s] {model} {r['batch']}x{r['seq']} {r['precision']} "
                      f"{method}: {ms}", file=sys.stderr, flush=True)
            results.extend(recs)
            bank = _ratios(results)
            payload = {"schema": "dpaudit.benchmarks.gpu_step/1", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "smoke": args.smoke, "python": sys.version.split()[0],
                       "gpu": next((r.get("gpu") for r in results if r.get("gpu")), None),
                       "torch": next((r.get("torch") for r in results if r.get("torch")), None),
                       "settings": {k: v for k, v in spec.items() if k not in ("method", "model", "precisions")},
                       "elapsed_s": time.time() - t_start, "kernels": kernels, "results": results, "bank": bank}
            _write(out, payload, _markdown(results, bank, kernels))  # after every worker: a timeout keeps what ran
    md = _markdown(results, _ratios(results), kernels)
    print(md)
    print(f"\nwrote {', '.join(str(p) for p in _write(out, payload, md))} in {time.time() - t_start:.0f}s")
    return 0 if any(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
