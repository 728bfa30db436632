"""Stage 3: the reference (shadow) models, trained by a recipe chosen by name (``audit.shadow_recipe``).

A recipe is a callable ``(job: ShadowJob) -> np.ndarray`` of logits (K, N, C) float32: it trains one model
per row of ``job.membership`` (K, N) with ``job.settings`` / ``job.plan`` and scores every model on the whole
population. It may keep per-model resumable files in ``job.run`` and report facts (``n_trainable``, ``steps``,
``epsilon_history``) in ``job.facts``. Registered here: ``bitfit`` (the BiasBank: every model's biases and
head in one pass, DP or not). For a target trained in this run, the target is row 0 of the same job.

This module imports no torch at import time (the config validates ``audit.shadow_recipe`` against
:data:`SHADOW_RECIPES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dpaudit.registry import Registry

#: The shadow recipe of every dpaudit checkpoint (the recipe ``dpaudit train`` uses).
DPAUDIT_RECIPE = "bitfit"


@dataclass(frozen=True)
class ShadowJob:
    """Everything a shadow recipe needs.

    Attributes:
        cfg: the resolved :class:`~dpaudit.config.Config`.
        dataset: the population (``texts``, ``labels``, ``num_classes``, ``sha256``...).
        membership: bool (K, N): row k is model k's training set.
        settings: :class:`~dpaudit.trainers.loop.TrainSettings` (the target's where known).
        plan: :class:`~dpaudit.trainers.recipe.PrivacyPlan` (σ, q, steps, δ, accountant).
        seeds: one per row; ``None`` for secret randomness (a model that can be released).
        run: the :class:`~dpaudit.rundir.RunDir`, for per-model resumable files.
        device: the torch device.
        progress: show progress bars.
        model_path: the backbone (``model.path``; ``None`` = embedded).
        meta: checkpoint metadata the recipe records (backbone hash, labels, dataset hash...).
        facts: filled by the recipe: ``n_trainable``, ``steps``, ``epsilon_history``.
    """

    cfg: Any
    dataset: Any
    membership: np.ndarray
    settings: Any
    plan: Any
    seeds: list
    run: Any
    device: Any
    progress: bool
    model_path: str | None
    meta: dict
    facts: dict = field(default_factory=dict)


ShadowRecipe = Callable[[ShadowJob], np.ndarray]
SHADOW_RECIPES: Registry[str, ShadowRecipe] = Registry("audit.shadow_recipe")


@SHADOW_RECIPES.register("bitfit")
def bitfit(job: ShadowJob) -> np.ndarray:
    """DP-BiTFiT (or non-private BiTFiT) BiasBank: all rows trained together; resumable (``models.safetensors``)."""
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.predict import predict_logits
    from dpaudit.trainers.recipe import build_classifier, train_bank

    cfg, ds = job.cfg, job.dataset
    backbone, tokenizer, _ = load_backbone(job.model_path)
    encoded = EncodedTexts.from_dataset(ds, tokenizer, max_length=cfg.data.max_length)
    clf = build_classifier(backbone, cfg, num_models=len(job.membership), num_labels=ds.num_classes, device=job.device)
    outcome = train_bank(clf, encoded, ds.labels, job.membership, job.settings, job.plan, seeds=job.seeds,
                         run=job.run, meta=job.meta, progress=job.progress)
    job.facts.update(n_trainable=int(clf.bank.num_trainable()), steps=int(outcome.steps),
                     epsilon_history={k: list(v) for k, v in outcome.epsilon_history.items()})
    return predict_logits(clf, encoded, batch_size=cfg.audit.score_batch_size, progress=job.progress)
