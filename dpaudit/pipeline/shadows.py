"""Stage 3: the reference (shadow) models, trained by a recipe chosen by name (``audit.shadow_recipe``).

A recipe is a callable ``(job: ShadowJob) -> np.ndarray`` of logits (K, N, C) float32: it trains one model
per row of ``job.membership`` (K, N) with ``job.settings`` / ``job.plan`` and scores every model on the whole
population. It may keep per-model resumable files in ``job.run`` and report facts (``n_trainable``, ``steps``,
``epsilon_history``) in ``job.facts``. Registered here: ``bitfit`` (the BiasBank: every model's biases and
head in one pass, DP or not) and ``full`` (every weight of the backbone plus a new head, one model after
another, non-private or DP with Opacus: :mod:`dpaudit.trainers.full`). For a target trained in this run, the
target is row 0 of the same job (``bitfit`` only: a released model needs secret randomness).

Where a shadow's hyper-parameters come from, first match wins: the target's checkpoint metadata (σ, q,
steps, C, optimizer, lr, δ) → the user's σ/q/steps claim (``target.claim_*``) → an (ε, δ) claim, which
calibrates σ to that ε over the configured q and steps → the config (``[privacy]``, ``[clipping]``,
``[optim]``, ``[train]``); a target trained elsewhere with no claim gets non-private shadows
(:func:`dpaudit.pipeline.claim.shadow_privacy`, :func:`dpaudit.pipeline.external.target_recipe`).

This module imports no torch at import time (the config validates ``audit.shadow_recipe`` against
:data:`SHADOW_RECIPES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dpaudit.errors import ConfigError
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


def full_recipe(settings: Any, plan: Any, max_length: int) -> Any:
    """The :class:`~dpaudit.trainers.full.FullRecipe` of resolved settings and plan (σ, q, steps after the
    budget guard, C, lr, optimizer, micro-batch, dropout).

    Raises:
        ConfigError: settings the full recipe does not implement (clipping other than one all-layer norm,
            a learning-rate schedule, weight decay, SGD momentum), which would make the shadows train
            otherwise than stated.
    """
    from dpaudit.trainers.full import FullRecipe

    c = settings.clipping
    unsupported = []
    if not plan.non_private and (c.mode != "all_layer" or c.style != "abadi"):
        unsupported.append(f"clipping {c.style}/{c.mode} (set clipping.mode = 'all_layer', style = 'abadi')")
    if settings.schedule != "constant":
        unsupported.append(f"optim.schedule = '{settings.schedule}' (set 'constant')")
    if settings.weight_decay:
        unsupported.append(f"optim.weight_decay = {settings.weight_decay} (set 0)")
    if settings.optimizer == "sgd" and settings.momentum:
        unsupported.append(f"optim.momentum = {settings.momentum} with sgd (set 0: plain SGD)")
    if unsupported:
        raise ConfigError(f"audit.shadow_recipe = 'full' trains with one all-layer clipping norm, a constant "
                          f"learning rate and no weight decay; not supported: {'; '.join(unsupported)}.")
    steps = plan.steps if plan.max_steps is None else min(plan.steps, plan.max_steps)
    return FullRecipe(non_private=plan.non_private, noise_multiplier=float(plan.noise_multiplier),
                      sample_rate=float(plan.sample_rate), steps=int(steps), max_grad_norm=float(c.max_grad_norm),
                      lr=float(settings.lr), optimizer=settings.optimizer, max_length=int(max_length),
                      micro_batch_size=int(settings.micro_batch_size), dropout=bool(settings.dropout))


ShadowRecipe = Callable[[ShadowJob], np.ndarray]
SHADOW_RECIPES: Registry[str, ShadowRecipe] = Registry("audit.shadow_recipe")


@SHADOW_RECIPES.register("bitfit")
def bitfit(job: ShadowJob) -> np.ndarray:
    """DP-BiTFiT (or non-private BiTFiT) BiasBank: all rows trained together; resumable (``models.safetensors``)."""
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.loop import bf16_autocast
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
    return predict_logits(clf, encoded, batch_size=cfg.audit.score_batch_size, progress=job.progress,
                          bf16=bf16_autocast(job.settings.autocast, job.device))  # scored as it trained


@SHADOW_RECIPES.register("full")
def full(job: ShadowJob) -> np.ndarray:
    """Full fine-tuning (:mod:`dpaudit.trainers.full`), one model at a time; resumable per model
    (``shadow-full-NNN.npy``): a kill loses at most the model in training."""
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.full import full_shadow_logits

    cfg, ds = job.cfg, job.dataset
    if any(seed is None for seed in job.seeds):
        raise ConfigError("audit.shadow_recipe = 'full' imitates a target trained elsewhere (--target); a target "
                          "trained here is a DP-BiTFiT model: use audit.shadow_recipe = 'bitfit'.")
    recipe = full_recipe(job.settings, job.plan, cfg.data.max_length)
    backbone, tokenizer, _ = load_backbone(job.model_path)
    encoded = EncodedTexts.from_dataset(ds, tokenizer, max_length=cfg.data.max_length)
    # every weight of the encoder plus the new head (hidden → C); a model-specific head may add a dense layer
    n_trainable = sum(p.numel() for p in backbone.parameters()) + (backbone.config.hidden_size + 1) * ds.num_classes
    del backbone
    logits = full_shadow_logits(job.model_path, encoded, ds.labels, job.membership, ds.num_classes, recipe,
                                seeds=[int(s) for s in job.seeds], run=job.run, device=job.device,
                                progress=job.progress, score_batch_size=cfg.audit.score_batch_size)
    history = {"steps": [], "epsilons": []} if recipe.non_private else {
        "steps": [recipe.steps], "epsilons": [job.plan.epsilon(recipe.steps)]}
    job.facts.update(n_trainable=int(n_trainable), steps=int(recipe.steps), epsilon_history=history)
    return logits
