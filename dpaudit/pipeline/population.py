"""Stage 1: the population (dataset + backbone) and the membership matrix ``membership.npy``.

Row 0 of the (M, N) matrix is the target: its own training set (a target trained elsewhere), or i.i.d.
Bernoulli(½) from the OS CSPRNG (a target trained here: secret, so it cannot be regenerated from the seed
in ``audit.json``) unless noise is seeded. Shadow rows come from ``make_membership`` seeded by
``train.seed + 1`` (shadows are never released).

Canaries (``audit.canaries = m > 0``, :mod:`dpaudit.canaries`): made right after the data are loaded, from
``train.seed`` (which examples become canaries is not secret), and appended as the population's last m rows,
so that every column of the membership matrix — a fair coin per canary for the target, from the CSPRNG like
every other example of row 0 — decides whether a model trains on them. The natural examples are the first
``n_natural`` columns: the attacks and held-out accuracy read only those; the canary bound reads the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from dpaudit._validation import check_mask
from dpaudit.attacks.membership import make_membership, population_fprs
from dpaudit.canaries import CanarySet
from dpaudit.config import Config
from dpaudit.errors import DataError
from dpaudit.pipeline.stage import npy_bytes
from dpaudit.rundir import RunDir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Population:
    """What the audit reads before any model: the dataset, the backbone and its facts.

    ``ds`` is the whole population the models train and are scored on: ``n_natural`` natural examples, then
    the ``len(canaries)`` canaries (``canaries`` is ``None`` when there are none; ``n_natural = len(ds)``).
    """

    ds: Any
    backbone: Any
    tokenizer: Any
    info: Any
    n_total: int  # backbone parameters before the bank adds any bias
    fprs: tuple[float, ...]  # the FPRs TPR is reported at (audit.fprs, or those N resolves when unset)
    n_natural: int = -1  # -1: every example is natural (set in __post_init__)
    canaries: CanarySet | None = None

    def __post_init__(self) -> None:
        m = 0 if self.canaries is None else len(self.canaries)
        if self.n_natural < 0:
            object.__setattr__(self, "n_natural", len(self.ds) - m)
        if self.n_natural + m != len(self.ds):
            raise DataError(f"population of {len(self.ds)} rows is not {self.n_natural} natural + {m} canaries.")

    @property
    def canary_index(self) -> np.ndarray:
        """Columns of the canaries in the population, int64 of shape (m,): the last m."""
        return np.arange(self.n_natural, len(self.ds), dtype=np.int64)


def load_population(cfg: Config) -> Population:
    """Load the dataset and the backbone; check the population supports the configured FPRs (or choose the
    standard ones it supports when ``audit.fprs`` is unset, and say so)."""
    from dpaudit.data import class_summary, load_configured_dataset
    from dpaudit.models import load_backbone

    ds = load_configured_dataset(cfg)
    canaries = None
    if cfg.audit.canaries > 0:
        from dpaudit.canaries import make_canaries, with_canaries

        natural, canaries = make_canaries(ds, cfg.audit.canaries, cfg.audit.canary_kind, seed=cfg.train.seed)
        ds = with_canaries(natural, canaries)
    n_natural = len(ds) - (0 if canaries is None else len(canaries))
    fprs, note = population_fprs(n_natural, cfg.audit.fprs)  # the attacks read the natural examples only
    logger.info(class_summary(ds, cfg.data.label_column))
    if note:
        logger.info(note)
    backbone, tokenizer, info = load_backbone(cfg.model.path)
    return Population(ds, backbone, tokenizer, info, n_total=sum(p.numel() for p in backbone.parameters()),
                      fprs=fprs, n_natural=n_natural, canaries=canaries)


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
