"""Per-model, per-example signals that every attack reads: logits, loss and LiRA's scaled confidence.

``Signals`` holds the raw logits of every model (target and shadows) on every population example and
the labels; the derived quantities are computed once, in float64, in log space:

* ``log_prob_true[m, n] = z_y − logsumexp_c z_c`` (log-softmax of the true class),
* ``loss[m, n] = −log_prob_true[m, n]`` (cross-entropy, nats),
* ``phi[m, n] = log p_y − log(1 − p_y) = z_y − logsumexp_{c≠y} z_c`` (LiRA's scaled confidence,
  Carlini et al. 2022, arXiv 2112.03570 v2, the "logit scaling" step feeding Algorithm 1), which stays finite even when
  ``p_y`` rounds to 1 in float64.

Scores built from these signals follow the project convention: higher score = member.
"""

from __future__ import annotations

import io

import dataclasses
import functools
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from dpaudit._validation import check_mask
from dpaudit.errors import DataError

__all__ = ["Signals"]

_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True, eq=False)
class Signals:
    """Logits of M models on N population examples with C classes, plus the labels.

    Attributes:
        logits: float array of shape (M, N, C); ``logits[m, n]`` are model m's logits on example n.
        labels: int array of shape (N,), values in ``[0, C)``.

    Derived arrays (float64, shape (M, N), computed lazily once and cached): :attr:`log_prob_true`,
    :attr:`loss`, :attr:`phi`. Arrays are stored as given (no copy); do not mutate them.

    Raises:
        TypeError: ``logits`` is not a float array or ``labels`` not an integer array.
        DataError: wrong shapes, fewer than 2 classes, non-finite logits, labels out of range.

    Examples:
        >>> s = Signals(np.zeros((1, 2, 3)), np.array([0, 2]))
        >>> s.phi.round(4).tolist()
        [[-0.6931, -0.6931]]
    """

    logits: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        logits = np.asarray(self.logits)
        labels = np.asarray(self.labels)
        if not np.issubdtype(logits.dtype, np.floating):
            raise TypeError(f"logits must be a float array, got dtype={logits.dtype}.")
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"labels must be an integer array, got dtype={labels.dtype}.")
        if logits.ndim != 3:
            raise DataError(f"logits must have shape (models, examples, classes), got shape={logits.shape}.")
        m, n, c = logits.shape
        if m < 1 or n < 1 or c < 2:
            raise DataError(f"logits need ≥1 model, ≥1 example and ≥2 classes, got shape={logits.shape}.")
        if labels.shape != (n,):
            raise DataError(f"labels must have shape ({n},) to match logits, got shape={labels.shape}.")
        if labels.min() < 0 or labels.max() >= c:
            raise DataError(f"labels must be in [0, {c - 1}], got values in [{labels.min()}, {labels.max()}].")
        if not np.isfinite(logits).all():
            bad = np.argwhere(~np.isfinite(logits))[0]
            raise DataError(f"logits must be finite; first bad entry at (model, example, class)={tuple(bad)}.")
        object.__setattr__(self, "logits", logits)
        object.__setattr__(self, "labels", labels)

    def check_membership(self, membership: np.ndarray) -> np.ndarray:
        """``membership`` as a bool array of shape (M, N) matching these signals.

        Raises:
            DataError: wrong dtype or shape.
        """
        return check_mask("membership", membership, (self.n_models, self.n_examples),
                          hint="membership must have shape (models, examples) to match the signals")

    @property
    def n_models(self) -> int:
        """M, the number of models."""
        return int(self.logits.shape[0])

    @property
    def n_examples(self) -> int:
        """N, the population size."""
        return int(self.logits.shape[1])

    @property
    def n_classes(self) -> int:
        """C, the number of classes."""
        return int(self.logits.shape[2])

    @functools.cached_property
    def _derived(self) -> tuple[np.ndarray, np.ndarray]:
        """(log_prob_true, phi), both float64 of shape (M, N); one pass, one model at a time."""
        m, n, _ = self.logits.shape
        rows = np.arange(n)
        log_p = np.empty((m, n))
        phi = np.empty((m, n))
        for i in range(m):
            z = self.logits[i].astype(np.float64)  # copy: we overwrite the true class below
            z_y = z[rows, self.labels].copy()
            z[rows, self.labels] = -np.inf
            lse_other = logsumexp(z, axis=1)  # logsumexp over c ≠ y
            phi[i] = z_y - lse_other
            log_p[i] = z_y - np.logaddexp(z_y, lse_other)
        log_p.setflags(write=False)
        phi.setflags(write=False)
        return log_p, phi

    @property
    def log_prob_true(self) -> np.ndarray:
        """log p_y: log-softmax of the true class, float64 of shape (M, N); ≤ 0."""
        return self._derived[0]

    @functools.cached_property
    def loss(self) -> np.ndarray:
        """Cross-entropy loss −log p_y in nats, float64 of shape (M, N); ≥ 0."""
        out = -self.log_prob_true
        out.setflags(write=False)
        return out

    @property
    def phi(self) -> np.ndarray:
        """LiRA's scaled confidence φ = log p_y − log(1 − p_y) = z_y − logsumexp_{c≠y} z_c, (M, N)."""
        return self._derived[1]

    def softmax_row(self, model: int) -> np.ndarray:
        """Softmax probabilities of one model, float64 of shape (N, C)."""
        z = self.logits[model].astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def to_bytes(self) -> bytes:
        """Logits and labels as a compressed ``.npz`` (no pickle)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, logits=self.logits, labels=self.labels, format_version=np.array(_FORMAT_VERSION))
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_bytes` atomically, mode 0600, never through a link. Returns the path written."""
        from dpaudit.fileio import write_bytes_atomic

        return write_bytes_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> Signals:
        """Read a file written by :meth:`save` (``allow_pickle=False``).

        Raises:
            DataError: the file is missing, unreadable, or lacks ``logits``/``labels``.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = {"logits", "labels"} - set(data.files)
                if missing:
                    raise DataError(f"signals file {path} lacks {sorted(missing)}; rerun `dpaudit attack` "
                                    "to rescore the models.")
                return cls(logits=data["logits"], labels=data["labels"])
        except FileNotFoundError:
            raise DataError(f"signals file not found: {path}; score the models first.") from None
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read signals file {path}: {err}") from None
