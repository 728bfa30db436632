"""A realistic :class:`AuditReport` built from the dataclasses, for report and gate tests.

The numbers are self-consistent: ε is the PRV accountant's for the report's σ, q, steps (σ chosen so that
it is the μ-GDP ε), the privacy profile is that of a μ-GDP mechanism (Dong, Roth, Su
2019, arXiv 1905.02383 v3, Corollary 2.13), ε is read off it at δ = 1e-5, and each attack's ROC is
the ROC of two unit-variance Gaussians shifted by ``shift`` (below the ceiling for small shifts).
Import it as ``tests.reports.sample`` (pytest runs with ``pythonpath = ["."]``).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from dpaudit.protection import protection_level
from dpaudit.report_schema import (
    AttackResult, AuditReport, ClippingSummary, EpsilonHistory, PrivacySection, ProfileCurve, RocCurve,
    RunInfo, ScoreHistogram, TprAtFpr, UtilitySection, Verdict,
)

FPRS = (0.001, 0.01, 0.1)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def gdp_delta(eps: float, mu: float) -> float:
    """δ(ε) of μ-GDP: Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2)."""
    return max(0.0, _phi(-eps / mu + mu / 2) - math.exp(eps) * _phi(-eps / mu - mu / 2))


def gdp_epsilon(delta: float, mu: float) -> float:
    lo, hi = 0.0, 50.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gdp_delta(mid, mu) > delta else (lo, mid)
    return hi


def empirical_epsilon(eps_lb: float | None, *, n_in: int = 500, n_out: int = 500,
                      status: str = "ok", reason: str | None = None, family_size: int = 5) -> dict:
    # 0.01 = 0.05 / 5: the family of four attacks and the canary at audit.significance 0.05, as the audit
    # splits it (and the gate, at the default max_significance 0.05); 0.05 / 6 with crafted canaries.
    return {"epsilon_lb": eps_lb, "significance": 0.05 / family_size, "delta": 1e-5, "method": "clopper_pearson",
            "strategy": "bonferroni", "threshold": 0.3 if eps_lb is not None else None,
            "status": status, "reason": reason, "n_in": n_in, "n_out": n_out, "seed": 7,
            "saturated": False, "family_size": family_size, "family_significance": 0.05}


def gaussian_attack(name: str, paper: str, shift: float, *, n: int = 2000, seed: int = 0) -> AttackResult:
    """An ``ok`` attack whose IN scores are N(shift, 1) and OUT scores N(0, 1)."""
    rng = np.random.default_rng(seed)
    scores_in, scores_out = rng.normal(shift, 1.0, n), rng.normal(0.0, 1.0, n)
    fpr = np.unique(np.concatenate([np.geomspace(1.0 / n, 1.0, 200), [0.0]]))
    thresholds = [np.quantile(scores_out, 1 - f) for f in fpr]
    tpr = np.maximum.accumulate(np.array([float(np.mean(scores_in >= t)) for t in thresholds]))
    auc = _phi(shift / math.sqrt(2.0))
    bal_acc = _phi(shift / 2.0)
    edges = np.linspace(-4.0, 4.0 + shift, 31)
    tprs = tuple(TprAtFpr(fpr=f, tpr=float(_phi(shift - _inv_phi(1 - f))), tpr_std=0.002,
                          resolvable=f * n >= 1) for f in FPRS)
    return AttackResult(
        name=name, paper=paper, status="ok", reason=None, target_model=0, n_targets=8,
        n_members=n, n_nonmembers=n, auc=auc, auc_std=0.004, balanced_accuracy=bal_acc,
        balanced_accuracy_std=0.003, advantage=2 * bal_acc - 1, tpr_at_fpr=tprs,
        epsilon_lb=empirical_epsilon(round(1.5 * shift, 4), n_in=n, n_out=n),
        roc=RocCurve(fpr=tuple(float(f) for f in fpr), tpr=tuple(float(t) for t in tpr)),
        histogram=ScoreHistogram(bin_edges=tuple(float(e) for e in edges),
                                 in_counts=tuple(int(c) for c in np.histogram(scores_in, edges)[0]),
                                 out_counts=tuple(int(c) for c in np.histogram(scores_out, edges)[0])),
    )


def _inv_phi(p: float) -> float:
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _phi(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


#: ``accountant_sigma(mu)`` of the μ the tests use, precomputed (calibrating takes seconds).
_SIGMAS = {0.8: 0.77947998046875, 3.0: 0.46728515625}


@functools.lru_cache(maxsize=None)
def accountant_sigma(mu: float, *, delta: float = 1e-5, sample_rate: float = 0.01, steps: int = 1000) -> float:
    """σ whose PRV ε after ``steps`` steps at ``sample_rate`` is (just below) the μ-GDP ε at ``delta``, so that
    the report's σ, q, steps and ε agree as the gate recomputes them."""
    from dpaudit.privacy import calibrate_noise

    if (delta, sample_rate, steps) == (1e-5, 0.01, 1000) and mu in _SIGMAS:
        return _SIGMAS[mu]
    return calibrate_noise(target_epsilon=gdp_epsilon(delta, mu), delta=delta, sample_rate=sample_rate,
                           steps=steps, accountant="prv", tol=1e-4)


