"""Protection-level policy: the plain-language level shown beside the low-FPR metrics.

Examples:
    >>> protection_level(0.52)
    'strong'
"""

from __future__ import annotations

from dpaudit._validation import check_real
from dpaudit.errors import DataError

__all__ = ["PROTECTION_LEVELS", "protection_level"]

#: Plain-language protection levels, strongest first.
PROTECTION_LEVELS = ("strong", "moderate", "weak")


def protection_level(balanced_accuracy: float) -> str:
    """Plain-language protection level from the strongest attack's balanced accuracy.

    ``"strong"`` below 0.55, ``"moderate"`` below 0.60, else ``"weak"``. Shown beside the low-FPR
    metrics, never instead of them.

    Args:
        balanced_accuracy: a probability in [0, 1].

    Raises:
        TypeError: not a real number. DataError: NaN or outside [0, 1].
    """
    value = check_real("balanced_accuracy", balanced_accuracy, 0.0, 1.0, error=DataError)
    if value < 0.55:
        return "strong"
    if value < 0.60:
        return "moderate"
    return "weak"
