"""Flags shared by ``train``, ``audit`` and ``verify``, their translation into config overrides, and the input
checks every one of them runs before torch is imported (:func:`check_inputs`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dpaudit.config import FALLBACKS, DataConfig, TrainConfig, parse_override, preset_help


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (sections data, model, privacy, clipping, optim, "
                        "train, audit); flags below override it.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config key, e.g. --set optim.lr=0.01 (repeatable)")
    parser.add_argument("--run-dir", help="output directory (created; an existing run there is resumed)")
    parser.add_argument("--data", help="CSV/TSV/JSONL/Parquet file, saved Hugging Face datasets directory, image folder, "
                        "'embedded' (default: Rotten Tomatoes) or 'embedded-images' (Fashion-MNIST; docs/images.md)")
    parser.add_argument("--model", help="local Hugging Face checkpoint dir (text or vision), 'embedded' "
                        "(all-MiniLM-L6-v2), 'embedded-lm' (SmolLM2-135M, --task causal-lm) or 'embedded-vision'; "
                        "a vision model reads the data as images")
    parser.add_argument("--task", choices=["classification", "causal-lm"],
                        help="model.task: a sequence classifier (default) or next-token fine-tuning")
    parser.add_argument("--completion-column", help="causal LM: column of the completion learned after the text "
                        "(data.completion_column; default: none, every token)")
    parser.add_argument("--text-column", help=f"column holding the text (data.text_column; default "
                        f"'{DataConfig.text_column}')")
    parser.add_argument("--label-column", help=f"column holding the class label (data.label_column; default "
                        f"'{DataConfig.label_column}')")
    parser.add_argument("--text-pair-column", help="column holding the second text of a text pair "
                        "(data.text_pair_column; default: none, single texts)")
    parser.add_argument("--max-length", type=int, help=f"tokens kept per text (data.max_length; default "
                        f"{DataConfig.max_length})")
    parser.add_argument("--preset", choices=["high", "balanced", "utility"],
                        help=f"privacy preset, filling only what you did not set: {preset_help()}")
    parser.add_argument("--epsilon", type=float, help="target ε (σ is calibrated to reach it exactly)")
    parser.add_argument("--delta", type=float, help="δ (default 1/(10·N)); δ ≥ 1/N is refused without --force")
    parser.add_argument("--non-private", action="store_true",
                        help="train the BiTFiT reference without clipping or noise (ε = ∞)")
    parser.add_argument("--force", action="store_true", help="accept δ ≥ 1/N (not recommended)")
    parser.add_argument("--add-biases", action="store_true",
                        help="DP-BiTFiT-Add: give bias-free linear layers zero-initialised biases")
    parser.add_argument("--epochs", type=float, help=f"passes over the training set (train.epochs; steps = "
                        "round(epochs / q); default "
                        f"{FALLBACKS['train']['epochs']:g})")
    parser.add_argument("--batch-size", type=int, help=f"expected logical batch per model (train.batch_size; q = batch/N; "
                        f"default {FALLBACKS['train']['batch_size']})")
    parser.add_argument("--max-examples", type=int, help="use a seeded random subset of the data")
    parser.add_argument("--seed", type=int, help=f"seed of the data subset, shadow membership and, with "
                        f"--seeded-noise, the noise (train.seed; default {TrainConfig.seed})")
    parser.add_argument("--device", help="auto (default), cpu or cuda")
    parser.add_argument("--seeded-noise", action="store_true",
                        help="draw noise and sampling from --seed, reproducibly: NOT a private release (tests, "
                        "benchmarks); recorded in the checkpoint and audit.json, and refused by `dpaudit gate`")
    parser.add_argument("--force-run-dir", action="store_true",
                        help="write into a non-empty --run-dir that dpaudit did not create (not recommended)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def overrides_from_args(args: argparse.Namespace) -> list[tuple[str, str, Any]]:
    out = [parse_override(s) for s in args.overrides]
    flag_map = {
        "data": ("data", "path"), "model": ("model", "path"), "preset": ("privacy", "preset"),
        "epsilon": ("privacy", "epsilon"), "delta": ("privacy", "delta"), "epochs": ("train", "epochs"),
        "batch_size": ("train", "batch_size"), "max_examples": ("data", "max_examples"),
        "seed": ("train", "seed"), "device": ("train", "device"), "text_column": ("data", "text_column"),
        "label_column": ("data", "label_column"), "text_pair_column": ("data", "text_pair_column"),
        "max_length": ("data", "max_length"), "completion_column": ("data", "completion_column"),
    }
    for attr, (section, key) in flag_map.items():
        value = getattr(args, attr, None)
        if value is not None:
            out.append((section, key, value))
    for attr, (section, key) in {"non_private": ("privacy", "non_private"), "force": ("privacy", "force"),
                                 "add_biases": ("model", "add_biases")}.items():
        if getattr(args, attr, False):
            out.append((section, key, True))
    if getattr(args, "task", None) is not None:
        out.append(("model", "task", args.task.replace("-", "_")))
    if getattr(args, "seeded_noise", False):
        out.append(("train", "noise", "seeded"))
    return out


def check_inputs(cfg, run_dir: str | Path, *, command: str, force_run_dir: bool) -> None:
    """Refuse bad inputs before torch is imported (seconds, not the import's 20–70 s): the data path (exists, a
    regular readable file or directory), the model directory (config.json, no custom code, positions) and the
    run directory's state (a file, a foreign folder, another command's run).

    Raises:
        DataError / ModelError / ConfigError: one line naming the problem and the fix.
    """
    from dpaudit.data import check_data_path
    from dpaudit.models import resolve_model_dir
    from dpaudit.rundir import RunDir

    check_data_path(cfg.data.path)
    resolve_model_dir(cfg.model.path, max_length=cfg.data.max_length)
    RunDir.check_claimable(run_dir, command=command, force=force_run_dir)
