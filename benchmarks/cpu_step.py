"""CPU step time and peak memory of DP-BiTFiT (dpaudit) against non-private BiTFiT and Opacus.

Model: the embedded all-MiniLM-L6-v2 (``dpaudit.models.load_backbone(None)``), mean pooling, a 2-way linear
head. Batch: ``--batch`` real Rotten Tomatoes snippets (``dpaudit.data.load_dataset``), padded/truncated
to ``--seq`` tokens (a fixed batch; padding is masked). One optimizer step (forward, backward, DP
processing, Adam update) of:

  bitfit         (i)   non-private BiTFiT: plain autograd, backbone biases + head trainable — the reference
  dpaudit        (ii)  dpaudit DP-BiTFiT: BankedClassifier K=1 + DPAggregator accumulate/finalize + step
  opacus_bitfit  (iii) Opacus DP-SGD, biases + head trainable (GradSampleModule + DPOptimizer)
  opacus_full    (iv)  Opacus DP-SGD, every parameter trainable
  dpaudit_bank4        dpaudit with a BiasBank of K=4 models, batch/4 examples each (same total batch)

Identical for every method: dropout probabilities set to 0 on the model (not eval mode — Opacus only
captures per-sample gradients in train mode) and every module in train mode; the backbone's pooler is
removed (never trained, and mean pooling replaces it; dpaudit excludes it anyway); ``token_type_ids``
and ``position_ids`` are passed with a batch dimension (Opacus' per-sample embedding gradients need it).

Each (method, round) runs in its own subprocess. Peak memory = peak RSS during warm-up + timed steps
minus RSS just before the first step (model, batch and optimizer built): the peak is reset with
``/proc/self/clear_refs`` (Linux) and read from ``VmHWM``; elsewhere ``ru_maxrss`` is the fallback (it
then includes the model load). Rounds are interleaved (round r runs every method once, in order) so
machine noise hits all methods alike; ratios to ``bitfit`` are taken per round and the median reported.

    PYTHONPATH=. python benchmarks/cpu_step.py                   # defaults: 32 x 64, 3 rounds
    PYTHONPATH=. python benchmarks/cpu_step.py --smoke           # 2 x 8, 1 step: checks the script
    PYTHONPATH=. python benchmarks/cpu_step.py --profile dpaudit # torch.profiler table of one method

Writes ``--out`` (JSON, default benchmarks/results/cpu_step.json) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from _machine import cpu_model  # benchmarks/ is sys.path[0] when a script runs

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "bitfit": "(i) non-private BiTFiT (plain autograd)",
    "dpaudit": "(ii) dpaudit DP-BiTFiT, K=1",
    "opacus_bitfit": "(iii) Opacus DP bias-only",
    "opacus_full": "(iv) Opacus DP full fine-tuning",
    "dpaudit_bank4": "dpaudit DP-BiTFiT, BiasBank K=4 (batch/4 per model)",
}
NUM_LABELS = 2
RESULT_TAG = "RESULT "


# ----------------------------------------------------------------------------------------------- memory
def _proc_status() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _ru_maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


# ----------------------------------------------------------------------------------------------- worker
def _load(batch: int, seq: int):
    """(backbone with dropout 0, no pooler, train mode; batch dict) — the same for every method."""
    import numpy as np
    import torch
    from torch import nn

    from dpaudit.data import load_dataset
    from dpaudit.models import load_backbone

    backbone, tokenizer, _ = load_backbone(None)
    backbone.config.hidden_dropout_prob = 0.0
    backbone.config.attention_probs_dropout_prob = 0.0
    for mod in backbone.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
    backbone.pooler = None
    backbone.train()  # from_pretrained returns eval mode
    ds = load_dataset(path=None)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(ds), size=batch, replace=False)
    enc = tokenizer([ds.texts[i] for i in idx], padding="max_length", truncation=True, max_length=seq,
                    return_tensors="pt")
    b = {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "token_type_ids": torch.zeros_like(enc["input_ids"]),
        "position_ids": torch.arange(seq).expand(batch, seq).contiguous(),
        "labels": torch.as_tensor(ds.labels[idx], dtype=torch.long),
    }
    return backbone, b


def _build(method: str, backbone, lr: float = 5e-3):
    """(step(batch) -> None, info dict) for one method."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    if method in ("dpaudit", "dpaudit_bank4"):
        from dpaudit.trainers.classifier import BankedClassifier
        from dpaudit.trainers.dp import ClippingConfig, DPAggregator
        from dpaudit.trainers.randomness import make_sources

        k = 4 if method == "dpaudit_bank4" else 1
        clf = BankedClassifier.from_backbone(backbone, num_models=k, num_labels=NUM_LABELS)
        clf.train()
        agg = DPAggregator(clf, clipping=ClippingConfig(max_grad_norm=1.0), noise_multiplier=1.0,
                           sources=make_sources(list(range(k))))
        steps_done = [0]  # finalize() keys the seeded noise by the step
        opt = torch.optim.Adam([s.param for s in clf.slots], lr=lr)

        def step(batch: dict) -> None:
            b = batch["input_ids"].shape[0]
            m = torch.arange(k).repeat_interleave(b // k)
            logits = clf(batch["input_ids"], batch["attention_mask"], m, batch["token_type_ids"])
            F.cross_entropy(logits.float(), batch["labels"], reduction="sum").backward()
            agg.accumulate()
            agg.finalize(expected_batch_size=[b / k] * k, step=steps_done[0])
            steps_done[0] += 1
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step, {"trainable_per_model": clf.bank.num_trainable(), "kernels": agg.kernels.name}

    class MeanPoolClassifier(nn.Module):  # the same pooling and head as BankedClassifier
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            self.head = nn.Linear(backbone.config.hidden_size, NUM_LABELS)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

        def forward(self, input_ids, attention_mask, token_type_ids, position_ids):
            h = self.backbone(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * mask).sum(1) / mask.sum(1).clamp_min(1.0))

    net = MeanPoolClassifier().train()
    if method in ("bitfit", "opacus_bitfit"):
        for name, p in net.named_parameters():
            p.requires_grad_(name.endswith("bias") or name.startswith("head."))
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    module, dp_opt = net, None
    if method.startswith("opacus"):
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        module = GradSampleModule(net, batch_first=True, loss_reduction="mean")
        module.train()

    def step(batch: dict) -> None:
        nonlocal dp_opt
        b = batch["input_ids"].shape[0]
        logits = module(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], batch["position_ids"])
        F.cross_entropy(logits, batch["labels"]).backward()
        o = opt
        if method.startswith("opacus"):
            if dp_opt is None:
                dp_opt = DPOptimizer(opt, noise_multiplier=1.0, max_grad_norm=1.0, expected_batch_size=b)
            o = dp_opt
        o.step()
        o.zero_grad(set_to_none=True)

    return step, {"trainable_per_model": sum(p.numel() for p in params)}


