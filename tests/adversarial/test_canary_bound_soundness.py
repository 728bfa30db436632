"""The canary bound (``audit.json`` ``canaries``) is sound: it exceeds the true ε at most at its significance.

Simulated one-run experiments on m canaries, each IN by a fair coin (numpy only):

* ε-randomised response: the score is the canary's inclusion bit, flipped with probability 1/(1 + e^ε)
  (pure ε-DP, δ = 0) — the mechanism for which the one-run bound (arXiv 2305.08846 v1, Theorem 3) is tight;
* the Gaussian mechanism: score ~ N(μ·b, 1), μ-GDP per canary, hence (ε(δ), δ)-DP.

The bound depends on the guesses' correct count only, so it is computed once per distinct count, after
checking on a few experiments that :func:`canary_section` (the function the pipeline and the reference call)
reports exactly that number. A mutant bound stated at a ten times larger significance (a family share
forgotten) exceeds ε in far more than α of the runs: the harness can fail. The cap bounds every ε_LB.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from dpaudit.attacks.canary import guess_counts
from dpaudit.pipeline.canary_audit import canary_cap, canary_section
from dpaudit.privacy import gaussian_dp_epsilon, one_run_epsilon

ALPHA = 0.05
M, FRACTION, RUNS = 1000, 0.2, 1000


def _slack(n: int, alpha: float) -> int:
    """Most violations a valid bound shows in n runs, except with probability 1e-3."""
    return int(scipy.stats.binom.ppf(0.999, n, alpha))


def _experiments(mechanism: str, strength: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(scores, included), each of shape (RUNS, M)."""
    included = rng.random((RUNS, M)) < 0.5
    if mechanism == "rr":
        keep = rng.random((RUNS, M)) < np.exp(strength) / (1 + np.exp(strength))
        bits = np.where(keep, included, ~included).astype(np.float64)
        return bits + 1e-9 * rng.random((RUNS, M)), included  # ties broken at random, independent of b
    return rng.normal(size=(RUNS, M)) + strength * included, included


def _correct(scores: np.ndarray, included: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(included, order, axis=1)
    return ranked[:, :k].sum(1) + (~ranked[:, -k:]).sum(1)


def _violations(correct: np.ndarray, true_eps: float, delta: float, significance: float) -> int:
    k2 = 2 * guess_counts(M, FRACTION)
    bound = {int(v): one_run_epsilon(num_correct=int(v), num_guesses=k2, num_canaries=M, delta=delta,
                                     significance=significance).epsilon_lb for v in np.unique(correct)}
    return int(sum(bound[int(v)] > true_eps for v in correct))


CASES = [("rr", 1.0, 0.0), ("rr", 3.0, 0.0), ("gauss", 1.0, 1e-5), ("gauss", 2.0, 1e-5)]


@pytest.mark.parametrize("mechanism, strength, delta", CASES)
def test_canary_bound_exceeds_true_epsilon_at_most_at_its_significance(mechanism, strength, delta):
    rng = np.random.default_rng([CASES.index((mechanism, strength, delta)), 11])
    scores, included = _experiments(mechanism, strength, rng)
    true_eps = strength if mechanism == "rr" else gaussian_dp_epsilon(strength, delta)
    k = guess_counts(M, FRACTION)
    correct = _correct(scores, included, k)
    for i in range(3):  # the section reports exactly the bound of its correct count
        section = canary_section(scores[i], included[i], kind="mislabeled", delta=delta, significance=ALPHA,
                                 guess_fraction=FRACTION, score_rule="loss")
        lb = section["epsilon_lb"]
        assert lb["kind"] == "bound" and "2305.08846v1, Theorem 3" in lb["theorem"]
        assert lb["num_correct"] == correct[i] and section["guesses_in"] == section["guesses_out"] == k
        assert lb["epsilon_lb"] == one_run_epsilon(num_correct=int(correct[i]), num_guesses=2 * k, num_canaries=M,
                                                   delta=delta, significance=ALPHA).epsilon_lb
        assert lb["epsilon_lb"] <= section["cap"]
    violations = _violations(correct, true_eps, delta, ALPHA)
    assert violations <= _slack(RUNS, ALPHA), (violations, true_eps)
    if mechanism == "rr" and strength == 3.0:  # power: a leaky mechanism shows a clearly positive bound
        assert np.median([one_run_epsilon(num_correct=int(v), num_guesses=2 * k, num_canaries=M, delta=delta,
                                          significance=ALPHA).epsilon_lb for v in correct[:50]]) > 1.5


def test_a_bound_at_a_forgotten_significance_share_is_caught():
    """Mutant: the bound stated at 10 × α (e.g. the Bonferroni share not applied) on ε-RR breaks the rate."""
    rng = np.random.default_rng(7)
    scores, included = _experiments("rr", 1.0, rng)
    correct = _correct(scores, included, guess_counts(M, FRACTION))
    assert _violations(correct, 1.0, 0.0, 0.5) > _slack(RUNS, ALPHA)


@pytest.mark.parametrize("m, fraction", [(200, 0.1), (400, 0.2), (1000, 0.1)])
def test_cap_is_the_bound_with_every_guess_right_and_bounds_every_outcome(m, fraction):
    k = guess_counts(m, fraction)
    cap = canary_cap(m, k, delta=1e-5, significance=ALPHA / 7)
    assert cap == one_run_epsilon(num_correct=2 * k, num_guesses=2 * k, num_canaries=m, delta=1e-5,
                                  significance=ALPHA / 7).epsilon_lb
    assert cap > 0
    for v in range(0, 2 * k + 1, max(1, k // 4)):
        assert one_run_epsilon(num_correct=v, num_guesses=2 * k, num_canaries=m, delta=1e-5,
                               significance=ALPHA / 7).epsilon_lb <= cap
    # a perfect separation reaches the cap (shown as such in the report)
    included = np.arange(m) % 2 == 0
    section = canary_section(included.astype(float), included, kind="unique", delta=1e-5, significance=ALPHA / 7,
                             guess_fraction=fraction, score_rule="loss")
    assert section["epsilon_lb"]["epsilon_lb"] == section["cap"] == cap and section["auc"] == 1.0
