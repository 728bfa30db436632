"""Privacy profile δ(ε) and the ROC ceiling it implies for any membership-inference attack.

Units: ε in nats, δ a probability, ``noise_multiplier`` σ = noise std / clipping norm, ``sample_rate`` the
Poisson inclusion probability per step, ``steps`` optimizer steps. Every δ(ε) reported is an *upper*
bound on the true profile, so every ROC ceiling drawn from it errs upward (it never cuts off an attack
that a correctly private model could allow).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from dpaudit._validation import check_int, check_real
from dpaudit.errors import ConfigError
from dpaudit.privacy._backends import check_history, check_relation, private_phases

__all__ = ["PrivacyProfile", "default_epsilon_grid", "privacy_profile", "roc_ceiling"]


@dataclasses.dataclass(frozen=True)
class PrivacyProfile:
    """δ(ε) on a grid of ε, for ``steps`` Poisson-subsampled Gaussian steps (add/remove neighbours).

    The curve together with the mechanism that produced it. ``audit.json`` stores the curve alone as
    ``dpaudit.report_schema.ProfileCurve`` (the mechanism is in the report's privacy section);
    ``reports.figures.ceiling_curve`` joins the two back into this class.

    Attributes:
        epsilons: ε grid in nats, strictly increasing, finite, ≥ 0.
        deltas: δ(ε) for each ε, an upper bound, non-increasing, in [0, 1].
        accountant: registry name of the accountant that produced the profile.
        noise_multiplier: σ.
        sample_rate: q.
        steps: optimizer steps.
        schema_version: bumped only when a field is added.
    """

    epsilons: tuple[float, ...]
    deltas: tuple[float, ...]
    accountant: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    schema_version: int = 1

    def __post_init__(self) -> None:
        eps = np.asarray(self.epsilons, dtype=np.float64)
        dlt = np.asarray(self.deltas, dtype=np.float64)
        if eps.ndim != 1 or eps.shape != dlt.shape or eps.size == 0:
            raise ConfigError(
                f"epsilons and deltas must be non-empty 1-D and of equal length, got "
                f"{eps.shape} and {dlt.shape}."
            )
        if not (np.all(np.isfinite(eps)) and np.all(eps >= 0) and np.all(np.diff(eps) > 0)):
            raise ConfigError("epsilons must be finite, >= 0 and strictly increasing.")
        if not np.all((dlt >= 0) & (dlt <= 1)):
            raise ConfigError("deltas must be in [0, 1].")

    def to_dict(self) -> dict[str, Any]:
        """A fresh JSON-ready dict (grids as lists)."""
        d = dataclasses.asdict(self)
        d["epsilons"] = list(self.epsilons)
        d["deltas"] = list(self.deltas)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyProfile:
        """Inverse of :meth:`to_dict`; keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["epsilons"] = tuple(float(e) for e in kwargs["epsilons"])
        kwargs["deltas"] = tuple(float(d) for d in kwargs["deltas"])
        return cls(**kwargs)


def default_epsilon_grid(epsilon: float, *, num: int = 60) -> np.ndarray:
    """ε grid for a profile: ``num − 1`` log-spaced points from 0.01 to max(4ε, 0.04), plus ε itself.

    Args:
        epsilon: the reported ε (nats), in (0, inf).
        num: number of log-spaced points plus one.

    Returns:
        ndarray of shape (num,) (or (num − 1,) if ε is already on the grid), strictly increasing.
    """
    e = check_real("epsilon", epsilon, 0.0, math.inf, closed="neither")
    n = check_int("num", num, 2)
    grid = np.logspace(-2.0, math.log10(max(4.0 * e, 0.04)), n - 1)
    return np.unique(np.append(grid, e))


def privacy_profile(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    epsilons: npt.ArrayLike,
    accountant: str = "prv",
    neighbouring: str = "add_remove",
) -> PrivacyProfile:
    """δ(ε) for each ε of ``epsilons`` after ``steps`` Poisson-subsampled Gaussian steps.

    PRV: read off the composed discrete privacy-loss distribution that opacus's ``PRVAccountant`` builds
    (arXiv 2106.02848, Section 5 error bound), so ``δ(ε) ≤ δ̃(ε − 0.01) + 1e-10``. RDP: the RDP→(ε, δ)
    conversion opacus uses (arXiv 1905.09982, Theorem 21) solved for δ,
    ``δ(ε) = min_α exp((α−1)(R(α) − ε + log(1 − 1/α)) − log α)``. Both err upward (pessimistic). The
    profile is then made non-increasing by a running minimum, which keeps it an upper bound because the
    true δ(ε) is non-increasing.

    Edge cases: no release (``steps == 0`` or ``sample_rate == 0``) gives δ = 0 everywhere; σ = 0 gives
    δ = 1 everywhere (pessimistic: the exact value is q for q < 1).

    Args:
        noise_multiplier: σ ≥ 0.
        sample_rate: q in [0, 1].
        steps: optimizer steps ≥ 0.
        epsilons: array-like of shape (n_eps,), finite ε ≥ 0 in nats; sorted and de-duplicated here.
        accountant: registry name.
        neighbouring: the relation δ(ε) is computed for. Default ``"add_remove"``: the profile bounds a
            membership test ("x trained or not", one record added or removed), which is what
            :func:`roc_ceiling` needs, whatever relation the ε claim is stated for.

    Returns:
        The :class:`PrivacyProfile`.
    """
    backend = check_relation(accountant, str(getattr(neighbouring, "value", neighbouring)))
    eps = np.unique(np.asarray(epsilons, dtype=np.float64).ravel())
    if eps.size == 0 or not np.all(np.isfinite(eps)) or eps[0] < 0:
        raise ConfigError(f"epsilons must be a non-empty array of finite values >= 0, got {epsilons!r}.")
    (sigma, q, n), = check_history([(noise_multiplier, sample_rate, steps)])
    phases = private_phases([(sigma, q, n)])
    if phases is None:
        deltas = np.ones_like(eps)
    elif not phases:
        deltas = np.zeros_like(eps)
    else:
        deltas = np.minimum.accumulate(backend.deltas(phases, eps, str(getattr(neighbouring, "value", neighbouring))))
    return PrivacyProfile(
        epsilons=tuple(eps.tolist()), deltas=tuple(np.clip(deltas, 0.0, 1.0).tolist()),
        accountant=accountant, noise_multiplier=sigma, sample_rate=q, steps=n,
    )


def roc_ceiling(fpr: npt.ArrayLike, profile: PrivacyProfile) -> np.ndarray:
    """Highest TPR any membership-inference attack can reach at each FPR against this mechanism.

    A mechanism that is (ε, δ)-DP for add/remove neighbours bounds every test between "member" and
    "non-member" (Kairouz et al. 2015, arXiv 1311.0776, Theorem 2.1; Dong et al., arXiv 1905.02383,
    Proposition 2.5 — the trade-off function ``f_{ε,δ}(α) = max{0, 1 − δ − e^ε α, e^{−ε}(1 − δ − α)}``):
    with α = FPR and β = FNR = 1 − TPR,

        β ≥ 1 − δ − e^ε α           ⇒  TPR ≤ e^ε·FPR + δ
        β ≥ e^{−ε}(1 − δ − α)       ⇒  TPR ≤ 1 − e^{−ε}(1 − δ − FPR)

    The guarantee holds for every (ε, δ(ε)) of the profile at once, so

        TPR ≤ min_ε min{1, e^ε·FPR + δ(ε), 1 − e^{−ε}(1 − δ(ε) − FPR)}.

    The ceiling is ≥ FPR (the diagonal) and ≤ 1. Since each δ(ε) is an upper bound and the minimum runs
    over a finite grid, the ceiling errs upward (never below the true one).

    Args:
        fpr: array-like of FPRs in [0, 1], any shape.
        profile: the mechanism's :class:`PrivacyProfile`.

    Returns:
        ndarray of the same shape as ``fpr``: the TPR ceiling.
    """
    f = np.asarray(fpr, dtype=np.float64)
    if not np.all((f >= 0) & (f <= 1)):
        raise ConfigError(f"fpr must be in [0, 1], got values outside it (min={np.nanmin(f)!r}).")
    eps = np.asarray(profile.epsilons, dtype=np.float64)
    dlt = np.asarray(profile.deltas, dtype=np.float64)
    x = f[..., None]
    upper = np.exp(eps) * x + dlt
    symmetric = 1.0 - np.exp(-eps) * (1.0 - dlt - x)
    ceiling = np.min(np.minimum(upper, symmetric), axis=-1)
    return np.clip(ceiling, f, 1.0)