def _emit(record: dict) -> None:
    print(RESULT_TAG + json.dumps(record), flush=True)


def worker(spec: dict) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    method = spec["method"]
    rec = {"method": method, "label": METHODS[method], "round": spec["round"], "batch": spec["batch"],
           "seq": spec["seq"], "threads": torch.get_num_threads()}
    try:
        backbone, batch = _load(spec["batch"], spec["seq"])
        step, info = _build(method, backbone)
        rec.update(info)
        if spec.get("profile"):
            _profile(step, batch, spec)
            return
        import gc

        gc.collect()
        base = _proc_status()
        reset = _reset_peak()
        ru_before = _ru_maxrss_bytes()
        for _ in range(spec["warmup"]):
            step(batch)
        times, cpu = [], []
        for _ in range(spec["steps"]):
            t0, c0 = time.perf_counter(), time.process_time()
            step(batch)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        after = _proc_status()
        if reset and "VmHWM" in after:
            peak, how = after["VmHWM"] - base["VmRSS"], "VmHWM after clear_refs minus VmRSS before the first step"
        else:
            peak, how = _ru_maxrss_bytes() - ru_before, "ru_maxrss growth (0 if the model load was the peak)"
        rec.update(status="ok", steps=len(times), times_ms=[1e3 * t for t in times],
                   median_ms=1e3 * statistics.median(times), min_ms=1e3 * min(times), max_ms=1e3 * max(times),
                   cpu_times_ms=[1e3 * t for t in cpu], cpu_median_ms=1e3 * statistics.median(cpu),
                   baseline_rss_mib=base.get("VmRSS", 0) / 2**20, peak_growth_mib=peak / 2**20, memory_method=how)
    except Exception as exc:  # noqa: BLE001 — reported, the run goes on
        rec.update(status="error", error=f"{type(exc).__name__}: {str(exc)[:1500]}",
                   traceback=traceback.format_exc()[-3000:])
    _emit(rec)


