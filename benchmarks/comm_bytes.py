"""Bytes a data-parallel step all-reduces: DP-BiTFiT (biases + head) vs full fine-tuning (issue 11).

Counted, not estimated from papers: for each model config (``transformers`` config objects, random init on
the ``meta`` device, so no weights and no memory are needed) the backbone is wrapped exactly as
``dpaudit train`` wraps it (:meth:`BankedClassifier.from_backbone`, the pooler excluded, a 2-way head), a
:class:`~trainers.dp.DPAggregator` is built, and the DP-BiTFiT buffer is the flat buffer its all-reduce
sends (every clipped-sum tensor, fp32). Full fine-tuning all-reduces the gradient of every parameter the
forward pass uses (backbone without the pooler + the same head), fp32, as DDP's buckets do. A ring
all-reduce of B bytes sends ``2(W−1)/W · B`` bytes per rank (Patarasuk & Yuan 2009); both are reported.

``--wall`` also times ``dpaudit train`` (seeded noise, embedded model, ``--n`` examples) as one process (torch's
default threads, and 1 thread) and as ``torchrun --nproc-per-node 2`` (1 thread each, torchrun's default) on
this machine, interleaved ``--rounds`` times.

    PYTHONPATH=. python benchmarks/comm_bytes.py                 # bytes only (seconds)
    PYTHONPATH=. python benchmarks/comm_bytes.py --wall --rounds 2 --n 400
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from _machine import cpu_model  # benchmarks/ is sys.path[0] when a script runs

ROOT = Path(__file__).resolve().parents[1]
FP32 = 4


def _configs() -> dict:
    from transformers import BertConfig, RobertaConfig

    return {
        "BERT-base": BertConfig(),  # 12 × 768, vocab 30522: bert-base-uncased's shape
        "RoBERTa-large": RobertaConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                       intermediate_size=4096, vocab_size=50265, max_position_embeddings=514,
                                       type_vocab_size=1, pad_token_id=1),
    }


def count(config) -> dict:
    """Parameters in each all-reduce buffer for ``config``, built the way ``dpaudit train`` builds it."""
    from transformers import AutoModel

    from dpaudit.clipping import ClippingConfig
    from dpaudit.trainers.classifier import BankedClassifier
    from dpaudit.trainers.dp import DPAggregator
    from dpaudit.trainers.randomness import make_sources

    with torch.device("meta"):
        backbone = AutoModel.from_config(config)
        total = sum(p.numel() for p in backbone.parameters())
        pooler = sum(p.numel() for n, p in backbone.named_parameters() if n.startswith("pooler."))
        clf = BankedClassifier.from_backbone(backbone, num_models=1, num_labels=2, exclude_modules=("pooler",))
        agg = DPAggregator(clf, clipping=ClippingConfig(), noise_multiplier=1.0, sources=make_sources([None]))
    bitfit = sum(acc.numel() for acc in agg.sums)  # DPAggregator._all_reduce's flat buffer (private mode)
    head = clf.head.weight[0].numel() + clf.head.bias[0].numel()
    return {"backbone_params": total, "pooler_params": pooler, "head_params": head,
            "dp_bitfit_params": bitfit, "full_ft_params": total - pooler + head}


def bytes_table() -> list[dict]:
    rows = []
    for name, cfg in _configs().items():
        c = count(cfg)
        b_bitfit, b_full = FP32 * c["dp_bitfit_params"], FP32 * c["full_ft_params"]
        rows.append({"model": name, **c, "dp_bitfit_bytes": b_bitfit, "full_ft_bytes": b_full,
                     "ratio": b_full / b_bitfit, "ring_per_rank_w2": {"dp_bitfit": b_bitfit, "full_ft": b_full},
                     "ring_per_rank_w_large": {"dp_bitfit": 2 * b_bitfit, "full_ft": 2 * b_full}})
    return rows


def _train(world: int, n: int, run_dir: Path, threads: int | None) -> dict:
    args = ["train", "--seeded-noise", "--seed", "0", "--max-examples", str(n), "--epochs", "1", "--batch-size",
            "32", "--set", "privacy.noise_multiplier=1.0", "--device", "cpu", "--quiet", "--run-dir", str(run_dir)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(ROOT)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    if world == 1:
        cmd = [sys.executable, "-m", "dpaudit", *args]
    else:
        cmd = [str(Path(sys.executable).parent / "torchrun"), "--nproc-per-node", str(world), "--master-port",
               "29611", "-m", "dpaudit", *args]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"world": world, "threads_per_process": threads or torch.get_num_threads(), "process_wall_s": wall, "train_time_s": metrics["train_time_s"],
            "steps": metrics["steps"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wall", action="store_true", help="also time dpaudit train on 1 vs 2 processes")
    parser.add_argument("--n", type=int, default=400, help="examples for --wall (embedded data)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "comm_bytes.json"))
    parser.add_argument("--smoke", action="store_true", help="the byte counts only (meta device, seconds); no files")
    args = parser.parse_args(argv)
    if args.smoke:
        args.wall, args.out = False, None
    result = {"cpu": cpu_model(), "nproc": os.cpu_count(), "torch": torch.__version__, "bytes": bytes_table()}
    for row in result["bytes"]:
        print(f"{row['model']}: DP-BiTFiT {row['dp_bitfit_params']:,} params = {row['dp_bitfit_bytes'] / 1e6:.2f} MB; "
              f"full {row['full_ft_params']:,} params = {row['full_ft_bytes'] / 1e9:.3f} GB; ratio {row['ratio']:.0f}×")
    if args.wall:
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            configs = [(1, None), (1, 1), (2, 1)]  # one process (torch's default threads / 1 thread), 2 × 1 thread
            for r in range(args.rounds):
                for world, threads in (configs if r % 2 == 0 else configs[::-1]):
                    run_dir = Path(tmp) / f"r{r}w{world}t{threads}"
                    runs.append({"round": r, **_train(world, args.n, run_dir, threads)})
                    print(runs[-1], flush=True)
        result["wall"] = runs
    if args.out is not None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
