"""Causal-LM attack inputs and the LM attack interface: per-token log-probabilities of M models on N texts.

:class:`LMSignals` holds, for model m, text i and target position t (token t predicted from the tokens
before it; :mod:`trainers.lm_scores` computes them): ``logprob[m, i, t] = log p_m(x_t | x_<t)``, the mean
``mu`` and standard deviation ``sigma`` of ``log p_m(v | x_<t)`` under ``v ~ p_m`` (Min-K%++), the target
weights ``weight[i, t]`` ∈ {0, 1}, each text's zlib length in bits, and optionally the base (pre-fine-tuning)
model's mean NLL per text. :class:`LMAttack` subclasses score every text for the target model (**higher =
member**) from these arrays only, and see the membership of the reference models alone, never the target's.
Registered in :data:`LM_ATTACKS` by :func:`register_lm_attack`, as the classifier attacks are in ``ATTACKS``.
"""

from __future__ import annotations

import abc
import dataclasses
import zlib
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

import numpy as np

from dpaudit.errors import ConfigError, DataError
from dpaudit.registry import Registry

__all__ = ["LMSignals", "LMAttack", "LM_ATTACKS", "register_lm_attack", "zlib_bits"]


def zlib_bits(texts: Sequence[str]) -> np.ndarray:
    """(N,) float64: ``8 · len(zlib.compress(text.encode("utf-8")))``, the zlib entropy of each text in bits."""
    return np.asarray([8.0 * len(zlib.compress(t.encode("utf-8"))) for t in texts], dtype=np.float64)


@dataclasses.dataclass(frozen=True, eq=False)
class LMSignals:
    """See the module docstring. Shapes: logprob/mu/sigma (M, N, T), weight (N, T), zlib (N,), base_nll (N,)."""

    logprob: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    weight: np.ndarray
    zlib: np.ndarray
    base_nll: np.ndarray | None = None

    def __post_init__(self) -> None:
        lp = np.asarray(self.logprob, dtype=np.float64)
        if lp.ndim != 3 or lp.shape[0] < 1 or lp.shape[1] < 1:
            raise DataError(f"logprob must have shape (models, texts, tokens), got {lp.shape}.")
        for name in ("mu", "sigma"):
            if np.shape(getattr(self, name)) != lp.shape:
                raise DataError(f"{name} must have the shape of logprob {lp.shape}, got {np.shape(getattr(self, name))}.")
        if np.shape(self.weight) != lp.shape[1:]:
            raise DataError(f"weight must have shape {lp.shape[1:]}, got {np.shape(self.weight)}.")
        if np.shape(self.zlib) != lp.shape[1:2]:
            raise DataError(f"zlib must have shape ({lp.shape[1]},), got {np.shape(self.zlib)}.")
        if not np.isfinite(lp).all():
            raise DataError("logprob must be finite.")
        object.__setattr__(self, "logprob", lp)
        object.__setattr__(self, "weight", np.asarray(self.weight, dtype=bool))

    @property
    def n_models(self) -> int:
        return int(self.logprob.shape[0])

    @property
    def n_texts(self) -> int:
        return int(self.logprob.shape[1])

    @property
    def counts(self) -> np.ndarray:
        """(N,) number of target tokens per text."""
        return self.weight.sum(1)

    def mean_nll(self) -> np.ndarray:
        """(M, N): each text's mean NLL over its targets, per model (0 for a text with none)."""
        return -np.where(self.weight, self.logprob, 0.0).sum(-1) / np.maximum(self.counts, 1)


class LMAttack(abc.ABC):
    """Base class: validate target and reference once, then :meth:`_score` (higher = member)."""

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    needs_reference: ClassVar[bool] = False
    #: Fewest reference models the attack can fit (LiRA's OUT variance needs two OUT shadows of some text).
    min_references: ClassVar[int] = 0

    def score(self, signals: LMSignals, membership: np.ndarray, *, target: int,
              reference: Sequence[int] = ()) -> np.ndarray:
        """Scores (N,) float64 of every text for model ``target``; only ``membership[reference]`` is read."""
        membership = np.asarray(membership, dtype=bool)
        if membership.shape != (signals.n_models, signals.n_texts):
            raise DataError(f"membership must have shape {(signals.n_models, signals.n_texts)}, got {membership.shape}.")
        reference = np.asarray(list(reference), dtype=np.int64)
        if not 0 <= target < signals.n_models or target in reference:
            raise ConfigError(f"target must be a model index in [0, {signals.n_models}) outside the reference models.")
        if self.needs_reference and reference.size == 0:
            raise ConfigError(f"attack {self.name!r} needs reference (shadow) models; train shadows (audit.num_shadows ≥ 2).")
        if reference.size and (reference.min() < 0 or reference.max() >= signals.n_models):
            raise ConfigError(f"reference must hold model indices in [0, {signals.n_models}).")
        ref = membership[reference]
        ref.setflags(write=False)
        return np.asarray(self._score(signals, ref, target=target, reference=reference), dtype=np.float64)

    @abc.abstractmethod
    def _score(self, signals: LMSignals, ref_membership: np.ndarray, *, target: int,
               reference: np.ndarray) -> np.ndarray: ...


LM_ATTACKS: Registry[str, type[LMAttack]] = Registry("LM attack")
_A = TypeVar("_A", bound=type[LMAttack])


def register_lm_attack(name: str) -> Callable[[_A], _A]:
    """Class decorator: register an :class:`LMAttack` subclass under ``name`` and set ``cls.name``."""

    def decorator(cls: _A) -> _A:
        LM_ATTACKS.register(name, cls)
        cls.name = name
        return cls

    return decorator
