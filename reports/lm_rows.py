"""The causal-LM part of the confidential report (docs/causal-lm.md): plain-text rows shared by the HTML (and
PDF, printed from it) and Markdown renderers, each of which escapes them for its own format.

Only the confidential renderers read this. The exposure, the canary bound and the generations are functions of
the target's secret membership (a continuation can repeat a member's text), so none of it reaches summary.json.
The generations are model output: untrusted text, shown only through the renderers' escaping.
"""

from __future__ import annotations

from dpaudit.protection import recomputed_cap
from dpaudit.report_schema import AuditReport, is_estimate
from dpaudit.reports.summary import fmt, fmt_confidence

__all__ = ["EXPOSURE_COLUMNS", "GENERATION_COLUMNS", "canary_bound_rows", "exposure_caption", "exposure_rows",
           "generation_rows", "has_causal_lm"]

EXPOSURE_COLUMNS = ("canaries", "n", "mean exposure (bits)", "max exposure (bits)")
GENERATION_COLUMNS = ("prompt", "before fine-tuning", "after fine-tuning")
#: Shown for an empty continuation, so an empty cell never reads as a rendering fault.
NOTHING = "(nothing generated)"


def has_causal_lm(report: AuditReport) -> bool:
    """Whether ``report`` is a causal-LM audit (it has the optional ``causal_lm`` section)."""
    return bool(report.causal_lm)


def exposure_caption(report: AuditReport) -> str | None:
    """What the exposure numbers mean (Carlini et al. 2019, arXiv 1802.08232v3, §4.3), or ``None``."""
    exp = (report.causal_lm or {}).get("exposure")
    if not exp:
        return None
    return (f"Secret Sharer exposure (bits; log2 |R| = {exp['space_bits']:.1f}, resolution "
            f"{exp['resolution_bits']:.1f} bits from {exp['n_candidates']} sampled candidates). Included canaries "
            f"far more exposed than excluded ones mean the model memorised its secrets.")


def exposure_rows(report: AuditReport) -> list[tuple[str, ...]]:
    """``(side, n, mean, max)`` for the included and the excluded canaries (``[]`` without exposure)."""
    exp = (report.causal_lm or {}).get("exposure")
    if not exp:
        return []
    return [(side, str(exp[side]["n"]), fmt(exp[side]["mean"]), fmt(exp[side]["max"]))
            for side in ("included", "excluded")]


def canary_bound_rows(report: AuditReport) -> list[tuple[str, str]]:
    """(label, value) rows of the secret canaries' one-run bound (arXiv 2305.08846v1, Theorem 3), its cap
    recomputed from the public counts, and the canary AUC; ``[]`` without secret canaries."""
    c = report.canaries
    if not has_causal_lm(report) or not isinstance(c, dict):
        return []
    lb = c.get("epsilon_lb") or {}
    if lb.get("status") != "ok" or lb.get("epsilon_lb") is None:
        bound = "inconclusive" + (f": {lb.get('reason')}" if lb.get("reason") else "")
    elif is_estimate(lb):
        bound = f"≈ {lb['epsilon_lb']:.3f} (estimate, not a bound)"
    else:
        bound = (f"ε ≥ {lb['epsilon_lb']:.2f} ({fmt_confidence(lb['significance'])} confidence, "
                 f"δ = {lb['delta']:.1e}; {lb.get('num_correct')} of {lb.get('num_guesses')} guesses right)")
    return [("secret canaries", f"{c.get('count')} ({lb.get('n_in')} included / {lb.get('n_out')} excluded), "
                                f"score {c.get('score_rule')}"),
            ("guesses", f"{c.get('guesses_in')} included + {c.get('guesses_out')} excluded"),
            ("one-run ε lower bound", bound),
            ("cap (every guess right)", fmt(recomputed_cap(c))),
            ("canary AUC", fmt(c.get("auc")))]


def generation_rows(report: AuditReport) -> list[tuple[str, str, str]]:
    """``(prompt, before, after)`` greedy continuations of the fixed prompts (``[]`` without them)."""
    gen = (report.causal_lm or {}).get("generations")
    if not gen:
        return []
    return [(prompt, before or NOTHING, after or NOTHING)
            for prompt, before, after in zip(gen["prompts"], gen["before"], gen["after"])]
