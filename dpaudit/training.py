"""The work of ``dpaudit train`` without its printing: one DP-BiTFiT model into a run directory.

:func:`train_run` is what the CLI (``dpaudit/cli/train.py``) and :func:`dpaudit.train` both call. It writes,
into the run directory, ``config.json``, ``split.json`` (private), ``models.safetensors`` and
``metrics.json`` (see the CLI's docstring), resumes an interrupted run with the same inputs, and under
torchrun trains data-parallel (rank 0 owns the directory).
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpaudit.config import Config
from dpaudit.rundir import RunDir


@dataclass(frozen=True)
class TrainRun:
    """What :func:`train_run` did (rank 0): the run directory, the loop's outcome, the privacy plan and
    settings, and ``metrics.json`` as written."""

    run: RunDir
    outcome: Any
    plan: Any
    settings: Any
    metrics: dict


def split_inputs(cfg: Config, ds, info) -> dict:
    """What a ``dpaudit train`` run directory is bound to (config, dataset, backbone)."""
    from dpaudit.rundir import config_inputs

    return {"config": config_inputs(cfg.to_dict()), "dataset_sha256": ds.sha256, "n_examples": len(ds),
            "model_sha256": info.sha256}


def _split(run: RunDir, cfg: Config, ds):
    """``(train ids, held-out ids, commitment key)``: the committed split of a resumed run, or a new one."""
    from dpaudit.trainers.recipe import train_holdout_split

    split_path = run.verified("split.json")
    if split_path is not None:  # a resume trains on exactly the examples of the first run
        split = json.loads(split_path.read_text(encoding="utf-8"))
        train_ids, holdout = np.asarray(split["train"], dtype=np.int64), np.asarray(split["holdout"], dtype=np.int64)
        return train_ids, holdout, split["salt"]
    train_ids, holdout = train_holdout_split(cfg, len(ds), name=ds.name)
    salt = secrets.token_hex(32)
    run.write_json("config.json", cfg.to_dict())
    run.write_json("split.json", {"train": train_ids.tolist(), "holdout": holdout.tolist(),
                                  "dataset_sha256": ds.sha256, "n_examples": len(ds), "salt": salt})
    return train_ids, holdout, salt


def _shared_split(comm, run, cfg: Config, ds, info):
    """:func:`_split` on rank 0, after every rank showed it holds the same inputs; the ids go to every rank
    (the commitment key stays on rank 0, which alone writes checkpoints)."""
    from dpaudit.rundir import inputs_digest

    inputs = split_inputs(cfg, ds, info)
    comm.agree(inputs_digest(inputs), what="inputs (config, dataset or model)")
    train_ids = holdout = salt = None
    if comm.is_main:
        run.bind(inputs)
        train_ids, holdout, salt = _split(run, cfg, ds)
    return comm.broadcast_array(train_ids), comm.broadcast_array(holdout), salt


def train_run(cfg: Config, run_dir: str | Path, *, progress: bool = True, force_run_dir: bool = False,
              on_plan: Callable[..., None] | None = None,
              say: Callable[[str], None] | None = None) -> TrainRun | None:
    """Train (or resume) the model of ``cfg`` into ``run_dir``; ``None`` on ranks other than 0.

    ``on_plan(model, n_trainable, n_total, data, (n_train, n_heldout), settings, plan, seeded=...)`` is
    called once the plan is known, before the first step (the CLI prints it); ``say(line)`` gets the classes
    found and the few-steps warning (the CLI prints them).
    """
    from dpaudit.data import class_summary, load_configured_dataset
    from dpaudit.distributed import current
    from dpaudit.models import load_backbone, resolve_model_dir

    say = say or (lambda line: None)
    resolve_model_dir(cfg.model.path, max_length=cfg.data.max_length)  # fails before the data and the accounting
    comm = current()
    run = RunDir.claim(run_dir, command="train", force=force_run_dir) if comm.is_main else None
    started = time.perf_counter()
    ds = load_configured_dataset(cfg)  # a data error is one line before torch is imported
    say(class_summary(ds, cfg.data.label_column))
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.recipe import (build_classifier, few_steps_warning, released_seed, resolve_device,
                                         resolve_privacy, train_bank)

    backbone, tokenizer, info = load_backbone(cfg.model.path)
    train_ids, holdout, salt = _shared_split(comm, run, cfg, ds, info)
    settings, plan = resolve_privacy(cfg, [len(train_ids)])
    device = resolve_device(cfg.train.device)
    clf = build_classifier(backbone, cfg, num_models=1, num_labels=ds.num_classes, device=device)
    encoded = EncodedTexts.from_dataset(ds, tokenizer, max_length=cfg.data.max_length)
    if on_plan is not None:
        on_plan(info.name, clf.bank.num_trainable(), sum(p.numel() for p in backbone.parameters()), ds.name,
                (len(train_ids), len(holdout)), settings, plan, seeded=cfg.train.noise == "seeded")
    warning = few_steps_warning(plan, settings)
    if warning:
        say(warning)
    membership = np.zeros((1, len(ds)), dtype=bool)
    membership[0, train_ids] = True
    outcome = train_bank(clf, encoded, ds.labels, membership, settings, plan,
                         seeds=[released_seed(cfg, cfg.train.seed)], run=run,
                         meta=released_meta(cfg, ds, info, salt if comm.is_main else None, train_ids),
                         progress=progress, comm=comm)
    if not comm.is_main:
        return None
    metrics = _evaluate(clf, encoded, ds, holdout, cfg=cfg, plan=plan, settings=settings, outcome=outcome,
                        info=info, started=started, world_size=comm.world_size, n_train=len(train_ids))
    run.write_json("metrics.json", metrics)
    _write_summary(run, cfg, plan, outcome, info, n=len(ds), n_train=len(train_ids), epsilon=metrics["epsilon"])
    return TrainRun(run=run, outcome=outcome, plan=plan, settings=settings, metrics=metrics)


def released_meta(cfg: Config, ds, info, salt: str | None, train_ids) -> dict:
    """The checkpoint metadata of a model ``dpaudit train`` releases (``salt``: None on ranks other than 0,
    which write nothing).

    Public once the model is released: the data are named by a keyed hash and a keyed commitment only, never
    by an unkeyed content hash (docs/design.md, "Release boundary"); the sizes are public under replace-one.
    """
    from dpaudit.rundir import keyed_dataset_hash, members_commitment
    from dpaudit.trainers.recipe import checkpoint_meta

    meta = {k: v for k, v in checkpoint_meta(cfg, ds, info).items() if k != "dataset_sha256"}
    return {**meta, "dataset_hmac_sha256": None if salt is None else keyed_dataset_hash(salt, ds.sha256),
            "members_commitment": None if salt is None else members_commitment(salt, train_ids),
            "n_train": int(len(train_ids)), "neighbouring": cfg.privacy.neighbouring}


def _write_summary(run, cfg, plan, outcome, info, *, n: int, n_train: int, epsilon: float | None) -> None:
    """``summary.json``, the run's one public file (dpaudit.release): the released model's hash and claim."""
    from dpaudit.release import SUMMARY, train_summary
    from dpaudit.trainers.checkpoint import MODELS_FILE

    run.write_json(SUMMARY, train_summary(cfg=cfg, plan=plan, outcome=outcome, info=info,
                                          models_sha256=run.entry(MODELS_FILE).get("sha256"), dataset_size=n,
                                          n_train=n_train, epsilon=epsilon))


def _evaluate(clf, encoded, ds, holdout, *, cfg: Config, plan, settings, outcome, info, started: float,
              world_size: int, n_train: int) -> dict:
    """``metrics.json`` (private, 0600): held-out accuracy beside the majority-class baseline, the accounting,
    provenance."""
    from dpaudit.protection import majority_baseline
    from dpaudit.release import PRIVATE_LABEL
    from dpaudit.trainers.predict import predict_logits

    logits = predict_logits(clf, encoded, examples=holdout, batch_size=cfg.audit.score_batch_size)[0]
    epsilon = plan.epsilon(outcome.steps)
    return {
        "release": PRIVATE_LABEL,
        "privacy": {"neighbouring": cfg.privacy.neighbouring, "accountant": plan.accountant},
        "heldout_accuracy": float((logits.argmax(1) == ds.labels[holdout]).mean()),
        "majority_baseline": majority_baseline(ds.labels[holdout]),
        "n_train": int(n_train), "n_heldout": int(len(holdout)),
        "epsilon": None if math.isinf(epsilon) else epsilon, "non_private": plan.non_private,
        "delta": plan.delta, "noise_multiplier": plan.noise_multiplier, "sample_rate": plan.sample_rate,
        "steps": outcome.steps, "planned_steps": outcome.planned_steps,
        "stopped_by_budget": outcome.stopped_by_budget, "accountant": plan.accountant,
        "clipping": settings.clipping.to_dict(), "clip_fraction": outcome.clip_fraction,
        "epsilon_history": outcome.epsilon_history, "wall_time_s": time.perf_counter() - started,
        "train_time_s": outcome.wall_time_s, "model": info.name, "backbone_sha256": info.sha256,
        "dataset": ds.name, "dataset_sha256": ds.sha256, "noise": None if plan.non_private else cfg.train.noise,
        **({"world_size": world_size} if world_size > 1 else {}),
    }
