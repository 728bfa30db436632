"""Vectorised Clopper–Pearson helpers shared by the ε lower bounds; inputs are assumed validated."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.stats


def cp_upper(k: npt.ArrayLike, n: npt.ArrayLike, significance: float) -> np.ndarray:
    """Vectorised one-sided Clopper–Pearson upper bound; 1.0 where k == n (incl. n == 0)."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    full = k >= n
    with np.errstate(invalid="ignore", divide="ignore"):
        ub = scipy.stats.beta.ppf(1.0 - significance, k + 1.0, np.where(full, 1.0, n - k))
    return np.where(full, 1.0, ub)


def eps_from_rates(fpr_u: np.ndarray, fnr_u: np.ndarray, delta: float) -> np.ndarray:
    """Vectorised ``lower_bounds.epsilon_from_rates`` for validated rates in (0, 1]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.maximum(1.0 - delta - fpr_u, 0.0)) - np.log(fnr_u)
        b = np.log(np.maximum(1.0 - delta - fnr_u, 0.0)) - np.log(fpr_u)
    return np.maximum(np.maximum(a, b), 0.0)


def cp_epsilon(tp: npt.ArrayLike, fn: npt.ArrayLike, fp: npt.ArrayLike, tn: npt.ArrayLike, *,
               delta: float, significance: float) -> np.ndarray:
    """Vectorised ``lower_bounds.clopper_pearson_epsilon`` for validated counts."""
    fpr_u = cp_upper(fp, np.asarray(fp) + np.asarray(tn), significance / 2)
    fnr_u = cp_upper(fn, np.asarray(fn) + np.asarray(tp), significance / 2)
    return eps_from_rates(fpr_u, fnr_u, delta)
