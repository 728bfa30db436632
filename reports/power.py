"""What the audit could have seen: the first-screen "Canaries" and power sentences, and the power checks of
``dpaudit gate`` (``min_canary_cap``, ``min_steps``, ``require_reference_leak``).

Nothing here trusts the report's own ``power`` section: the cap is recomputed from the canaries' public
numbers (count, guesses, δ, significance; :func:`dpaudit.protection.recomputed_cap`), the steps are the privacy
section's, and a reference "leaked" only if its canary bound is an ok theorem-backed ε_LB > 0. A power
requirement that is not met makes its check ``"inconclusive"`` (exit 3), never ``"fail"``: an audit that could
not have seen a leak has not shown that the model leaks, nor that it does not.
"""

from __future__ import annotations

from dpaudit.protection import recomputed_cap, report_power
from dpaudit.report_schema import AuditReport, Check
from dpaudit.sanitize import clean_text

__all__ = ["canaries_sentence", "power_sentence", "power_checks"]


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def canaries_sentence(report: AuditReport) -> str | None:
    """``"Canaries recognised: AUC 0.79, ε ≥ 1.12 (cap 2.30) — 200 mislabeled canaries, score loss, 10 + 10
    guesses."``, or ``None`` when the audit had no canaries."""
    c = getattr(report, "canaries", None)
    if not c:
        return None
    lb = c.get("epsilon_lb") or {}
    cap = recomputed_cap(c)
    if lb.get("status") != "ok" or lb.get("epsilon_lb") is None:
        eps = "ε bound inconclusive" + (f" ({lb.get('reason')})" if lb.get("reason") else "")
    else:
        eps = f"ε ≥ {lb['epsilon_lb']:.2f}" + (" (estimate, not a bound)" if lb.get("kind") == "estimate" else "")
    conf = f" at {100 * (1 - lb['family_significance']):.0f}% family-wise confidence" \
        if lb.get("family_significance") is not None else ""
    if lb.get("delta") is not None:
        conf += f", δ = {lb['delta']:.1e}"
    return (f"Canaries recognised: AUC {_num(c.get('auc'))}, {eps} (cap {_num(cap)}){conf} — {c.get('count')} "
            f"{c.get('kind')} canaries, score {c.get('score_rule')}, {c.get('guesses_in')} + {c.get('guesses_out')} "
            f"guesses.")


def power_sentence(report: AuditReport) -> str | None:
    """``None`` when the audit had power; else why it could not have seen leakage."""
    measurable, reason = report_power(report)
    if measurable:
        return None
    return (f"Audit power: not measurable — {reason}; weak attacks here do not show protection "
            f"(add canaries: audit.canaries, or train longer).")


def _check(name: str, value: float | None, threshold, status: str, message: str) -> Check:
    return Check(name=name, value=value, threshold=threshold, status=status,
                 message=clean_text(message, max_len=2000))


def _cap_check(report: AuditReport, minimum: float) -> Check:
    cap = recomputed_cap(getattr(report, "canaries", None))
    if cap is None:
        return _check("min_canary_cap", None, minimum, "inconclusive",
                      "no canaries in the audit: it cannot show a bound; rerun with audit.canaries = m.")
    if cap < minimum:
        return _check("min_canary_cap", cap, minimum, "inconclusive",
                      f"the canaries could show at most ε ≥ {cap:.3f} < {minimum:g}: use more canaries.")
    return _check("min_canary_cap", cap, minimum, "pass", f"the canaries could show up to ε ≥ {cap:.3f}.")


def _steps_check(report: AuditReport, minimum: int) -> Check:
    p = report.privacy
    known = p.claim_source in ("accountant", "checkpoint") or (p.steps or 0) > 0
    if not known:
        return _check("min_steps", None, minimum, "inconclusive", "the target's optimizer steps are not known.")
    if p.steps < minimum:
        return _check("min_steps", float(p.steps), minimum, "inconclusive",
                      f"the target took {p.steps} optimizer step(s) < {minimum}: it barely moved, so the audit "
                      f"could not have seen a leak (more data or epochs).")
    return _check("min_steps", float(p.steps), minimum, "pass", f"the target took {p.steps} optimizer steps.")


def _reference_check(report: AuditReport) -> Check:
    ref = getattr(report.reference, "canaries", None) if report.reference is not None else None
    bound = ref.get("epsilon_lb") if isinstance(ref, dict) else None
    if not isinstance(bound, dict):
        return _check("require_reference_leak", None, "leak", "inconclusive",
                      "no reference canary bound in the report: run the non-private reference with canaries.")
    value = bound.get("epsilon_lb")
    if bound.get("status") == "ok" and bound.get("kind", "bound") == "bound" and (value or 0.0) > 0.0:
        return _check("require_reference_leak", float(value), "leak", "pass",
                      f"the non-private reference leaks on the canaries: ε ≥ {value:.3f}.")
    return _check("require_reference_leak", value, "leak", "inconclusive",
                  "the non-private reference shows no canary leakage: the audit could not have seen one.")


def power_checks(report: AuditReport, policy) -> list[Check]:
    """The power checks the policy sets (appended after the others by :func:`reports.gate.evaluate`)."""
    checks = []
    if getattr(policy, "min_canary_cap", None) is not None:
        checks.append(_cap_check(report, policy.min_canary_cap))
    if getattr(policy, "min_steps", None) is not None:
        checks.append(_steps_check(report, policy.min_steps))
    if getattr(policy, "require_reference_leak", False):
        checks.append(_reference_check(report))
    return checks
