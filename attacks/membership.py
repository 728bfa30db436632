"""The membership matrix: which of the M = K + 1 models trained on which population example.

Design (docs/design.md, "Membership design"):

* Row 0 is the designated target. Each example is IN for it independently with probability ½, so the
  one-run canary audit's independence assumption holds (Steinke, Nasr, Jagielski 2023,
  arXiv 2305.08846 v1, Sec. 3: each canary included independently).
* The K shadow rows come in complementary pairs: row 2j+1 ~ Bernoulli(½) i.i.d. per example and
  row 2j+2 is its complement, so every example is IN for exactly K/2 shadows (balanced IN/OUT
  reference sets for LiRA and RMIA). K must therefore be even and ≥ 2.

Resolution: a TPR at FPR f can only be measured with at least ⌈1/f⌉ non-members (FPR moves in steps
of 1/N_out). With the target trained on a random half, that takes a population of about 2⌈1/f⌉.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from dpaudit._validation import check_int, check_real
from dpaudit.errors import ConfigError, DataError

__all__ = ["make_membership", "required_nonmembers", "required_population", "check_population", "population_fprs",
           "STANDARD_FPRS"]

#: The FPRs an audit reports TPR at when ``audit.fprs`` is unset, minus those the population cannot resolve.
STANDARD_FPRS: tuple[float, ...] = (0.001, 0.01, 0.1)


def make_membership(n_population: int, n_models: int, *, seed: int) -> np.ndarray:
    """Draw the (M, N) boolean membership matrix for a target and K = M − 1 paired shadows.

    Args:
        n_population: N, number of population examples (≥ 1).
        n_models: M = K + 1, target plus shadows; K must be even and ≥ 2.
        seed: seed of the numpy Generator; the same seed gives the same matrix.

    Returns:
        Boolean array of shape (M, N); ``out[m, n]`` is True when model m trains on example n.
        Row 0 ~ i.i.d. Bernoulli(½); rows 2j+1 ~ i.i.d. Bernoulli(½); row 2j+2 = ~row 2j+1.

    Raises:
        TypeError: a non-integer argument.
        ConfigError: N < 1, or K = M − 1 odd or < 2.

    Examples:
        >>> m = make_membership(6, 5, seed=0)
        >>> m.shape, bool((m[1] ^ m[2]).all()), m[1:].sum(axis=0).tolist()
        ((5, 6), True, [2, 2, 2, 2, 2, 2])
    """
    n = check_int("n_population", n_population, 1)
    m = check_int("n_models", n_models, 1)
    seed = check_int("seed", seed, 0)
    k = m - 1
    if k < 2 or k % 2:
        suggestion = max(2, k + 1 if k % 2 else 2)
        raise ConfigError(
            f"shadow models come in complementary pairs: set num_shadows to an even number, e.g. "
            f"{suggestion} (got num_shadows={k}, n_models={m}).")
    rng = np.random.default_rng(seed)
    out = np.empty((m, n), dtype=bool)
    out[0] = rng.random(n) < 0.5
    halves = rng.random((k // 2, n)) < 0.5
    out[1::2] = halves
    out[2::2] = ~halves
    return out


def required_nonmembers(fpr: float) -> int:
    """Smallest number of non-members that resolves a TPR at FPR ``fpr``: ⌈1/fpr⌉.

    With N_out non-members the empirical FPR takes values k/N_out, so FPR = f is reachable by a
    non-zero threshold step only if 1/N_out ≤ f.

    Raises:
        TypeError: not a real number. ConfigError: ``fpr`` outside (0, 1].
    """
    f = check_real("fpr", fpr, 0.0, 1.0, closed="right")
    return int(math.ceil(1.0 / f - 1e-9))  # 1e-9 absorbs 1/0.001 = 1000.0000000000001-style error


def required_population(fpr: float) -> int:
    """Population size N for which the target (IN with probability ½) expects ⌈1/fpr⌉ non-members.

    This is 2·⌈1/fpr⌉. N_out fluctuates by about √N/2 around N/2, so the metrics still check the
    realised N_out and mark a FPR ``resolvable=False`` when it falls short.

    Raises:
        TypeError: not a real number. ConfigError: ``fpr`` outside (0, 1].
    """
    return 2 * required_nonmembers(fpr)


def _fpr_list(fprs) -> str:
    return "[" + ",".join(f"{f:g}" for f in fprs) + "]"


def _and(fprs) -> str:
    words = [f"{f:g}" for f in fprs]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def check_population(n_population: int, fprs: Iterable[float]) -> None:
    """Raise before training when N is too small to resolve every requested FPR.

    Args:
        n_population: N, the population size.
        fprs: the FPRs at which TPR will be reported, each in (0, 1].

    Raises:
        DataError: one line naming the smallest FPR, the N it needs and the ``--set audit.fprs=[...]`` that
            this N resolves.
        ConfigError / TypeError: invalid arguments.
    """
    n = check_int("n_population", n_population, 1)
    fprs = [check_real("fpr", f, 0.0, 1.0, closed="right") for f in fprs]
    if not fprs:
        return
    f_min = min(fprs)
    needed = required_population(f_min)
    if n < needed:
        fits = [f for f in fprs if required_population(f) <= n] or [
            f for f in STANDARD_FPRS if required_population(f) <= n]
        fix = (f"--set audit.fprs={_fpr_list(fits)}" if fits else
               f"a dataset of ≥ {required_population(max(STANDARD_FPRS))} examples")
        raise DataError(
            f"population too small to resolve TPR at FPR={f_min:g}: need N ≥ {needed} examples "
            f"(≥ {required_nonmembers(f_min)} non-members of the target), got N={n}; use a larger "
            f"dataset or {fix}.")


def population_fprs(n_population: int, fprs: Iterable[float] | None) -> tuple[tuple[float, ...], str | None]:
    """The FPRs to report TPR at for a population of N examples, and a line saying what was dropped.

    ``fprs`` set by the user: checked with :func:`check_population` (an unresolvable one is an error, never
    silently dropped) and returned as given. ``fprs = None`` (``audit.fprs`` unset): :data:`STANDARD_FPRS`
    minus those that need a population of more than N (:func:`required_population`), with a note naming the
    first dropped FPR and the non-members it needs (``None`` when nothing was dropped).

    Raises:
        DataError: explicit FPRs N cannot resolve, or N too small for any standard FPR (N < 20).

    Examples:
        >>> population_fprs(600, None)
        ((0.01, 0.1), 'FPR 0.001 needs ≥ 1,000 non-members (N ≥ 2,000; got N = 600); reporting TPR at FPR 0.01 and 0.1 (set audit.fprs to choose)')
        >>> population_fprs(5000, None)
        ((0.001, 0.01, 0.1), None)
    """
    n = check_int("n_population", n_population, 1)
    if fprs is not None:
        fprs = tuple(fprs)
        check_population(n, fprs)
        return fprs, None
    kept = tuple(f for f in STANDARD_FPRS if required_population(f) <= n)
    if not kept:
        check_population(n, STANDARD_FPRS[-1:])
    if len(kept) == len(STANDARD_FPRS):
        return kept, None
    first = min(f for f in STANDARD_FPRS if f not in kept)
    note = (f"FPR {first:g} needs ≥ {required_nonmembers(first):,} non-members (N ≥ {required_population(first):,}; "
            f"got N = {n:,}); reporting TPR at FPR {_and(kept)} (set audit.fprs to choose)")
    return kept, note
