"""Stages 3–4: train and score the reference models (``model_logits.npy``), then stack the target's logits
as row 0 with theirs into ``signals.npz`` — the same :class:`~dpaudit.attacks.signals.Signals` for every
kind of target.
"""

from __future__ import annotations

import logging

import numpy as np

from dpaudit.attacks.signals import Signals
from dpaudit.distributed import SINGLE, Collective
from dpaudit.errors import DataError
from dpaudit.pipeline.shadows import SHADOW_RECIPES, ShadowJob
from dpaudit.pipeline.stage import commit, file_sha, npy_bytes, reusable
from dpaudit.rundir import RunDir

logger = logging.getLogger(__name__)


def shadows_stage(run: RunDir | None, job: ShadowJob, inputs: dict | None,
                  comm: Collective = SINGLE) -> tuple[np.ndarray | None, dict]:
    """Logits (K, N, C) of the models of ``job`` and the recipe's facts; reused if made from ``inputs``.

    Several ranks: the rows are sharded over them (:func:`dpaudit.pipeline.fleet.fleet_stage`); rank 0 gets
    the logits, the others ``(None, {})``.
    """
    if comm.world_size > 1:
        from dpaudit.pipeline.fleet import fleet_stage

        return fleet_stage(run, job, inputs, comm)
    path = reusable(run, "model_logits.npy", inputs)
    if path is not None:
        return np.load(path, allow_pickle=False), dict((run.entry("model_logits.npy") or {}).get("facts") or {})
    old = run.entry("model_logits.npy")
    if old is not None and old.get("inputs_sha256") is not None:  # other settings: the bank is trained anew
        run.forget("models.safetensors")
    recipe = SHADOW_RECIPES.get(job.cfg.audit.shadow_recipe)
    logits = np.asarray(recipe(job), dtype=np.float32)
    k, n, c = len(job.membership), len(job.dataset), job.dataset.num_classes
    if logits.shape != (k, n, c):
        raise DataError(f"shadow recipe '{job.cfg.audit.shadow_recipe}' returned logits of shape {logits.shape}, "
                        f"expected {(k, n, c)}.")
    commit(run, "model_logits.npy", npy_bytes(logits), inputs, facts=job.facts)
    return logits, dict(job.facts)


def signals_stage(run: RunDir, target_logits: np.ndarray | None, model_logits: np.ndarray,
                  labels: np.ndarray) -> Signals:
    """Every model's logits on the population (row 0 = target): reuse ``signals.npz`` if made from the same
    committed target and model logits."""
    inputs = {"target_logits_sha256": file_sha(run, "target_logits.npy") if target_logits is not None else None,
              "model_logits_sha256": file_sha(run, "model_logits.npy")}
    path = reusable(run, "signals.npz", inputs)
    if path is not None:
        return Signals.load(path)
    logits = model_logits if target_logits is None else np.concatenate([target_logits[None], model_logits])
    signals = Signals(np.ascontiguousarray(logits, dtype=np.float32), labels)
    commit(run, "signals.npz", signals.to_bytes(), inputs)
    return signals
