"""What the gate recomputes instead of reading: the accountant's ε, the claim's provenance and the bounds.

A report is a file anyone can edit. The gate has the accountant and the bound estimators, so it gates
on its own numbers wherever the report holds what they are computed from:

* ε (:func:`recompute_epsilon`): from ``privacy.noise_multiplier`` σ, ``sample_rate`` q, ``steps`` T,
  ``delta`` δ, ``accountant`` and ``neighbouring`` with :func:`dpaudit.privacy.compute_epsilon`; a stated
  ε more than :data:`EPSILON_REL_TOL` (relative) away is a fail ("report edited or produced by another
  accountant"). Only a user-stated (ε, δ) for a model trained elsewhere has no σ, q, T to recompute from.
* provenance (:func:`claim_problem`): ``privacy.claim_source`` must be the one ``run.target.kind``
  produces (:data:`CLAIM_SOURCES`): a model trained here is claimed by the accountant, a checkpoint by
  itself, a Hugging Face directory or a scores file by the user (or not at all).
* one-run lower bounds (:func:`gated_bounds`): from their counts (``num_guesses``, ``num_correct``,
  ``n_in + n_out`` canaries) with :func:`dpaudit.privacy.one_run.one_run_epsilon`, at the policy's
  significance split over the report's bound sources (Bonferroni, as ``dpaudit audit`` splits its own:
  the maximum of n bounds each at α/n holds with probability ≥ 1 − α). A bound without counts is
  used only in the direction its stated significance supports (see :func:`gated_bounds`).
* the mechanism check (:func:`mechanism_mismatch`, :func:`mechanism_power`): of the report's σ, q, steps
  and recomputed ε, at the policy's confidence, with an ε_LB its canaries can show.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Any

from dpaudit.errors import DpauditError
from dpaudit.report_schema import AuditReport, is_estimate

__all__ = ["CLAIM_SOURCES", "EPSILON_REL_TOL", "LM_ATTACK_NAMES", "Recomputed", "claim_problem", "gated_bounds",
           "is_lm_audit", "mechanism_mismatch", "mechanism_power", "recompute_epsilon", "target_kind"]

#: Largest relative difference between the stated and the recomputed ε (the PRV accountant is
#: deterministic; the slack only absorbs float formatting).
EPSILON_REL_TOL = 1e-3

#: ``run.target.kind`` → the ``privacy.claim_source`` values that kind of target produces.
CLAIM_SOURCES = {"train": ("accountant",), "checkpoint": ("checkpoint",), "hf": ("user", "none"),
                 "scores": ("user", "none")}

#: The causal-LM attacks (``attacks.lm_signals.LM_ATTACKS``; tests/adversarial/test_gate_lm.py keeps the two equal),
#: named here so that the gate never imports the attack package.
LM_ATTACK_NAMES = frozenset({"lm_loss", "zlib", "ref_ratio", "lm_lira", "lm_rmia", "min_k", "min_k_pp"})

#: Relative tolerance when comparing a stated significance with the gate's.
_SIGNIFICANCE_REL_TOL = 1e-6


@dataclass(frozen=True)
class Recomputed:
    """The ε the gate uses: ``epsilon`` (``None`` with a ``problem``), ``verified`` when recomputed."""

    epsilon: float | None
    verified: bool
    problem: str | None = None


def target_kind(report: AuditReport) -> str | None:
    """``run.target.kind`` (``None`` for a report that does not record its target)."""
    target = report.run.target
    kind = target.get("kind") if isinstance(target, dict) else None
    return kind if isinstance(kind, str) else None


def claim_problem(report: AuditReport) -> str | None:
    """Why ``privacy.claim_source`` cannot be what this report's target produces, or ``None``."""
    kind, source = target_kind(report), report.privacy.claim_source
    if kind is None or source is None or kind not in CLAIM_SOURCES or source in CLAIM_SOURCES[kind]:
        return None
    return (f"privacy.claim_source = {source!r} but run.target.kind = {kind!r} (whose claim comes from "
            f"{' or '.join(CLAIM_SOURCES[kind])}): report edited")


@functools.lru_cache(maxsize=256)
def _accountant_epsilon(sigma: float, q: float, steps: int, delta: float, accountant: str,
                        neighbouring: str) -> float:
    import warnings

    import numpy as np

    from dpaudit.privacy import accounting

    kwargs: dict[str, Any] = {}
    if "neighbouring" in inspect.signature(accounting.compute_epsilon).parameters:
        kwargs["neighbouring"] = neighbouring
    elif neighbouring != "add_remove":
        raise ValueError(f"this accountant analyses add_remove only, the report states {neighbouring!r}")
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # a hostile σ must not print warnings
        warnings.simplefilter("ignore")
        return accounting.compute_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta,
                                          accountant=accountant, **kwargs)


