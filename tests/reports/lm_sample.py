"""A synthetic causal-LM ``audit.json`` (what ``dpaudit audit --task causal-lm`` writes), for report and gate tests.

The privacy section is :mod:`tests.reports.sample`'s (σ, q, steps, δ that the PRV accountant maps to the stated
ε). The attacks are the LM attacks with one-run bounds computed by the real estimator from Gaussian scores
(IN shifted by ``shift``), the secret canaries' section is the real :func:`canary_section` (kind ``lm_secret``),
all in one Bonferroni family at 0.05 (the attacks + the canaries; an LM audit has no natural-example canary).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dpaudit.report_schema import AuditReport, UtilitySection
from tests.reports import sample

LM_NAMES = ("lm_loss", "zlib", "ref_ratio", "lm_rmia", "min_k", "min_k_pp")
GENERATIONS = {"prompts": ["The movie", "I think that", "the secret number is "],
               "before": [" is a film", "", " 1"], "after": [" was great", " it works", " 4"]}


def _bound(scores, included, significance: float, delta: float = 1e-5) -> dict:
    from dpaudit.attacks.canary import canary_audit

    return canary_audit(scores, included, delta=delta, significance=significance, guess_fraction=0.1).to_dict()


def make_lm_report(*, n: int = 400, canaries: int | None = 400, shift: float = 0.1, canary_shift: float = 0.0,
                   generations: dict | None = None, seed: int = 3) -> AuditReport:
    """An LM audit report: ``n`` natural texts per attack, ``canaries`` secret canaries (``None``: none)."""
    from dpaudit.pipeline.canary_audit import canary_section
    from dpaudit.privacy import bonferroni_family, source_significance, with_family

    base = sample.make_report(canaries=False)
    rng = np.random.default_rng(seed)
    share = source_significance(0.05, len(LM_NAMES) + (canaries is not None))
    attacks = []
    for i, name in enumerate(LM_NAMES):
        a = sample.gaussian_attack(name, "LM attack paper, arXiv 0000.00000", shift, n=n // 2, seed=10 + i)
        included = rng.random(n) < 0.5
        attacks.append(dataclasses.replace(a, epsilon_lb=_bound(rng.normal(size=n) + shift * included, included,
                                                                share)))
    section = None
    if canaries is not None:
        included = rng.random(canaries) < 0.5
        section = canary_section(rng.normal(size=canaries) + canary_shift * included, included, kind="lm_secret",
                                 delta=1e-5, significance=share, guess_fraction=0.1, score_rule="ref_ratio")
    members = [(a.name, a.epsilon_lb) for a in attacks] + ([("canaries", section["epsilon_lb"])] if section else [])
    family = bonferroni_family(members, significance=0.05)
    tag = dict(family_size=family["size"], family_significance=0.05)
    attacks = [dataclasses.replace(a, epsilon_lb=with_family(a.epsilon_lb, **tag)) for a in attacks]
    if section is not None:
        section = {**section, "epsilon_lb": with_family(section["epsilon_lb"], **tag)}
    run = dataclasses.replace(base.run, model={**base.run.model, "name": "smollm2-135m"},
                              target={"kind": "train", "source": None, "sha256": None, "obtained": "trained in this run",
                                      "shadow_recipe": "bitfit", "recipe_differs": False, "warning": None})
    exposure = {"space_bits": 19.93, "n_candidates": 200, "resolution_bits": 7.64,
                "included": {"n": 200, "mean": 1.6, "max": 7.6}, "excluded": {"n": 200, "mean": 1.2, "max": 6.1}}
    lm = {"attacks": list(LM_NAMES), "loss": "mean next-token NLL per text (nats)",
          "exposure": exposure if canaries is not None else None, "generations": generations or GENERATIONS}
    return dataclasses.replace(base, run=run, attacks=tuple(attacks), canary=None, canaries=section,
                               epsilon_lb_family=family, causal_lm=lm,
                               utility=UtilitySection(metric="perplexity", value=164.3, n_eval=n // 2,
                                                      per_model=(164.3, 170.1, 168.2)))