def _profile(step, batch, spec) -> None:
    from torch.profiler import ProfilerActivity, profile

    for _ in range(spec["warmup"]):
        step(batch)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False, with_stack=False) as prof:
        for _ in range(spec["steps"]):
            step(batch)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))


# ----------------------------------------------------------------------------------------------- parent
def _run_worker(spec: dict, timeout: float) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        out, err, status = proc.stdout, proc.stderr, f"exit {proc.returncode}"
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        status = f"killed after {timeout:.0f}s"
    for line in out.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    return {"method": spec["method"], "label": METHODS[spec["method"]], "round": spec["round"], "status": "error",
            "error": f"{status}, no result; stderr tail: {err[-1500:]}"}


def _summarise(records: list[dict], methods: list[str]) -> list[dict]:
    ok = [r for r in records if r.get("status") == "ok"]
    ref = {r["round"]: r for r in ok if r["method"] == "bitfit"}
    bank1 = {r["round"]: r for r in ok if r["method"] == "dpaudit"}
    rows = []
    for m in methods:
        rs = [r for r in ok if r["method"] == m]
        row = {"method": m, "label": METHODS[m], "rounds_ok": len(rs),
               "errors": [r.get("error") for r in records if r["method"] == m and r.get("status") != "ok"]}
        if rs:
            row["median_ms"] = statistics.median(r["median_ms"] for r in rs)
            row["round_medians_ms"] = [round(r["median_ms"], 1) for r in rs]
            row["peak_growth_mib"] = statistics.median(r["peak_growth_mib"] for r in rs)
            row["trainable_per_model"] = rs[0].get("trainable_per_model")
            row["cpu_median_ms"] = statistics.median(r["cpu_median_ms"] for r in rs)
            row["min_ms"] = min(r["min_ms"] for r in rs)
            t_ratio = [r["median_ms"] / ref[r["round"]]["median_ms"] for r in rs if r["round"] in ref]
            c_ratio = [r["cpu_median_ms"] / ref[r["round"]]["cpu_median_ms"] for r in rs if r["round"] in ref]
            if c_ratio:
                row["cpu_ratio_vs_bitfit"] = statistics.median(c_ratio)
                row["cpu_ratio_per_round"] = [round(x, 3) for x in c_ratio]
            m_ratio = [r["peak_growth_mib"] / ref[r["round"]]["peak_growth_mib"] for r in rs
                       if r["round"] in ref and ref[r["round"]]["peak_growth_mib"] > 0]
            if t_ratio:
                row["time_ratio_vs_bitfit"] = statistics.median(t_ratio)
                row["time_ratio_per_round"] = [round(x, 3) for x in t_ratio]
            if m_ratio:
                row["mem_ratio_vs_bitfit"] = statistics.median(m_ratio)
            if m == "dpaudit_bank4":
                b = [bank1[r["round"]]["median_ms"] / r["median_ms"] for r in rs if r["round"] in bank1]
                if b:  # same total batch: throughput ratio = time(K=1) / time(K=4)
                    row["throughput_ratio_vs_k1"] = statistics.median(b)
                    row["cpu_throughput_ratio_vs_k1"] = statistics.median(
                        bank1[r["round"]]["cpu_median_ms"] / r["cpu_median_ms"] for r in rs if r["round"] in bank1)
        rows.append(row)
    return rows