def recompute_epsilon(report: AuditReport) -> Recomputed:
    """The gate's ε for a private report whose ``privacy.status`` is ``"ok"`` (see the module docstring)."""
    p = report.privacy
    problem = claim_problem(report)
    if problem:
        return Recomputed(None, False, problem)
    if not (p.noise_multiplier > 0 and p.sample_rate > 0 and p.steps > 0):
        if p.claim_source == "user" and target_kind(report) in ("hf", "scores"):
            return Recomputed(p.epsilon, False)  # a stated (ε, δ): nothing to recompute it from
        return Recomputed(None, False, (
            f"ε = {p.epsilon:.4g} is stated without the σ, q, steps it was computed from (σ = "
            f"{p.noise_multiplier:g}, q = {p.sample_rate:g}, steps = {p.steps}; claim_source "
            f"{p.claim_source}, run.target.kind {target_kind(report)}): report edited or produced by another "
            f"accountant"))
    try:
        eps = _accountant_epsilon(float(p.noise_multiplier), float(p.sample_rate), int(p.steps), float(p.delta),
                                  str(p.accountant), str(p.neighbouring))
    except (DpauditError, ArithmeticError, ValueError, MemoryError, TypeError) as err:
        return Recomputed(None, False, (
            f"ε cannot be recomputed from σ = {p.noise_multiplier:g}, q = {p.sample_rate:g}, steps = {p.steps}, "
            f"δ = {p.delta:.3g} with accountant {p.accountant!r} ({' '.join(str(err).split())[:160]}): report "
            f"edited or produced by another accountant"))
    if not math.isclose(eps, p.epsilon, rel_tol=EPSILON_REL_TOL, abs_tol=1e-9):
        return Recomputed(None, False, (
            f"the report states ε = {p.epsilon:.4g}, but its σ = {p.noise_multiplier:g}, q = {p.sample_rate:g}, "
            f"steps = {p.steps}, δ = {p.delta:.3g} give ε = {eps:.4g} with the {p.accountant!r} accountant "
            f"({p.neighbouring}): report edited or produced by another accountant"))
    return Recomputed(eps, True)


def is_lm_audit(report: AuditReport) -> bool:
    """Whether ``report`` is a causal-LM audit throughout (``dpaudit audit --task causal-lm``, docs/causal-lm.md).

    Such an audit runs no one-run audit over natural examples: its Bonferroni family is its LM attacks + its
    secret canaries, so the gate does not ask for ``canary``. It must be one throughout: a ``causal_lm`` section
    that lists exactly the report's attacks, every one an LM attack, no natural-example ``canary``, and canaries
    (if any) of kind ``lm_secret``. Anything else (a classifier report with a ``causal_lm`` section pasted in and
    its failing canary deleted) is not one, and its missing canary stays inconclusive.
    """
    lm, canaries = report.causal_lm, report.canaries
    names = [a.name for a in report.attacks]
    return (isinstance(lm, dict) and report.canary is None and bool(names) and lm.get("attacks") == names
            and set(names) <= LM_ATTACK_NAMES and (canaries is None or canaries.get("kind") == "lm_secret"))


def _counts(lb: dict[str, Any]) -> tuple[int, int, int] | None:
    """``(num_correct, num_guesses, num_canaries)`` of a one-run bound, or ``None`` when not all stated."""
    names = ("num_correct", "num_guesses", "n_in", "n_out")
    values = [lb.get(k) for k in names]
    if lb.get("method") != "one_run" or not all(type(v) is int and v >= 0 for v in values):
        return None
    correct, guesses, n_in, n_out = values
    if not correct <= guesses <= n_in + n_out or n_in + n_out == 0:
        return None
    return correct, guesses, n_in + n_out


def _entries(report: AuditReport):
    """``(label, bound dict or None, why missing)`` per bound the ε_LB check reads; estimates left out."""
    for a in report.attacks:
        if not is_estimate(a.epsilon_lb):
            yield a.name, a.epsilon_lb, None
    lb = report.canary
    if lb is None and is_lm_audit(report):
        pass  # an LM audit has no natural-example canary (is_lm_audit)
    elif lb is None:
        yield "canary", None, "missing from the report"
    elif is_estimate(lb):
        yield "canary", None, "only an estimate, not a bound"
    else:
        yield "canary", lb, None
    crafted = (report.canaries or {}).get("epsilon_lb")  # the bound on crafted canaries (audit.canaries)
    if isinstance(crafted, dict) and not is_estimate(crafted):
        yield "canaries", crafted, None


def _at(lb: dict[str, Any], counts: tuple[int, int, int], significance: float, delta: float):
    from dpaudit.privacy.one_run import one_run_epsilon

    correct, guesses, m = counts
    r = one_run_epsilon(num_correct=correct, num_guesses=guesses, num_canaries=m, delta=delta,
                        significance=significance)
    return r.status, r.reason, r.epsilon_lb, r.saturated


