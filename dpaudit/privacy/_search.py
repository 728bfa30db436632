"""Bracketed bisection shared by the calibration and lower-bound searches."""

from __future__ import annotations

from collections.abc import Callable


def bisect(predicate: Callable[[float], bool], lo: float, hi: float, *, tol: float) -> tuple[float, float]:
    """Shrink ``[lo, hi]`` (``predicate(lo)`` False, ``predicate(hi)`` True) until ``hi − lo ≤ tol``.

    ``predicate`` must be monotone (False then True). Returns the final ``(lo, hi)``: ``hi`` always
    satisfies the predicate and ``lo`` never does, so callers pick the side that errs the safe way.
    """
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if predicate(mid):
            hi = mid
        else:
            lo = mid
    return lo, hi