def _markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"CPU step, {meta['model']}, batch {meta['batch']} x seq {meta['seq']}, fp32, "
             f"{meta['threads']} torch thread(s), median of {meta['steps']} steps after {meta['warmup']} warm-up, "
             f"{meta['rounds']} interleaved rounds (Opacus full: {meta['full_steps']} steps after {meta['full_warmup']} "
             f"warm-up, {meta['full_rounds']} round(s))",
             "",
             "| method | wall median (ms) | × BiTFiT wall | CPU-time median (ms) | × BiTFiT CPU | peak RSS growth (MiB) "
             "| × BiTFiT memory | trainable/model |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "median_ms" not in r:
            lines.append(f"| {r['label']} | error: {(r['errors'] or ['?'])[0][:80]} | | | | | | |")
            continue
        extra = (f" (throughput vs K=1: wall {r['throughput_ratio_vs_k1']:.2f}×, CPU {r['cpu_throughput_ratio_vs_k1']:.2f}×)"
                 if "throughput_ratio_vs_k1" in r else "")
        nan = float("nan")
        lines.append(f"| {r['label']}{extra} | {r['median_ms']:.0f} | {r.get('time_ratio_vs_bitfit', nan):.3f} "
                     f"| {r['cpu_median_ms']:.0f} | {r.get('cpu_ratio_vs_bitfit', nan):.3f} "
                     f"| {r['peak_growth_mib']:.0f} | {r.get('mem_ratio_vs_bitfit', nan):.3f} "
                     f"| {r['trainable_per_model']:,} |")
    lines += ["", "Ratios are medians over rounds of (method / BiTFiT in the same round). CPU time = "
              "time.process_time() of the worker (all its threads), less sensitive to other processes than wall time."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--full-steps", type=int, default=None,
                    help="timed steps for opacus_full (slow on CPU); default: --steps")
    ap.add_argument("--full-warmup", type=int, default=None, help="warm-up steps for opacus_full; default: --warmup")
    ap.add_argument("--full-rounds", type=int, default=None,
                    help="run opacus_full only in the first N rounds (about 30 s/step on 2 cores); default: all")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per worker")
    ap.add_argument("--profile", default=None, help="print a torch.profiler table for this method and exit")
    ap.add_argument("--smoke", action="store_true", help="batch 4 x seq 8, 1 step, 1 round; no files written")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu_step.json"))
    args = ap.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if args.smoke:
        args.batch, args.seq, args.steps, args.warmup, args.rounds, args.full_steps = 4, 8, 1, 1, 1, 1
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}; choose from {list(METHODS)}")
    if "dpaudit_bank4" in methods and args.batch % 4:
        ap.error("--batch must be divisible by 4 for dpaudit_bank4")
    base_spec = {"batch": args.batch, "seq": args.seq, "warmup": args.warmup, "threads": args.threads}
    if args.profile:
        spec = {**base_spec, "method": args.profile, "round": 0, "steps": args.steps, "profile": True}
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        return subprocess.call([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)], env=env)

    records = []
    start = time.time()
    partial = Path(tempfile.gettempdir()) / "dpaudit_cpu_step.partial.json"
    for rnd in range(args.rounds):
        for m in methods:
            spec = {**base_spec, "method": m, "round": rnd, "steps": args.steps}
            if m == "opacus_full":
                if args.full_rounds is not None and rnd >= args.full_rounds:
                    continue
                spec["steps"] = args.full_steps or args.steps
                spec["warmup"] = args.full_warmup if args.full_warmup is not None else args.warmup
            t0 = time.time()
            rec = _run_worker(spec, args.timeout)
            records.append(rec)
            msg = (f"{rec['median_ms']:.0f} ms/step, peak +{rec['peak_growth_mib']:.0f} MiB"
                   if rec.get("status") == "ok" else rec.get("error", "")[:300])
            print(f"[round {rnd + 1}/{args.rounds}] {m}: {msg} ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
            if not args.smoke:  # keep what finished if the run is interrupted
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps({"records": records}, indent=1) + "\n")
    rows = _summarise(records, methods)
    import torch

    meta = {
        "benchmark": "cpu_step", "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": "all-MiniLM-L6-v2 (embedded, dpaudit.models.load_backbone(None))",
        "data": "Rotten Tomatoes snippets (embedded), 0-seeded random batch, padded/truncated",
        "batch": args.batch, "seq": args.seq, "steps": args.steps, "full_steps": args.full_steps or args.steps,
        "warmup": args.warmup, "rounds": args.rounds, "full_rounds": args.full_rounds or args.rounds,
        "full_warmup": args.full_warmup if args.full_warmup is not None else args.warmup, "threads": records[0].get("threads") if records else None,
        "optimizer": "Adam lr 5e-3", "dropout": "p=0 in every Dropout module, train mode, pooler removed",
        "dp": "C=1, sigma=1, Abadi clipping, all-layer",
        "cpu": cpu_model(), "nproc": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "wall_s": round(time.time() - start, 1),
        "command": "python " + " ".join([os.path.relpath(__file__, ROOT)] + (argv if argv is not None else sys.argv[1:])),
        "targets": {"dpaudit_time_ratio_max": 1.10, "dpaudit_mem_ratio_max": 1.05},
    }
    table = _markdown(rows, meta)
    print(table)
    if not args.smoke:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "summary": rows, "records": records}, indent=1) + "\n")
        partial.unlink(missing_ok=True)
        print(f"\nwrote {out}", file=sys.stderr)
    return 0 if all(r.get("status") == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