@functools.lru_cache(maxsize=None)  # reports are frozen, so sharing one instance is safe
def make_report(*, dataset_name: str = "sst2-embedded", model_name: str = "bert-tiny",
                mu: float = 0.8, non_private: bool = False, noise: str | None = "secure",
                claim_source: str | None = "accountant", family: bool = False,
                canaries: bool = True) -> AuditReport:
    """A four-attack report with a profile, an ε history and a canary audit.

    Private by default with secure noise and dpaudit's own accountant as the claim's source; a
    non-private report records no noise source. ``family=True``: the bounds form a Bonferroni family as
    ``dpaudit audit`` writes it (each of the 5 sources at 0.05 / 5, the headline at 95%). ``canaries=True``: with
    a crafted-canaries section (the family then has 6 sources, each at 0.05 / 6).
    """
    from dpaudit.privacy import compute_epsilon

    delta = 1e-5
    grid = tuple(float(e) for e in np.linspace(0.0, 12.0, 121))
    sigma = 0.0 if non_private else accountant_sigma(mu)
    eps = None if non_private else compute_epsilon(noise_multiplier=sigma, sample_rate=0.01, steps=1000, delta=delta,
                                                   accountant="prv", neighbouring="add_remove")
    steps = tuple(range(0, 1001, 100))
    history = tuple(0.0 if s == 0 else gdp_epsilon(delta, mu * math.sqrt(s / 1000)) for s in steps)
    privacy = PrivacySection(
        non_private=non_private, epsilon=eps, delta=delta,
        noise_multiplier=sigma, sample_rate=0.01, steps=1000,
        accountant="prv", neighbouring="add_remove",
        clipping=ClippingSummary(mode="all_layer", style="automatic", max_grad_norm=1.0),
        profile=None if non_private else ProfileCurve(
            epsilons=grid, deltas=tuple(gdp_delta(e, mu) for e in grid)),
        epsilon_history=EpsilonHistory(steps=() if non_private else steps,
                                       epsilons=() if non_private else history),
        noise=None if non_private else noise, claim_source=claim_source,
    )
    attacks = (
        gaussian_attack("loss", "Yeom et al. 2018, arXiv 1709.01604", 0.10, seed=1),
        gaussian_attack("shadow", "Shokri et al. 2017, arXiv 1610.05820", 0.15, seed=2),
        gaussian_attack("lira_online", "Carlini et al. 2022, arXiv 2112.03570", 0.25, seed=3),
        gaussian_attack("rmia", "Zarifzadeh et al. 2024, arXiv 2312.03262", 0.22, seed=4),
    )
    strongest = max(attacks, key=lambda a: a.balanced_accuracy)
    run = RunInfo(
        run_id="run-2024-demo", created="2024-05-01T12:00:00+00:00", dpaudit_version="0.1.0",
        seeds={"base": 0, "membership": 1, "models": list(range(8))},
        versions={"python": "3.11.7", "torch": "2.3.0", "transformers": "4.41.0",
                  "opacus": "1.5.2", "numpy": "1.26.4"},
        hardware={"device": "cpu", "cpu_count": 16, "torch_threads": 8},
        dataset={"name": dataset_name, "source": "embedded", "sha256": "ab" * 32,
                 "n_population": 4000, "n_classes": 2},
        model={"name": model_name, "source": "embedded", "sha256": "cd" * 32,
               "n_trainable": 1538, "n_total": 4386178},
        config={"epsilon": 3.0, "delta": delta, "shadow_models": 8, "epochs": 3},
        wall_time_s={"train": 247.98338958099998, "score": 10.2, "attack": 3.1, "total": 261.3},
    )
    size = 6 if canaries else 5
    attacks = tuple(dataclasses.replace(a, epsilon_lb={**a.epsilon_lb, "significance": 0.05 / size,
                                                       "family_size": size}) for a in attacks)
    canary = empirical_epsilon(0.41, n_in=1000, n_out=1000, family_size=size)
    family_dict = None
    if family:
        attacks, canary, family_dict = _as_family(attacks, canary)
    return AuditReport(
        schema_version="1.0", run=run, privacy=privacy,
        utility=UtilitySection(metric="accuracy", value=0.842, n_eval=872,
                               per_model=(0.842, 0.838, 0.845, 0.840), non_private_reference=0.871),
        attacks=attacks, canary=canary, epsilon_lb_family=family_dict,
        verdict=Verdict(protection_level=protection_level(strongest.balanced_accuracy),
                        strongest_attack=strongest.name),
        canaries=sample_canaries(delta) if canaries else None,
    )



def _as_family(attacks: tuple[AttackResult, ...], canary: dict):
    """``attacks`` and ``canary`` as members of one Bonferroni family at 0.05, as ``dpaudit audit`` tags them."""
    from dpaudit.privacy import bonferroni_family, source_significance, with_family

    share = source_significance(0.05, len(attacks) + 1)
    attacks = tuple(dataclasses.replace(a, epsilon_lb={**a.epsilon_lb, "significance": share}) for a in attacks)
    canary = {**canary, "significance": share}
    fam = bonferroni_family([(a.name, a.epsilon_lb) for a in attacks] + [("canary", canary)], significance=0.05)
    tag = dict(family_size=fam["size"], family_significance=0.05)
    return (tuple(dataclasses.replace(a, epsilon_lb=with_family(a.epsilon_lb, **tag)) for a in attacks),
            with_family(canary, **tag), fam)


def sample_canaries(delta: float, count: int = 200, shift: float = 0.3, seed: int = 5) -> dict:
    """A canaries section from the real :func:`canary_section` on scores that separate IN from OUT by ``shift``."""
    from dpaudit.pipeline.canary_audit import canary_section

    rng = np.random.default_rng(seed)
    included = rng.random(count) < 0.5
    scores = rng.normal(size=count) + shift * included
    return canary_section(scores, included, kind="mislabeled", delta=delta, significance=0.05 / 6,
                          guess_fraction=0.1, score_rule="lira_offline")

