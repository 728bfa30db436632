"""The result type shared by every empirical ε lower bound, and the citations each one names.

**Score convention: a HIGHER score means MEMBER (IN).** ε is in nats; δ and significance are
probabilities. Every bound holds with probability ≥ 1 − ``significance`` over the randomness of the
experiment it names in ``experiment``, and only for that experiment:

* ``"one_run"``: one trained model; each canary (population example) is included independently with
  probability ½ and the guesses are a function of the model and of data independent of that inclusion
  (Steinke, Nasr, Jagielski, arXiv 2305.08846v1; Mahloujifar, Melis, Chaudhuri, arXiv 2410.22235v1).
* ``"independent_runs"``: each IN/OUT observation comes from its own, independently trained run
  (Clopper–Pearson over FPR/FNR; Nasr et al., arXiv 2101.04535v1, Section 2).

``kind`` is ``"bound"`` for a number backed by such a theorem and ``"estimate"`` for anything else (e.g.
a GDP fit); an estimate never enters the gate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dpaudit._validation import check_real

__all__ = ["EPSILON_BRACKET_MAX", "THEOREMS", "EmpiricalEpsilon"]

#: Upper end of the ε search bracket (nats) of the one-run searches and :func:`gaussian_dp_epsilon`.
EPSILON_BRACKET_MAX = 100.0

#: Citation (arXiv id, version, result) of each method, written into every result's ``theorem``.
THEOREMS: dict[str, str] = {
    "one_run": "Steinke, Nasr, Jagielski, Privacy Auditing with One (1) Training Run, arXiv 2305.08846v1, "
               "Theorem 3",
    "one_run_fdp": "Mahloujifar, Melis, Chaudhuri, Auditing f-Differential Privacy in One Run, "
                   "arXiv 2410.22235v1, Section 4 (reconstruction audit with cap, 'audit_rh_with_cap') with "
                   "the Gaussian trade-off G_mu",
    "clopper_pearson": "Nasr et al., Adversary Instantiation, arXiv 2101.04535v1, Section 2 (Clopper-Pearson "
                       "on FPR/FNR) with Kairouz et al., arXiv 1311.0776v4, Theorem 2.1",
    "bonferroni": "union bound (Bonferroni) over the members, each at significance / size",
}

#: What the f-DP bound assumes beyond the one-run experiment.
GAUSSIAN_TRADEOFF_ASSUMPTION = (
    "the mechanism is mu-GDP (Gaussian trade-off G_mu); the bound is the epsilon at delta of the "
    "mu-GDP mechanism the data reject, so it lower-bounds epsilon only for mechanisms whose trade-off "
    "curve is Gaussian (e.g. the Gaussian mechanism; DP-SGD approximately)")


def check_significance(significance: float) -> float:
    return check_real("significance", significance, 0.0, 1.0, closed="neither")


def check_delta(delta: float) -> float:
    return check_real("delta", delta, 0.0, 1.0, closed="left")


@dataclasses.dataclass(frozen=True)
class EmpiricalEpsilon:
    """An empirical ε lower bound, valid with probability ≥ 1 − ``significance``.

    Attributes:
        epsilon_lb: the lower bound in nats; 0.0 (never NaN) when ``status == "inconclusive"``.
        significance: allowed probability that the bound is wrong (one minus confidence).
        delta: the δ the bound is stated at.
        method: ``"one_run"``, ``"one_run_fdp"`` or ``"clopper_pearson"``.
        strategy: how the threshold / guesses were chosen (``"split"``, ``"bonferroni"``,
            ``"explicit"``, ``"top_bottom"``, ``"counts"``).
        threshold: the decision threshold (predict IN when score ≥ threshold), if one was used.
        status: ``"ok"`` or ``"inconclusive"``; the gate treats anything but ``"ok"`` as failure.
        reason: why the result is inconclusive, else None.
        n_in: number of IN scores (members / included canaries) used, if known.
        n_out: number of OUT scores used, if known.
        seed: RNG seed of a random split, if any.
        saturated: True when a root search stopped at its bracket end, so the true bound is larger.
        num_guesses: one-run audit: guesses made.
        num_correct: one-run audit: correct guesses.
        schema_version: bumped only when a field is added (2: ``theorem`` … ``components``).
        theorem: citation of the result the bound rests on (arXiv id, version, theorem); see
            :data:`THEOREMS`.
        experiment: the experiment the theorem assumes: ``"one_run"`` or ``"independent_runs"``.
        kind: ``"bound"`` (theorem-backed lower bound) or ``"estimate"`` (no theorem; never gated).
        assumption: what the bound assumes beyond ``experiment``, if anything.
        family_size: number of member bounds in the Bonferroni family this bound belongs to, if any.
        family_significance: significance of the family-wise statement (the maximum over the family is
            a valid lower bound with probability ≥ 1 − family_significance).
        components: the member bounds (``to_dict()`` form) when this result is the larger of several
            estimators, each at ``significance / len(components)``.
    """

    epsilon_lb: float
    significance: float
    delta: float
    method: str
    strategy: str
    threshold: float | None = None
    status: str = "ok"
    reason: str | None = None
    n_in: int | None = None
    n_out: int | None = None
    seed: int | None = None
    saturated: bool = False
    num_guesses: int | None = None
    num_correct: int | None = None
    schema_version: int = 2
    theorem: str | None = None
    experiment: str | None = None
    kind: str = "bound"
    assumption: str | None = None
    family_size: int | None = None
    family_significance: float | None = None
    components: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A fresh JSON-ready dict (``components`` as a list)."""
        data = dataclasses.asdict(self)
        data["components"] = [dict(c) for c in self.components]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmpiricalEpsilon:
        """Inverse of :meth:`to_dict`; keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        if "components" in kw:
            kw["components"] = tuple(dict(c) for c in kw["components"])
        return cls(**kw)
