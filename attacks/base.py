"""The one interface every membership-inference attack implements.

``Attack.score(signals, membership, *, target, reference) -> (N,)`` returns one score per population
example for the target model; **higher score = member**. Only the rows of ``membership`` listed in
``reference`` may be used, never the target's row: :meth:`Attack.score` validates its arguments once
and hands the attack only ``membership[reference]``, so no attack can read the answer it is graded on.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from dpaudit._validation import check_int
from dpaudit.errors import ConfigError

from dpaudit.attacks.signals import Signals

__all__ = ["Attack"]


class Attack(abc.ABC):
    """Base class: validate once, then delegate to :meth:`_score`.

    Class attributes:
        name: registry name, set by :func:`attacks.registry.register_attack`.
        paper: citation shown in reports, e.g. ``"Carlini et al. 2022, arXiv 2112.03570"``.
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    #: Whether the attack learns from reference models; one that does not (LOSS) accepts an empty ``reference``.
    needs_reference: ClassVar[bool] = True

    def score(self, signals: Signals, membership: npt.ArrayLike, *, target: int,
              reference: npt.ArrayLike) -> np.ndarray:
        """Score every population example for membership in the target model's training set.

        Args:
            signals: logits of all M models on the N population examples.
            membership: bool array of shape (M, N); ``membership[m, n]`` is True when model m
                trained on example n. Only rows in ``reference`` are read.
            target: index of the attacked model, in [0, M).
            reference: 1-D int array of distinct model indices the attack may learn from; must not
                contain ``target``.

        Returns:
            float64 array of shape (N,): higher score = member.

        Raises:
            TypeError: ``signals`` is not :class:`Signals`, or a non-integer index.
            DataError: ``membership`` has the wrong shape or dtype.
            ConfigError: ``target``/``reference`` out of range, duplicated, empty, or overlapping.
        """
        if not isinstance(signals, Signals):
            raise TypeError(f"signals must be attacks.signals.Signals, got {type(signals).__name__}.")
        m, n = signals.n_models, signals.n_examples
        membership = signals.check_membership(membership)
        target = check_int("target", target, 0, m - 1)
        reference = np.asarray(reference)
        if reference.size == 0 and not self.needs_reference:
            reference = np.zeros(0, dtype=np.int64)
        elif reference.ndim != 1 or reference.size == 0 or not np.issubdtype(reference.dtype, np.integer):
            raise ConfigError(f"reference must be a non-empty 1-D array of model indices, got "
                              f"{reference!r}.")
        if reference.size and (reference.min() < 0 or reference.max() >= m):
            raise ConfigError(f"reference must hold model indices in [0, {m - 1}], got {reference.tolist()}.")
        if np.unique(reference).size != reference.size:
            raise ConfigError(f"reference must not repeat a model, got {reference.tolist()}.")
        if target in reference:
            raise ConfigError(f"reference must not contain the target model {target}: the attack "
                              "would read the membership it is graded on.")
        ref_membership = membership[reference]
        ref_membership.setflags(write=False)
        scores = np.asarray(self._score(signals, ref_membership, target=target, reference=reference),
                            dtype=np.float64)
        if scores.shape != (n,):
            raise ValueError(f"attack {self.name or type(self).__name__!r} returned shape {scores.shape}, "
                             f"expected ({n},).")
        return scores

    @abc.abstractmethod
    def _score(self, signals: Signals, ref_membership: np.ndarray, *, target: int,
               reference: np.ndarray) -> np.ndarray:
        """Compute the scores from validated inputs.

        Args:
            signals: as in :meth:`score`.
            ref_membership: bool (R, N), ``membership[reference]`` (read-only).
            target: the attacked model.
            reference: int (R,), the reference models, aligned with ``ref_membership``.
        """
