"""Protection-level policy: the plain-language level shown beside the low-FPR metrics.

A level names what the attacks found *and* whether a guarantee stands behind it: a model without a valid
differential-privacy claim (non-private, no claim, an undefined ε, or seeded noise) is never called
"strong" or "moderate", however weak the attacks were — attacks at chance on an unprotected model mean
only that these attacks found nothing, not that the model is protected. Nor is an audit that had no power
(:func:`audit_power`: the target took fewer than 2 optimizer steps, or neither canaries with a positive cap nor
a reference that leaked show what the audit could see): its weak attacks are ``"not_measurable"``.

Examples:
    >>> protection_level(0.52)
    'strong'
    >>> protection_level(0.52, guaranteed=False)
    'no_guarantee'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dpaudit._validation import check_real
from dpaudit.errors import DataError

if TYPE_CHECKING:
    from dpaudit.report_schema import AuditReport, PrivacySection

__all__ = ["PROTECTION_LEVELS", "NO_GUARANTEE", "NOT_MEASURABLE", "ALL_LEVELS", "MIN_POWER_STEPS",
           "protection_level", "has_dp_guarantee", "majority_baseline", "audit_power", "report_power",
           "recomputed_cap"]

#: Plain-language protection levels a policy can require, strongest first.
PROTECTION_LEVELS = ("strong", "moderate", "weak")
#: The level of a model without a DP guarantee whose attacks found no clear leakage.
NO_GUARANTEE = "no_guarantee"
#: The level of an audit without power (:func:`audit_power`) whose attacks found no clear leakage.
NOT_MEASURABLE = "not_measurable"
#: Every level a report may state (``NO_GUARANTEE`` and ``NOT_MEASURABLE`` meet no policy minimum).
ALL_LEVELS = (*PROTECTION_LEVELS, NO_GUARANTEE, NOT_MEASURABLE)
#: Fewer optimizer steps than this and the audit had no power (a model barely moved from its backbone).
MIN_POWER_STEPS = 2


def has_dp_guarantee(privacy: PrivacySection) -> bool:
    """Whether ``privacy`` states a usable DP claim: a finite ε with status ``"ok"``, a claim source other
    than ``"none"``, and noise that is not reproducible from a published seed."""
    return (not privacy.non_private and privacy.status == "ok" and privacy.epsilon is not None
            and privacy.claim_source != "none" and privacy.noise != "seeded")


def recomputed_cap(canaries: dict[str, Any] | None) -> float | None:
    """The canary cap recomputed from the section's public numbers (count, guesses, δ and the bound's
    significance; arXiv 2305.08846 v1, Theorem 3, every guess right), or ``None`` without a usable section."""
    if not isinstance(canaries, dict) or not isinstance(canaries.get("epsilon_lb"), dict):
        return None
    bound = canaries["epsilon_lb"]
    try:
        m, k_in, k_out = int(canaries["count"]), int(canaries["guesses_in"]), int(canaries["guesses_out"])
        delta, sig = float(bound["delta"]), float(bound["significance"])
    except (KeyError, TypeError, ValueError):
        return None
    if m < 1 or k_in < 0 or k_out < 0 or k_in + k_out > m or k_in + k_out == 0:
        return None
    from dpaudit.privacy.one_run import one_run_epsilon

    r = k_in + k_out
    return float(one_run_epsilon(num_correct=r, num_guesses=r, num_canaries=m, delta=delta,
                                 significance=sig).epsilon_lb)


def _leaked(canaries: dict[str, Any] | None) -> bool | None:
    """Whether a (reference's) canary bound showed leakage: an ok theorem-backed ε_LB > 0; None if absent."""
    bound = canaries.get("epsilon_lb") if isinstance(canaries, dict) else None
    if not isinstance(bound, dict):
        return None
    return bool(bound.get("status") == "ok" and bound.get("kind", "bound") == "bound"
                and (bound.get("epsilon_lb") or 0.0) > 0.0)


def audit_power(steps: int | None, canaries: dict[str, Any] | None,
                reference_canaries: dict[str, Any] | None) -> tuple[bool, str | None]:
    """Whether an audit could have seen leakage: ``(measurable, reason if not)``.

    Not measurable when the target took fewer than :data:`MIN_POWER_STEPS` optimizer steps (``steps`` known),
    or when it has neither canaries whose recomputed cap is > 0 nor a reference whose canary bound leaked.
    """
    if steps is not None and steps < MIN_POWER_STEPS:
        return False, f"the target took {steps} optimizer step(s), fewer than {MIN_POWER_STEPS}"
    cap = recomputed_cap(canaries)
    if (cap is not None and cap > 0) or _leaked(reference_canaries):
        return True, None
    return False, ("no canaries in the audit and no reference that leaked" if cap is None
                   else "the canaries' cap is 0 and no reference leaked")


def report_power(report: AuditReport) -> tuple[bool, str | None]:
    """:func:`audit_power` of a report, recomputed from its privacy, canaries and reference sections (never
    from its ``power`` section). Steps are known for a claim dpaudit or a checkpoint states, or a stated count."""
    p = report.privacy
    known = p.claim_source in ("accountant", "checkpoint") or (p.steps or 0) > 0
    reference = getattr(report.reference, "canaries", None) if report.reference is not None else None
    return audit_power(int(p.steps) if known else None, report.canaries, reference)


def protection_level(balanced_accuracy: float, *, guaranteed: bool = True, measurable: bool = True) -> str:
    """Plain-language protection level from the strongest attack's balanced accuracy.

    With a DP guarantee: ``"strong"`` below 0.55, ``"moderate"`` below 0.60, else ``"weak"``. Without one
    (``guaranteed=False``): ``"weak"`` from 0.60, else ``"no_guarantee"`` ("no guarantee; these attacks
    found no leakage"). Shown beside the low-FPR metrics, never instead of them.

    An audit without power (``measurable=False``, :func:`audit_power`) below 0.60 is ``"not_measurable"``.

    Args:
        balanced_accuracy: a probability in [0, 1].
        guaranteed: whether the model has a DP claim (:func:`has_dp_guarantee`).
        measurable: whether the audit had power (:func:`audit_power`).

    Raises:
        TypeError: not a real number. DataError: NaN or outside [0, 1].
    """
    value = check_real("balanced_accuracy", balanced_accuracy, 0.0, 1.0, error=DataError)
    if value >= 0.60:
        return "weak"
    if not guaranteed:
        return NO_GUARANTEE
    if not measurable:
        return NOT_MEASURABLE
    return "strong" if value < 0.55 else "moderate"


def majority_baseline(labels) -> float:
    """Accuracy of always predicting the most frequent label of ``labels`` (int array, shape (n,), n ≥ 1):
    the floor an untrained classifier reaches on the same examples."""
    import numpy as np

    labels = np.asarray(labels)
    if labels.size == 0:
        raise DataError("majority_baseline needs at least one label, got an empty array.")
    return float(np.bincount(labels.astype(np.int64)).max() / labels.size)
