"""The canary bound: the one-run ε lower bound on the population's crafted canaries, with its cap.

m canaries (:mod:`dpaudit.canaries`) are the population's last m columns; each is IN for the target by a fair
coin (row 0 of ``membership.npy``, from the OS CSPRNG). One score per canary, from a rule fixed by the config
before any score is seen (:func:`resolve_score_rule`), HIGHER = member:

* ``"loss"``: the target's log-probability of the canary's (crafted) label, ``log p_y`` — needs no shadow;
* ``"lira_offline"``: offline LiRA (Carlini et al. 2022, arXiv 2112.03570 v2, §IV-C) — the target's scaled
  confidence standardised by the canary's own OUT shadows, which removes each canary's difficulty; needs
  ≥ 2 OUT shadows per canary (``audit.num_shadows ≥ 4``).

``"loss"`` is the default (``audit.canary_score``, a rule of the configuration alone): measured on the
embedded MiniLM, 400 natural + 200 mislabeled canaries, non-private BiTFiT, 4 shadows, 28 steps, δ = 1e-5,
α/7: loss AUC 0.708, ε_LB 0.25 / 0.30 / 0.40 at guess fraction 0.1 / 0.2 / 0.4; lira_offline AUC 0.638,
ε_LB 0 / 0 / 0.13 (2 OUT shadows per canary estimate its spread poorly).

Guesses: IN for the k₊ highest and OUT for the k₋ lowest scores, k₊ = k₋ = ⌊guess_fraction · m / 2⌋, fixed
from m. Under (ε, δ)-DP the correct guesses are dominated by Binomial(k₊ + k₋, e^ε / (1 + e^ε)) up to a δ
term (Steinke, Nasr, Jagielski 2023, arXiv 2305.08846 v1, Theorem 3), which gives ε_LB at confidence
1 − significance. The **cap** is the ε_LB if every guess were right: the largest bound these m, k₊, k₋, δ and
significance can ever show, whatever the model (a function of public numbers only). An audit whose cap is
below the ε it should detect could not have seen it.

δ of the bound: the smaller of the claim's δ and ``audit.canary_delta`` (default 1e-5), fixed before any
score. The theorem's δ-term is ``α·2m·δ``: at the accountant's δ = 1/(10·N_train) of a CPU-sized run (≈ 3e-4)
and m in the hundreds it exceeds the bound's significance on its own, leaving a cap of 0 whatever the model
leaks. A bound "not (ε, δ')-DP" at δ' ≤ δ is compared with the accountant's ε at δ' (``privacy.profile``);
the family states its maximum at its smallest δ (:func:`dpaudit.privacy.family.bonferroni_family`).

Membership-dependent (private under the release boundary): ``auc``, and in ``epsilon_lb`` the number of
correct guesses (``num_correct``) and of canaries IN/OUT (``n_in``, ``n_out``) — functions of the secret
inclusion. ``count``, ``kind``, the guesses, ``score_rule`` and ``cap`` are fixed before training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dpaudit.attacks.canary import canary_audit, guess_counts
from dpaudit.attacks.signals import Signals
from dpaudit.errors import ConfigError

__all__ = ["CANARY_SCORE_RULES", "CanaryPlan", "canary_cap", "canary_section", "canary_scores", "natural_part",
           "resolve_score_rule"]

#: Score rules of the canary bound (``audit.canary_score``).
CANARY_SCORE_RULES = ("loss", "lira_offline")
#: Shadows offline LiRA needs: 2 complementary pairs give every canary ≥ 2 OUT references.
LIRA_MIN_SHADOWS = 4


def resolve_score_rule(rule: str, num_shadows: int) -> str:
    """``audit.canary_score`` checked against the shadows: returns the rule.

    Raises:
        ConfigError: ``"lira_offline"`` asked with fewer than 4 shadows, or an unknown rule.
    """
    if rule not in CANARY_SCORE_RULES:
        raise ConfigError(f"audit.canary_score must be one of {', '.join(CANARY_SCORE_RULES)}; got {rule!r}.")
    if rule == "lira_offline" and num_shadows < LIRA_MIN_SHADOWS:
        raise ConfigError(f"audit.canary_score = 'lira_offline' needs ≥ {LIRA_MIN_SHADOWS} shadows (2 OUT per canary); "
                          f"got audit.num_shadows = {num_shadows}: use 'loss' or more shadows.")
    return rule


@dataclass(frozen=True)
class CanaryPlan:
    """The canary bound as fixed before any model: the population's last ``count`` columns, their kind and the
    score rule; ``n_natural`` columns come first."""

    n_natural: int
    count: int
    kind: str
    score_rule: str

    @property
    def columns(self) -> np.ndarray:
        return np.arange(self.n_natural, self.n_natural + self.count, dtype=np.int64)


def natural_part(signals: Signals, membership: np.ndarray, plan: CanaryPlan | None) -> tuple[Signals, np.ndarray]:
    """The natural examples only (the first ``n_natural`` columns): what the attacks and utility read."""
    if plan is None or plan.count == 0:
        return signals, membership
    n = plan.n_natural
    return Signals(np.ascontiguousarray(signals.logits[:, :n]), signals.labels[:n]), membership[:, :n]


def canary_scores(plan: CanaryPlan, signals: Signals, membership: np.ndarray) -> np.ndarray:
    """Scores of the target (row 0) on the canaries, float64 of shape (m,), by ``plan.score_rule``.

    Reads the shadows' membership rows only (rows 1..M−1): the target's inclusion never enters a score.
    """
    from dpaudit.attacks.registry import create_attack

    cols = plan.columns
    sub = Signals(np.ascontiguousarray(signals.logits[:, cols]), signals.labels[cols])
    hidden = membership[:, cols].copy()
    hidden[0] = False  # the attack must not (and does not) read the target's row
    return np.asarray(create_attack(plan.score_rule).score(sub, hidden, target=0,
                                                           reference=np.arange(1, len(membership))),
                      dtype=np.float64)


def canary_cap(count: int, guesses: int, *, delta: float, significance: float) -> float:
    """The largest one-run ε_LB that ``count`` canaries with ``guesses`` IN and ``guesses`` OUT guesses can
    show: every guess right (arXiv 2305.08846 v1, Theorem 3). Nats; public (no membership enters it)."""
    from dpaudit.privacy.one_run import one_run_epsilon

    r = 2 * guesses
    return float(one_run_epsilon(num_correct=r, num_guesses=r, num_canaries=count, delta=delta,
                                 significance=significance).epsilon_lb)


def _auc(scores: np.ndarray, included: np.ndarray) -> float | None:
    if included.all() or not included.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(included, scores))


def canary_section(scores: npt.ArrayLike, included: npt.ArrayLike, *, kind: str, delta: float,
                   significance: float, guess_fraction: float, score_rule: str) -> dict:
    """The ``canaries`` section of ``audit.json`` from one model's canary scores.

    Args:
        scores: array-like of shape (m,), one score per canary (HIGHER = member), from ``score_rule``.
        included: bool array of shape (m,), the canaries' inclusion for that model (a fair coin each).
        kind: the canaries' kind (``"mislabeled"``, ``"unique"``).
        delta: δ of the bound, in [0, 1).
        significance: the bound's share of the family's significance, in (0, 1).
        guess_fraction: fraction of the canaries guessed on, in (0, 1].
        score_rule: the name of the rule that made ``scores`` (recorded; fixed before the scores were seen).

    Returns:
        ``{"count", "kind", "score_rule", "guess_fraction", "guesses_in", "guesses_out", "auc", "cap",
        "epsilon_lb"}``; ``epsilon_lb`` is ``EmpiricalEpsilon.to_dict()`` (``kind="bound"``, its theorem).

    Raises:
        DataError: shapes disagree, NaN scores, or too few canaries for one guess per side.
    """
    bound = canary_audit(scores, included, delta=delta, significance=significance,
                         guess_fraction=guess_fraction).to_dict()
    s, inc = np.asarray(scores, dtype=np.float64), np.asarray(included, dtype=bool)
    k = guess_counts(s.size, guess_fraction)
    return {"count": int(s.size), "kind": kind, "score_rule": score_rule, "guess_fraction": float(guess_fraction),
            "guesses_in": k, "guesses_out": k, "auc": _auc(s, inc),
            "cap": canary_cap(s.size, k, delta=delta, significance=significance), "epsilon_lb": bound}


def plan_canaries(pop, score_rule: str, num_shadows: int) -> CanaryPlan | None:
    """The population's canary plan (``None`` without canaries); the score rule resolved from the config."""
    if pop.canaries is None or len(pop.canaries) == 0:
        return None
    return CanaryPlan(n_natural=pop.n_natural, count=len(pop.canaries), kind=pop.canaries.kind,
                      score_rule=resolve_score_rule(score_rule, num_shadows))