def gated_bounds(report: AuditReport, max_significance: float, threshold: float):
    """``(label, status, reason, value, saturated)`` per lower bound, at the policy's significance.

    Each bound is gated at ``α = max_significance / n``, n = attacks + 1 (the canary; none in a causal-LM audit,
    :func:`is_lm_audit`) + 1 when the report has crafted canaries (``canaries``): the family
    ``dpaudit audit`` fixes from its configuration (estimates included, which spend their share unused). A one-run bound with its counts is
    recomputed at α (and at the smaller of its own δ and the claim's δ: a larger δ only lowers the bound).
    A bound without counts is used as stated when stated at α; stated at a larger significance (a larger,
    less certain number) only its pass holds; stated at a smaller one (a smaller number) only its fail
    holds; the other direction is inconclusive.
    """
    entries = list(_entries(report))
    # the audit's family: the attacks, the natural-example canary (none in an LM audit), the crafted canaries
    n = len(report.attacks) + (not is_lm_audit(report)) + (report.canaries is not None)
    alpha = max_significance / n
    for label, lb, missing in entries:
        if lb is None:
            yield label, "inconclusive", missing, None, False
            continue
        status, reason, value, saturated = lb.get("status"), lb.get("reason"), lb.get("epsilon_lb"), bool(
            lb.get("saturated"))
        counts = _counts(lb)
        stated_delta = lb.get("delta")
        delta = min(float(stated_delta) if isinstance(stated_delta, (int, float)) else 1.0, report.privacy.delta)
        if status == "ok" and counts is not None and 0.0 <= delta < 1.0:
            yield (label, *_at(lb, counts, alpha, delta))
            continue
        stated = lb.get("significance")
        if status != "ok" or value is None or not isinstance(stated, (int, float)) or math.isclose(
                stated, alpha, rel_tol=_SIGNIFICANCE_REL_TOL):
            yield label, status, reason, value, saturated
        elif (stated > alpha) == (value > threshold):  # a fail stated too loosely, a pass too strictly
            yield label, "inconclusive", (f"stated at significance {stated:.3g}, not the policy's {alpha:.3g} "
                                          f"(max_significance {max_significance:g} over {n} bounds), "
                                          f"without the counts to recompute it"), None, False
        else:
            yield label, status, reason, value, saturated


def mechanism_mismatch(mc, p, epsilon: float | None) -> str | None:
    """Why the mechanism check is of another claim or mechanism than the report's, or ``None``.

    ``dpaudit verify`` tests the add/remove mechanism (a canary present or absent), so a replace-one claim is
    compared through the add/remove ε of the same σ, q, steps and δ (never larger than the replace-one ε).
    """
    if epsilon is not None and getattr(p, "neighbouring", "add_remove") != "add_remove":
        try:
            epsilon = _accountant_epsilon(float(p.noise_multiplier), float(p.sample_rate), int(p.steps),
                                          float(p.delta), str(p.accountant), "add_remove")
        except (DpauditError, ArithmeticError, ValueError, MemoryError, TypeError):
            epsilon = None
    if epsilon is None or not math.isclose(epsilon, mc.claimed_epsilon, rel_tol=EPSILON_REL_TOL) or not math.isclose(
            p.delta, mc.delta, rel_tol=1e-9):
        return (f"the mechanism check verified (ε = {mc.claimed_epsilon:.4g}, δ = {mc.delta:.3g}), not the report's "
                f"claim (ε = {epsilon}, δ = {p.delta:.3g})")
    if (mc.steps != p.steps or not math.isclose(mc.sample_rate, p.sample_rate, rel_tol=1e-9)
            or not math.isclose(mc.noise_multiplier, p.noise_multiplier, rel_tol=1e-9)):
        return (f"the mechanism check ran σ = {mc.noise_multiplier:g}, q = {mc.sample_rate:g}, steps = {mc.steps}, "
                f"not the report's σ = {p.noise_multiplier:g}, q = {p.sample_rate:g}, steps = {p.steps}")
    return None


def mechanism_power(mc, max_significance: float) -> str | None:
    """Why the check's ε_LB cannot be read at the policy's confidence, or ``None``.

    Its canaries bound what it can show: a Clopper–Pearson ε_LB from n observations per group at
    significance α is at most ``−log(1 − α^(1/n))`` (no error at all), n the larger group."""
    n_out = mc.num_canaries - mc.num_included
    if not 0 < mc.num_included < mc.num_canaries:
        return (f"the mechanism check has {mc.num_included} of {mc.num_canaries} canaries included; it needs both "
                f"included and excluded canaries")
    if mc.confidence < 1.0 - max_significance - 1e-12:
        return (f"the mechanism check is at {mc.confidence:.4g} confidence, below the policy's "
                f"{1 - max_significance:.4g} (1 − max_significance)")
    alpha = 1.0 - mc.confidence
    cap = -math.log1p(-alpha ** (1.0 / max(mc.num_included, n_out))) if alpha > 0 else math.inf
    if mc.epsilon_lower_bound > cap * (1 + 1e-9):
        return (f"the mechanism check states ε_LB = {mc.epsilon_lower_bound:.4g}, more than {mc.num_canaries} canaries "
                f"can show at {mc.confidence:.4g} confidence ({cap:.4g}): edited")
    return None
