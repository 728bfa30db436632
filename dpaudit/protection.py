"""Protection-level policy: the plain-language level shown beside the low-FPR metrics.

A level names what the attacks found *and* whether a guarantee stands behind it: a model without a valid
differential-privacy claim (non-private, no claim, an undefined ε, or seeded noise) is never called
"strong" or "moderate", however weak the attacks were — attacks at chance on an unprotected model mean
only that these attacks found nothing, not that the model is protected.

Examples:
    >>> protection_level(0.52)
    'strong'
    >>> protection_level(0.52, guaranteed=False)
    'no_guarantee'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dpaudit._validation import check_real
from dpaudit.errors import DataError

if TYPE_CHECKING:
    from dpaudit.report_schema import PrivacySection

__all__ = ["PROTECTION_LEVELS", "NO_GUARANTEE", "ALL_LEVELS", "protection_level", "has_dp_guarantee",
           "majority_baseline"]

#: Plain-language protection levels a policy can require, strongest first.
PROTECTION_LEVELS = ("strong", "moderate", "weak")
#: The level of a model without a DP guarantee whose attacks found no clear leakage.
NO_GUARANTEE = "no_guarantee"
#: Every level a report may state (``NO_GUARANTEE`` meets no policy minimum).
ALL_LEVELS = (*PROTECTION_LEVELS, NO_GUARANTEE)


def has_dp_guarantee(privacy: PrivacySection) -> bool:
    """Whether ``privacy`` states a usable DP claim: a finite ε with status ``"ok"``, a claim source other
    than ``"none"``, and noise that is not reproducible from a published seed."""
    return (not privacy.non_private and privacy.status == "ok" and privacy.epsilon is not None
            and privacy.claim_source != "none" and privacy.noise != "seeded")


def protection_level(balanced_accuracy: float, *, guaranteed: bool = True) -> str:
    """Plain-language protection level from the strongest attack's balanced accuracy.

    With a DP guarantee: ``"strong"`` below 0.55, ``"moderate"`` below 0.60, else ``"weak"``. Without one
    (``guaranteed=False``): ``"weak"`` from 0.60, else ``"no_guarantee"`` ("no guarantee; these attacks
    found no leakage"). Shown beside the low-FPR metrics, never instead of them.

    Args:
        balanced_accuracy: a probability in [0, 1].
        guaranteed: whether the model has a DP claim (:func:`has_dp_guarantee`).

    Raises:
        TypeError: not a real number. DataError: NaN or outside [0, 1].
    """
    value = check_real("balanced_accuracy", balanced_accuracy, 0.0, 1.0, error=DataError)
    if value >= 0.60:
        return "weak"
    if not guaranteed:
        return NO_GUARANTEE
    return "strong" if value < 0.55 else "moderate"


def majority_baseline(labels) -> float:
    """Accuracy of always predicting the most frequent label of ``labels`` (int array, shape (n,), n ≥ 1):
    the floor an untrained classifier reaches on the same examples."""
    import numpy as np

    labels = np.asarray(labels)
    if labels.size == 0:
        raise DataError("majority_baseline needs at least one label, got an empty array.")
    return float(np.bincount(labels.astype(np.int64)).max() / labels.size)
