"""Stage 1: the population (dataset + backbone) and the membership matrix ``membership.npy``.

Row 0 of the (M, N) matrix is the target: its own training set (a target trained elsewhere), or i.i.d.
Bernoulli(½) from the OS CSPRNG (a target trained here: secret, so it cannot be regenerated from the seed
in ``audit.json``) unless noise is seeded. Shadow rows come from ``make_membership`` seeded by
``train.seed + 1`` (shadows are never released).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from dpaudit._validation import check_mask
from dpaudit.attacks.membership import make_membership, population_fprs
from dpaudit.config import Config
from dpaudit.pipeline.stage import npy_bytes
from dpaudit.rundir import RunDir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Population:
    """What the audit reads before any model: the dataset, the backbone and its facts."""

    ds: Any
    backbone: Any
    tokenizer: Any
    info: Any
    n_total: int  # backbone parameters before the bank adds any bias
    fprs: tuple[float, ...]  # the FPRs TPR is reported at (audit.fprs, or those N resolves when unset)


def load_population(cfg: Config) -> Population:
    """Load the dataset and the backbone; check the population supports the configured FPRs (or choose the
    standard ones it supports when ``audit.fprs`` is unset, and say so)."""
    from dpaudit.data import class_summary, load_configured_dataset
    from dpaudit.models import load_backbone

    ds = load_configured_dataset(cfg)
    fprs, note = population_fprs(len(ds), cfg.audit.fprs)
    logger.info(class_summary(ds, cfg.data.label_column))
    if note:
        logger.info(note)
    backbone, tokenizer, info = load_backbone(cfg.model.path)
    return Population(ds, backbone, tokenizer, info, n_total=sum(p.numel() for p in backbone.parameters()),
                      fprs=fprs)


def _draw(cfg: Config, n: int, m_models: int, target_mask: np.ndarray | None) -> np.ndarray:
    from dpaudit.trainers.randomness import SecureRandom

    seed = cfg.train.seed
    membership = make_membership(n, m_models, seed=seed + 1)
    if target_mask is not None:
        membership[0] = target_mask
        share = float(target_mask.mean())
        if abs(share - 0.5) > 0.02:
            # Shadows must train on as many examples as the target did: include each example with the
            # target's share instead of in complementary halves.
            rng = np.random.default_rng(seed + 2)
            membership[1:] = rng.random((m_models - 1, n)) < share
    elif cfg.train.noise != "seeded":
        membership[0] = SecureRandom().bernoulli(n, 0.5, step=0)
    return membership


def membership_stage(run: RunDir, cfg: Config, n: int, m_models: int, target_mask: np.ndarray | None) -> np.ndarray:
    """The (M, N) membership matrix: reuse the committed one, or draw it and commit it (0600).

    Its inputs (population, target ids, seed, K) are bound to the run directory itself, so the committed
    file always belongs to this run.
    """
    path = run.verified("membership.npy")
    if path is not None:
        return check_mask(f"membership.npy in run directory '{run.path}'", np.load(path, allow_pickle=False),
                          (m_models, n), hint="use a new --run-dir for a different audit")
    membership = _draw(cfg, n, m_models, target_mask)
    run.write("membership.npy", npy_bytes(membership))
    return membership
