"""``dpaudit train --task causal-lm``: one DP-BiTFiT(-Add) causal LM into a run directory.

The same run directory, split, accounting, checkpoint and public summary as a classifier run
(:mod:`dpaudit.training`); the model is a :class:`~trainers.causal_lm.BankedCausalLM` (no head) trained on
each example's mean next-token NLL, and ``metrics.json`` (private) reports the held-out mean NLL and
perplexity ``exp(mean NLL)`` before and after fine-tuning. Bias-free architectures (Llama, SmolLM2) are
trained with DP-BiTFiT-Add whatever ``model.add_biases`` says: they have no bias to train otherwise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dpaudit.config import Config
from dpaudit.rundir import RunDir


def lm_path(cfg: Config) -> str:
    """The causal LM of ``cfg``: ``model.path``, with the classifier default ``"embedded"`` read as ``"embedded-lm"``."""
    return "embedded-lm" if cfg.model.path in ("", "embedded") else cfg.model.path


def check_single_process() -> None:
    """Causal-LM runs are single-process for now (docs/causal-lm.md, "Limits"); refuse torchrun up front."""
    from dpaudit.distributed import current
    from dpaudit.errors import ConfigError

    if current().world_size > 1:
        raise ConfigError("model.task = 'causal_lm' runs in one process; run it without torchrun.")


def build_lm(cfg: Config, *, num_models: int, device, path: str | None = None):
    """``(BankedCausalLM, tokenizer, ModelInfo)`` for ``cfg`` (``path``: another backbone directory)."""
    from dpaudit.models import load_causal_lm
    from dpaudit.trainers.causal_lm import BankedCausalLM

    backbone, tokenizer, info = load_causal_lm(path or lm_path(cfg), max_length=cfg.data.max_length)
    has_bias = any(n.endswith(".bias") for n, _ in backbone.named_parameters())
    lm = BankedCausalLM.from_backbone(backbone.to(device), num_models=num_models,
                                      exclude_modules=[m for m in cfg.model.exclude_modules if m != "pooler"],
                                      add_missing_biases=cfg.model.add_biases or not has_bias)
    return lm, tokenizer, info


def encode_lm(ds, tokenizer, cfg: Config):
    from dpaudit.trainers.batching import EncodedTexts

    return EncodedTexts.from_lm_texts(ds.texts, tokenizer, max_length=cfg.data.max_length, completions=ds.pairs)


def heldout_nll(lm, encoded, examples, *, model: int = 0, batch_size: int = 32) -> float:
    """Mean over ``examples`` of each one's mean next-token NLL (nats) under bank row ``model``."""
    from dpaudit.trainers.lm_scores import mean_nll, token_stats

    return float(mean_nll(token_stats(lm, encoded, models=[model], examples=examples, batch_size=batch_size))[0].mean())


def train_lm_run(cfg: Config, run_dir: str | Path, *, progress: bool = True, force_run_dir: bool = False,
                 on_plan: Callable[..., None] | None = None, say: Callable[[str], None] | None = None):
    """Train (or resume) the causal LM of ``cfg`` into ``run_dir``; a :class:`~dpaudit.training.TrainRun`."""
    from dpaudit.lm_data import load_configured_lm_texts
    from dpaudit.models import resolve_model_dir
    from dpaudit.training import TrainRun, _shared_split, _write_summary, released_meta
    from dpaudit.distributed import current

    say = say or (lambda line: None)
    check_single_process()
    resolve_model_dir(lm_path(cfg), max_length=cfg.data.max_length)
    comm = current()
    run = RunDir.claim(run_dir, command="train", force=force_run_dir)
    started = time.perf_counter()
    ds = load_configured_lm_texts(cfg)
    from dpaudit.trainers.recipe import few_steps_warning, released_seed, resolve_device, resolve_privacy, train_bank

    device = resolve_device(cfg.train.device)
    lm, tokenizer, info = build_lm(cfg, num_models=1, device=device)
    train_ids, holdout, salt = _shared_split(comm, run, cfg, ds, info)
    settings, plan = resolve_privacy(cfg, [len(train_ids)])
    encoded = encode_lm(ds, tokenizer, cfg)
    if on_plan is not None:
        on_plan(info.name, lm.bank.num_trainable(), sum(p.numel() for p in lm.backbone.parameters()), ds.name,
                (len(train_ids), len(holdout)), settings, plan, seeded=cfg.train.noise == "seeded")
    warning = few_steps_warning(plan, settings)
    if warning:
        say(warning)
    batch = cfg.audit.score_batch_size
    before = heldout_nll(lm, encoded, holdout, batch_size=batch)
    membership = np.zeros((1, len(ds)), dtype=bool)
    membership[0, train_ids] = True
    outcome = train_bank(lm, encoded, ds.labels, membership, settings, plan, seeds=[released_seed(cfg, cfg.train.seed)],
                         run=run, meta={**released_meta(cfg, ds, info, salt, train_ids), "task": "causal_lm"},
                         progress=progress, comm=comm)
    after = heldout_nll(lm, encoded, holdout, batch_size=batch)
    epsilon = plan.epsilon(outcome.steps)
    metrics = _lm_metrics(before, after, plan=plan, settings=settings, outcome=outcome, info=info, ds=ds, cfg=cfg,
                          n_train=len(train_ids), n_heldout=len(holdout), started=started)
    metrics["epsilon"] = None if math.isinf(epsilon) else epsilon
    run.write_json("metrics.json", metrics)
    _write_summary(run, cfg, plan, outcome, info, n=len(ds), n_train=len(train_ids), epsilon=metrics["epsilon"])
    return TrainRun(run=run, outcome=outcome, plan=plan, settings=settings, metrics=metrics)


def _lm_metrics(before: float, after: float, *, plan, settings, outcome, info, ds, cfg, n_train: int,
                n_heldout: int, started: float) -> dict:
    from dpaudit.release import PRIVATE_LABEL

    return {
        "release": PRIVATE_LABEL, "task": "causal_lm",
        "privacy": {"neighbouring": cfg.privacy.neighbouring, "accountant": plan.accountant},
        "heldout_nll_before": before, "heldout_nll": after,
        "heldout_perplexity_before": math.exp(before), "heldout_perplexity": math.exp(after),
        "n_train": int(n_train), "n_heldout": int(n_heldout), "non_private": plan.non_private,
        "delta": plan.delta, "noise_multiplier": plan.noise_multiplier, "sample_rate": plan.sample_rate,
        "steps": outcome.steps, "planned_steps": outcome.planned_steps, "stopped_by_budget": outcome.stopped_by_budget,
        "accountant": plan.accountant, "clipping": settings.clipping.to_dict(), "clip_fraction": outcome.clip_fraction,
        "epsilon_history": outcome.epsilon_history, "wall_time_s": time.perf_counter() - started,
        "train_time_s": outcome.wall_time_s, "model": info.name, "backbone_sha256": info.sha256,
        "dataset": ds.name, "dataset_sha256": ds.sha256, "noise": None if plan.non_private else cfg.train.noise,
    }
