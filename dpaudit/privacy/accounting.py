"""Theoretical privacy accounting for DP-SGD with Poisson sampling (DP-BiTFiT trains with it).

Units everywhere: ε in nats; δ a probability; ``noise_multiplier`` σ = (noise std)/(clipping norm C);
``sample_rate`` q the Poisson inclusion probability per step; ``steps`` optimizer steps (not epochs).
``neighbouring`` names the relation the (ε, δ) holds for: ``"replace_one"`` (default; one record replaced by
another, so the dataset size N and q = batch/N may be public — what ``dpaudit train`` claims) or
``"add_remove"`` (one record added or removed; N is then secret). Only the ``"pld"`` accountant analyses
replace-one; ``"prv"`` and ``"rdp"`` (opacus) analyse add/remove only.

An accountant's state is opacus's plain ``history`` list ``[(noise_multiplier, sample_rate, steps), ...]``
so the trainer can store it as JSON in a checkpoint and re-derive ε with :func:`epsilon_from_history`.
Every reported ε is an upper bound and every search rounds pessimistically (it says which way below).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import warnings
from collections.abc import Mapping
from typing import Any

from dpaudit._validation import check_int, check_real
from dpaudit.errors import PrivacyError
from dpaudit.privacy._backends import (
    ACCOUNTANTS,
    History,
    check_history,
    check_relation,
    create_accountant,
    private_phases,
    register_accountant,
)
from dpaudit.privacy._search import bisect
from dpaudit.privacy.profile import (
    PrivacyProfile,
    default_epsilon_grid,
    privacy_profile,
    roc_ceiling,
)

__all__ = [
    "ACCOUNTANTS",
    "AccountingResult",
    "DEFAULT_ACCOUNTANT",
    "DEFAULT_NEIGHBOURING",
    "NeighbouringRelation",
    "PrivacyProfile",
    "account",
    "calibrate_noise",
    "check_delta",
    "compute_epsilon",
    "create_accountant",
    "default_delta",
    "default_epsilon_grid",
    "epsilon_from_history",
    "max_steps",
    "privacy_profile",
    "register_accountant",
    "roc_ceiling",
]

#: Largest σ :func:`calibrate_noise` will search; a target needing more noise is reported unreachable.
MAX_NOISE_MULTIPLIER = 1e3
#: Smallest σ :func:`calibrate_noise` will search (tiny σ makes the PRV domain huge). If even this σ
#: meets the target it is returned — still a valid (ε ≤ target) answer, just not the smallest σ.
MIN_NOISE_MULTIPLIER = 1.0 / 64
#: Largest step count :func:`max_steps` will search.
MAX_STEPS_LIMIT = 10**7

_UNREACHABLE_FIX = "increase epsilon, lower the sampling rate or train fewer steps"


class NeighbouringRelation(str, enum.Enum):
    """Which datasets count as neighbours: one record added or removed, or one record replaced."""

    ADD_REMOVE = "add_remove"
    REPLACE_ONE = "replace_one"


#: The relation dpaudit states for the models it trains (the size N is public, docs/design.md "Release boundary").
DEFAULT_NEIGHBOURING = NeighbouringRelation.REPLACE_ONE.value
#: The accountant dpaudit uses by default: the only registered one that analyses replace-one.
DEFAULT_ACCOUNTANT = "pld"


@dataclasses.dataclass(frozen=True)
class AccountingResult:
    """ε spent by ``steps`` Poisson-subsampled Gaussian steps, at δ.

    Stage 3 of 4 (see ``dpaudit.config.PrivacyConfig``): what the accountant computed.

    Attributes:
        epsilon: ε in nats, an upper bound (``math.inf`` when σ = 0).
        delta: δ, a probability.
        noise_multiplier: σ = noise std / clipping norm.
        sample_rate: Poisson inclusion probability q per step.
        steps: optimizer steps.
        accountant: registry name of the accountant (``"prv"``, ``"rdp"``).
        neighbouring: the neighbouring relation the guarantee is stated for (absent in a dict: add/remove,
            the only relation dpaudit stated before replace-one was added).
        schema_version: bumped only when a field is added (fields never change meaning).
    """

    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    accountant: str
    neighbouring: NeighbouringRelation = NeighbouringRelation.ADD_REMOVE
    schema_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A fresh JSON-ready dict (the enum becomes its string value)."""
        d = dataclasses.asdict(self)
        d["neighbouring"] = self.neighbouring.value
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccountingResult:
        """Inverse of :meth:`to_dict`; keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "neighbouring" in kwargs:
            kwargs["neighbouring"] = NeighbouringRelation(kwargs["neighbouring"])
        return cls(**kwargs)


def epsilon_from_history(history: History, *, delta: float, accountant: str = DEFAULT_ACCOUNTANT,
                         neighbouring: str = DEFAULT_NEIGHBOURING) -> float:
    """ε (nats) of an accountant history at ``delta``, for the ``neighbouring`` relation.

    Args:
        history: ``[(noise_multiplier, sample_rate, steps), ...]``, one entry per phase of constant σ, q.
        delta: δ in (0, 1).
        accountant: registry name (see :data:`ACCOUNTANTS`).
        neighbouring: ``"replace_one"`` or ``"add_remove"``; the accountant must analyse it.

    Returns:
        ε, an upper bound: ``0.0`` if no phase releases anything (all steps or q are 0), ``math.inf`` if a
        releasing phase has σ = 0.

    Raises:
        ConfigError: an argument is out of range, ``accountant`` is unknown or does not analyse
            ``neighbouring``.
    """
    backend = check_relation(accountant, str(getattr(neighbouring, "value", neighbouring)))
    delta = check_real("delta", delta, 0.0, 1.0, closed="neither")
    phases = private_phases(check_history(history))
    if phases is None:
        return math.inf
    if not phases:
        return 0.0
    return backend.epsilon(phases, delta, str(getattr(neighbouring, "value", neighbouring)))


def compute_epsilon(
    *, noise_multiplier: float, sample_rate: float, steps: int, delta: float,
    accountant: str = DEFAULT_ACCOUNTANT, neighbouring: str = DEFAULT_NEIGHBOURING,
) -> float:
    """ε (nats) after ``steps`` Poisson-subsampled Gaussian steps, at ``delta``, for ``neighbouring``.

    For ``"prv"``/``"rdp"`` (add/remove) equal to ``opacus.accountants.<accountant>.get_epsilon(delta)``
    after the same steps. Edge cases are exact: ``steps == 0`` → 0.0, ``sample_rate == 0`` → 0.0,
    otherwise ``noise_multiplier == 0`` → inf.

    Args:
        noise_multiplier: σ ≥ 0, noise std divided by the clipping norm.
        sample_rate: q in [0, 1], Poisson inclusion probability per step.
        steps: optimizer steps ≥ 0.
        delta: δ in (0, 1).
        accountant: ``"pld"`` (dp_accounting, both relations), ``"prv"`` (Gopi et al., arXiv 2106.02848)
            or ``"rdp"`` (arXiv 1908.10530); the last two add/remove only.
        neighbouring: ``"replace_one"`` (default) or ``"add_remove"``.

    Returns:
        ε, an upper bound on the true ε of the composed mechanism.

    Examples:
        >>> round(compute_epsilon(noise_multiplier=1.5, sample_rate=0.04, steps=2250,
        ...                       delta=1e-5, accountant="rdp", neighbouring="add_remove"), 6)
        7.329111
    """
    return epsilon_from_history(
        [(noise_multiplier, sample_rate, steps)], delta=delta, accountant=accountant,
        neighbouring=neighbouring,
    )


def account(
    *, noise_multiplier: float, sample_rate: float, steps: int, delta: float,
    accountant: str = DEFAULT_ACCOUNTANT, neighbouring: str = DEFAULT_NEIGHBOURING,
) -> AccountingResult:
    """:func:`compute_epsilon` packaged with its inputs as an :class:`AccountingResult`."""
    eps = compute_epsilon(
        noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps, delta=delta,
        accountant=accountant, neighbouring=neighbouring,
    )
    return AccountingResult(
        epsilon=eps, delta=float(delta), noise_multiplier=float(noise_multiplier),
        sample_rate=float(sample_rate), steps=int(steps), accountant=accountant,
        neighbouring=NeighbouringRelation(neighbouring),
    )


def calibrate_noise(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = DEFAULT_ACCOUNTANT,
    tol: float = 0.01,
    neighbouring: str = DEFAULT_NEIGHBOURING,
) -> float:
    """Smallest σ (to within ``tol``) whose ε after ``steps`` steps at ``delta`` is ≤ ``target_epsilon``.

    ε is decreasing in σ. The search brackets σ by halving/doubling from 1, then bisects until the
    bracket is narrower than ``tol``, and returns the bracket's *upper* end: the result always satisfies
    ``compute_epsilon(σ) ≤ target_epsilon`` (rounds pessimistically) and ``σ − tol`` may not.

    Args:
        target_epsilon: ε in nats, in (0, inf).
        delta: δ in (0, 1).
        sample_rate: q in [0, 1].
        steps: optimizer steps ≥ 0.
        accountant: registry name.
        tol: absolute tolerance on σ, > 0.
        neighbouring: the relation ε is calibrated for (as :func:`compute_epsilon`).

    Returns:
        σ; ``0.0`` when nothing is released (``steps == 0`` or ``sample_rate == 0``).

    Raises:
        PrivacyError: ``target_epsilon`` ≤ 0 or NaN, or unreachable with σ ≤ :data:`MAX_NOISE_MULTIPLIER`
            (the PRV accountant cannot report ε below its 0.01 discretisation error, RDP not below ≈ 0.1).
    """
    check_relation(accountant, str(getattr(neighbouring, "value", neighbouring)))
    target = check_real("target_epsilon", target_epsilon, 0.0, math.inf, closed="neither",
                        error=PrivacyError)
    tol = check_real("tol", tol, 0.0, math.inf, closed="neither")
    delta = check_real("delta", delta, 0.0, 1.0, closed="neither")
    sample_rate = check_real("sample_rate", sample_rate, 0.0, 1.0)
    steps = check_int("steps", steps, 0)
    if steps == 0 or sample_rate == 0.0:
        return 0.0

    def ok(sigma: float) -> bool:
        return compute_epsilon(noise_multiplier=sigma, sample_rate=sample_rate, steps=steps,
                               delta=delta, accountant=accountant, neighbouring=neighbouring) <= target

    if not ok(MAX_NOISE_MULTIPLIER):
        raise PrivacyError(
            f"target_epsilon={target_epsilon!r} is unreachable at delta={delta!r}, "
            f"sample_rate={sample_rate!r}, steps={steps} even with noise_multiplier="
            f"{MAX_NOISE_MULTIPLIER:g}; {_UNREACHABLE_FIX}."
        )
    lo, hi = _sigma_bracket(ok)
    if lo == hi:
        return hi
    return bisect(ok, lo, hi, tol=tol)[1]  # the top of the bracket: ε(σ) ≤ target is guaranteed


def _sigma_bracket(ok) -> tuple[float, float]:
    """``(lo, hi)`` with ε(lo) > target ≥ ε(hi) by doubling/halving from σ = 1 (ε(0) = inf); ``lo == hi``
    when even :data:`MIN_NOISE_MULTIPLIER` meets the target."""
    lo, hi = 0.0, 1.0
    if ok(hi):
        while hi / 2 >= MIN_NOISE_MULTIPLIER and ok(hi / 2):
            hi /= 2
        return (hi, hi) if hi / 2 < MIN_NOISE_MULTIPLIER else (hi / 2, hi)
    lo, hi = hi, 2.0
    while hi < MAX_NOISE_MULTIPLIER and not ok(hi):
        lo, hi = hi, min(2 * hi, MAX_NOISE_MULTIPLIER)
    return lo, hi


def max_steps(
    *,
    noise_multiplier: float,
    sample_rate: float,
    target_epsilon: float,
    delta: float,
    accountant: str = DEFAULT_ACCOUNTANT,
    neighbouring: str = DEFAULT_NEIGHBOURING,
) -> int:
    """Largest number of steps whose ε at ``delta`` is ≤ ``target_epsilon`` (the budget guard).

    ε is non-decreasing in steps, so the answer is found by doubling then binary search; ``0`` if even one
    step exceeds the budget (e.g. σ = 0).

    Args:
        noise_multiplier: σ ≥ 0.
        sample_rate: q in (0, 1]; q = 0 spends nothing, so the step count would be unbounded.
        target_epsilon: ε budget in nats, in (0, inf).
        delta: δ in (0, 1).
        accountant: registry name.
        neighbouring: the relation the budget is stated for (as :func:`compute_epsilon`).

    Raises:
        PrivacyError: ``target_epsilon`` ≤ 0 or NaN; the budget allows more than
            :data:`MAX_STEPS_LIMIT` steps or unlimited steps (q = 0).
    """
    check_relation(accountant, str(getattr(neighbouring, "value", neighbouring)))
    sigma = check_real("noise_multiplier", noise_multiplier, 0.0, math.inf)
    sample_rate = check_real("sample_rate", sample_rate, 0.0, 1.0)
    target = check_real("target_epsilon", target_epsilon, 0.0, math.inf, closed="neither",
                        error=PrivacyError)
    delta = check_real("delta", delta, 0.0, 1.0, closed="neither")
    if sample_rate == 0.0:
        raise PrivacyError("sample_rate=0.0 spends no privacy budget, so max_steps is unbounded; "
                           "use a positive sample_rate.")

    def ok(n: int) -> bool:
        return compute_epsilon(noise_multiplier=sigma, sample_rate=sample_rate, steps=n,
                               delta=delta, accountant=accountant, neighbouring=neighbouring) <= target

    if not ok(1):
        return 0
    lo, hi = 1, 2  # invariant: ok(lo) and (hi is untested or not ok(hi))
    while ok(hi):
        if hi >= MAX_STEPS_LIMIT:
            raise PrivacyError(
                f"the budget target_epsilon={target_epsilon!r} allows more than {MAX_STEPS_LIMIT} "
                f"steps at noise_multiplier={sigma!r}, sample_rate={sample_rate!r}; "
                "lower noise_multiplier or target_epsilon."
            )
        lo, hi = hi, min(2 * hi, MAX_STEPS_LIMIT)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def default_delta(n_examples: int) -> float:
    """The default δ = 1 / (10·N) for a training set of ``n_examples`` records."""
    n = check_int("n_examples", n_examples, 1)
    return 1.0 / (10.0 * n)


def check_delta(delta: float, n_examples: int, *, force: bool = False) -> float:
    """Return ``delta`` if it is a meaningful δ for ``n_examples`` records.

    δ ≥ 1/N is refused: an (ε, δ)-DP mechanism may then publish one whole record in the clear with
    probability δ, i.e. expect to leak δ·N ≥ 1 records.

    Args:
        delta: δ in (0, 1).
        n_examples: training-set size N ≥ 1.
        force: warn (``UserWarning``) instead of raising when δ ≥ 1/N.

    Raises:
        ConfigError: δ outside (0, 1).
        PrivacyError: δ ≥ 1/N and ``force`` is False.
    """
    d = check_real("delta", delta, 0.0, 1.0, closed="neither")
    n = check_int("n_examples", n_examples, 1)
    if d >= 1.0 / n:
        msg = (
            f"delta={delta!r} is >= 1/N = {1.0 / n:.3g} (N={n}), which allows releasing a whole record "
            f"in the clear; use a smaller delta, e.g. 1/(10·N)={default_delta(n):.3g}, or pass --force."
        )
        if not force:
            raise PrivacyError(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
    return d
