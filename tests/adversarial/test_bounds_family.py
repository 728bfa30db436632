"""Issue 8, finding 8: the headline "ε ≥ x with 95% confidence" was the maximum of six 95% bounds.

The maximum of m bounds each valid at α holds only at ≈ 1 − (1 − α)^m. Simulated with six sources whose
bound is tight (the one-run bound on ε-randomised response, where correct guesses are exactly
Binomial(r, e^ε/(1+e^ε))): the uncorrected maximum exceeds ε far more often than α, the Bonferroni family
(each source at α/6, fixed in advance) at most α. The headline sentence then says it is family-wise.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.stats
from scipy.special import expit

from dpaudit.errors import ConfigError
from dpaudit.privacy import bonferroni_family, one_run_epsilon, source_significance, with_family
from dpaudit.reports.summary import _empirical

ALPHA = 0.05
N_SOURCES = 6  # five attacks + the canary audit, as `dpaudit audit` runs by default


def test_uncorrected_maximum_overclaims_and_the_bonferroni_family_does_not():
    eps_true, r, n_exp = 1.0, 400, 3000
    rng = np.random.default_rng(11)
    correct = rng.binomial(r, expit(eps_true), size=(n_exp, N_SOURCES))  # six independent tight sources
    values = np.unique(correct)

    def table(alpha: float) -> dict[int, float]:
        return {v: one_run_epsilon(num_correct=int(v), num_guesses=r, num_canaries=r, delta=0.0,
                                   significance=alpha).epsilon_lb for v in values}

    def max_violations(t: dict[int, float]) -> int:
        return int((np.vectorize(t.get)(correct).max(axis=1) > eps_true).sum())

    slack = int(scipy.stats.binom.ppf(0.999, n_exp, ALPHA))
    assert max_violations(table(ALPHA)) > 2 * slack  # the c7a0995 headline: each at α, max taken
    per_source = source_significance(ALPHA, N_SOURCES)
    assert per_source == pytest.approx(ALPHA / N_SOURCES)
    assert max_violations(table(per_source)) <= slack


def _bound(eps: float, sig: float, method: str = "one_run") -> dict:
    return {"epsilon_lb": eps, "significance": sig, "delta": 1e-5, "method": method, "status": "ok",
            "kind": "bound", "experiment": "one_run", "saturated": False,
            "components": [{"method": "one_run"}, {"method": "one_run_fdp"}]}


def test_family_dict_takes_the_max_of_theorem_backed_members_only():
    sig = ALPHA / 3
    members = [("loss", _bound(0.2, sig)), ("rmia", _bound(0.7, sig, "one_run_fdp")),
               ("canary", _bound(0.4, sig))]
    fam = bonferroni_family(members, significance=ALPHA)
    assert (fam["method"], fam["kind"], fam["size"]) == ("bonferroni", "bound", 6)
    assert fam["epsilon_lb"] == 0.7 and fam["source"] == "rmia" and fam["member_method"] == "one_run_fdp"
    assert fam["significance"] == pytest.approx(ALPHA) and len(fam["members"]) == 3
    estimate = {**_bound(9.0, sig), "kind": "estimate"}  # e.g. a GDP fit: no theorem, never the max
    assert bonferroni_family(members[:2] + [("gdp", estimate)], significance=ALPHA)["epsilon_lb"] == 0.7
    with pytest.raises(ConfigError, match="member significances sum to"):
        bonferroni_family([(f"a{i}", _bound(0.1, ALPHA)) for i in range(3)], significance=ALPHA)


def test_headline_sentence_is_family_wise():
    sample = _sample()
    report = sample.make_report()
    n = len(report.attacks) + 1
    sig = source_significance(ALPHA, n)
    tag = dict(family_size=2 * n, family_significance=ALPHA)
    attacks = tuple(dataclasses.replace(a, epsilon_lb=with_family({**a.epsilon_lb, "significance": sig}, **tag))
                    for a in report.attacks)
    canary = with_family({**report.canary, "significance": sig}, **tag)
    text = _empirical(dataclasses.replace(report, attacks=attacks, canary=canary))
    assert "with 95% confidence, family-wise" in text and f"holds for all {n} bounds of this audit at once" in text, text
    # A report without a family (c7a0995) may not pass the maximum off as a plain 95% bound.
    def unfamilied(lb: dict) -> dict:
        return {k: v for k, v in lb.items() if k not in ("family_size", "family_significance")}

    old = _empirical(dataclasses.replace(report, canary=unfamilied(report.canary), attacks=tuple(
        dataclasses.replace(a, epsilon_lb=unfamilied(a.epsilon_lb)) for a in report.attacks)))
    assert "family-wise" not in old and "not corrected for the choice" in old, old


def _sample():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "reports" / "sample.py"
    spec = importlib.util.spec_from_file_location("_dpaudit_sample_report", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
