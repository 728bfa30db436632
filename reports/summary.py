"""Plain-language sentences and table rows shared by the HTML, Markdown and PDF reports.

Everything here selects and formats numbers already stored in the report; nothing is recomputed
except what a report must not be trusted on (whether ``n_nonmembers`` resolves an FPR). Strings
returned are plain text (not escaped); each renderer escapes for its own format and passes every
string through :func:`dpaudit.sanitize.clean_text`.

Provenance shows names, not places: a dataset or model ``source`` that is a path is shown as its
basename (the sha256 beside it identifies the content), and the platform/kernel string is left out.
"""

from __future__ import annotations

import dataclasses
import re

from dpaudit.protection import has_dp_guarantee
from dpaudit.report_schema import AttackResult, AuditReport, ReferenceSection, is_estimate, strongest_of

__all__ = ["Summary", "summarize", "fmt", "fmt_pct", "attack_rows", "ATTACK_COLUMNS", "privacy_rows",
           "utility_rows", "provenance_rows", "mechanism_rows", "HEADLINE_FPR", "SEEDED_NOISE", "CONFIDENTIAL", "claim_note",
           "display_source", "redact_paths", "utility_sentence", "reference_sentence", "comparison_rows",
           "COMPARISON_COLUMNS", "target_label"]

#: The first-screen warning for a report whose noise came from a seed.
SEEDED_NOISE = "Seeded noise: not a private release"
#: First line of every report and of the audit's screen output: audit.json and the reports are private
#: (0600) because their numbers are functions of the audit target's secret membership row
#: (docs/design.md, "Release boundary"); ``summary.json`` is the public part.
CONFIDENTIAL = "confidential: describes the audit target's membership"

_CLAIM_NOTES = {"checkpoint": "asserted by the checkpoint, not verified",
                "user": "stated by the user, not verified"}
_HIDDEN_HARDWARE = ("platform",)  # the kernel string: not the reader's business

#: The FPR the first screen quotes TPR at.
HEADLINE_FPR = 0.01

_LEVEL_WORDS = {
    "strong": "strong — the best attack is barely better than guessing (balanced accuracy < 55%)",
    "moderate": "moderate — the best attack does a little better than guessing (balanced accuracy 55–60%)",
    "weak": "weak — the best attack identifies training members clearly better than guessing "
            "(balanced accuracy ≥ 60%)",
    "no_guarantee": "no guarantee; these attacks found no leakage (the model has no differential-privacy "
                    "claim, so attacks at chance do not show that it is protected)",
}


def fmt(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, or ``"n/a"`` for an undefined (``None``) value."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_pct(value: float | None, digits: int = 2) -> str:
    """``value`` as a percentage, or ``"n/a"``."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


@dataclasses.dataclass(frozen=True)
class Summary:
    """The first-screen sentences of a report (plain text)."""

    title: str
    claim: str
    strongest: str
    headline_metrics: str
    empirical: str
    protection: str
    protection_level: str | None
    verdict: str
    verdict_status: str  # "pass", "fail", "inconclusive" or "none" (no policy evaluated)
    noise_warning: str | None = None  # first-screen warning for seeded noise, else None
    utility: str = ""  # the target's accuracy beside the majority-class baseline
    recipe_warning: str | None = None  # first-screen warning: the shadows are not trained like the target
    reference: str | None = None  # the non-private reference beside the target (``audit.reference``), else None
    confidential: str = CONFIDENTIAL  # the release label, shown first (docs/design.md, "Release boundary")


def claim_note(report: AuditReport) -> str:
    """``"asserted by the checkpoint, not verified"`` (or the user's variant), else ``""``."""
    return _CLAIM_NOTES.get(report.privacy.claim_source or "", "")


def _claim(report: AuditReport) -> str:
    p = report.privacy
    if p.claim_source == "none":
        return ("No DP claim: the model was trained elsewhere and no (ε, δ) was stated for it; it is reported and "
                "gated as not private (ε = ∞).")
    if p.non_private:
        return "Not private: ε = ∞ (the model was trained without differential-privacy noise)."
    if p.epsilon is None or p.status != "ok":
        reason = f" ({p.reason})" if p.reason else ""
        return f"The privacy guarantee is undefined (ε unknown){reason}; treat the model as not private."
    note = claim_note(report)
    if p.claim_source == "user" and p.steps == 0:  # stated as (ε, δ) alone: no mechanism to describe
        return f"Claimed guarantee: (ε = {p.epsilon:.2f}, δ = {p.delta:.1e})-differential privacy, {note}."
    source = (f"{note} (it states the {p.accountant.upper()} accountant" if note
              else f"from the {p.accountant.upper()} accountant")
    return (f"Claimed guarantee: (ε = {p.epsilon:.2f}, δ = {p.delta:.1e})-differential privacy, "
            f"{source} after {p.steps} optimizer steps "
            f"(noise multiplier σ = {p.noise_multiplier:g}, sampling rate q = {p.sample_rate:g})"
            f"{')' if note else ''}.")


def utility_sentence(report: AuditReport) -> str:
    """The target's held-out accuracy beside the majority-class baseline (so an untrained model shows)."""
    u = report.utility
    text = f"Utility: held-out {u.metric} {fmt(u.value)} on {u.n_eval} examples"
    if u.majority_baseline is None:
        return text + " (majority-class baseline not recorded)."
    gain = 100 * (u.value - u.majority_baseline)
    warn = "; barely above it: the model may be untrained" if gain < 2.0 else ""
    return text + f" (majority-class baseline {fmt(u.majority_baseline)}, {gain:+.1f} points{warn})."


def _noise_warning(report: AuditReport) -> str | None:
    if report.privacy.noise != "seeded":
        return None
    return (f"{SEEDED_NOISE}: the noise was drawn from a recorded seed, so anyone who has the seed "
            "can remove it; the stated ε does not protect this model.")


def _best_lower_bound(report: AuditReport | ReferenceSection) -> tuple[str, dict, int] | None:
    """The largest valid bound (never an estimate) of the attacks and canary of the target or the reference."""
    candidates = [(f"the {a.name} attack", a.epsilon_lb) for a in report.attacks]
    if report.canary is not None:
        candidates.append(("the one-run canary audit", report.canary))
    ok = [(src, lb) for src, lb in candidates  # an estimate is not a bound: never the headline
          if lb.get("status") == "ok" and lb.get("epsilon_lb") is not None and not is_estimate(lb)]
    if not ok:
        return None
    return (*max(ok, key=lambda item: item[1]["epsilon_lb"]), len(candidates))


def _empirical(report: AuditReport) -> str:
    best = _best_lower_bound(report)
    if best is None:
        return "Empirical ε lower bound: inconclusive (no attack produced a valid bound)."
    source, lb, n_bounds = best
    saturated = " (search saturated: the true bound may be higher)" if lb.get("saturated") else ""
    if lb["epsilon_lb"] == 0.0 and not saturated:
        saturated = "; no attack demonstrated leakage at this confidence"
    method = lb["method"] + (f", {lb['experiment'].replace('_', ' ')} experiment" if lb.get("experiment") else "")
    if lb.get("family_significance") is not None and lb.get("family_size"):
        # Every bound was computed at its share of the family's significance, fixed before the results.
        claim = (f"with {100 * (1 - lb['family_significance']):.0f}% confidence, family-wise over "
                 f"{lb['family_size']} bounds (Bonferroni)")
    elif n_bounds > 1:  # older reports: the maximum of uncorrected bounds
        claim = (f"with {100 * (1 - lb['significance']):.0f}% confidence for that bound alone (the maximum "
                 f"of {n_bounds} bounds, not corrected for the choice)")
    else:
        claim = f"with {100 * (1 - lb['significance']):.0f}% confidence"
    return (f"Empirical ε lower bound: ε ≥ {lb['epsilon_lb']:.2f} {claim}, "
            f"from {source} ({method}, δ = {lb['delta']:.1e}){saturated}.")


def _verdict(report: AuditReport) -> tuple[str, str]:
    v = report.verdict
    if v.passed is None and not v.checks:
        return "No release policy evaluated yet (run `dpaudit gate` with a policy).", "none"
    policy = f" against policy “{v.policy}”" if v.policy else ""
    n_fail = sum(c.status == "fail" for c in v.checks)
    n_inc = sum(c.status == "inconclusive" for c in v.checks)
    if v.passed:
        return f"PASSED{policy}: all {len(v.checks)} checks passed.", "pass"
    if n_fail:
        return f"FAILED{policy}: {n_fail} of {len(v.checks)} checks failed.", "fail"
    return f"INCONCLUSIVE{policy}: {n_inc} checks could not be evaluated; this is not a pass.", "inconclusive"


def summarize(report: AuditReport) -> Summary:
    """The first-screen sentences for ``report``."""
    run = report.run
    title = f"Privacy audit — {run.model.get('name', '?')} on {run.dataset.get('name', '?')}"
    strongest: AttackResult | None = None
    if report.verdict.strongest_attack is not None:
        strongest = next((a for a in report.attacks if a.name == report.verdict.strongest_attack), None)
    if strongest is None:
        strongest = report.strongest_attack()
    if strongest is None:
        strongest_text = "Strongest attack: none of the attacks produced a conclusive result."
        metrics = "AUC n/a; TPR at 1% FPR n/a."
    else:
        tpr_text = _tpr_text(strongest)
        strongest_text = f"Strongest attack: {strongest.name} ({strongest.paper})."
        metrics = (f"AUC {fmt(strongest.auc)}, {tpr_text}, balanced accuracy "
                   f"{fmt_pct(strongest.balanced_accuracy)}.")
    level = report.verdict.protection_level
    protection = ("Protection level: not determined (no conclusive attack)." if level is None
                  else f"Protection level: {_LEVEL_WORDS[level]}.")
    verdict, status = _verdict(report)
    return Summary(title=title, claim=_claim(report), strongest=strongest_text,
                   headline_metrics=metrics, empirical=_empirical(report), protection=protection,
                   protection_level=level, verdict=verdict, verdict_status=status,
                   noise_warning=_noise_warning(report), recipe_warning=_recipe_warning(report),
                   utility=utility_sentence(report), reference=reference_sentence(report))


def _tpr_text(attack: AttackResult) -> str:
    """``"TPR 3.20% at 1% FPR"``, or why it is not measured or not resolvable."""
    entry = attack.tpr_at(HEADLINE_FPR)
    if entry is None:
        return "TPR at 1% FPR not measured"
    if not entry.resolvable or entry.tpr is None or not attack.resolves(HEADLINE_FPR):
        return f"TPR at 1% FPR unresolvable with {attack.n_nonmembers} non-members"
    return f"TPR {fmt_pct(entry.tpr)} at 1% FPR"


def target_label(report: AuditReport) -> str:
    """The target's privacy in a few words: ``"ε = 8.00"``, ``"no DP claim"``, ``"ε = ∞"``, ``"ε undefined"``."""
    p = report.privacy
    if p.claim_source == "none":
        return "no DP claim"
    if p.non_private:
        return "ε = ∞"
    return "ε undefined" if p.epsilon is None or p.status != "ok" else f"ε = {p.epsilon:.2f}"


def _leakage(attacks, canary_holder) -> tuple[str, float | None]:
    """``("strongest attack rmia AUC 0.712, TPR 5.10% at 1% FPR, ε ≥ 1.23", ε_LB)`` of a target or reference."""
    strongest = strongest_of(tuple(attacks))
    if strongest is None:
        text = "no attack produced a conclusive result"
    else:
        text = f"strongest attack {strongest.name} AUC {fmt(strongest.auc)}, {_tpr_text(strongest)}"
    best = _best_lower_bound(canary_holder)
    eps = None if best is None else float(best[1]["epsilon_lb"])
    return text + (", ε lower bound inconclusive" if eps is None else f", ε ≥ {eps:.2f}"), eps


def reference_sentence(report: AuditReport) -> str | None:
    """The first-screen comparison of the non-private reference with the target, or ``None`` without one."""
    ref = report.reference
    if ref is None:
        return None
    ref_text, ref_eps = _leakage(ref.attacks, ref)
    target_text, _ = _leakage(report.attacks, report)
    ref_acc = f"held-out {ref.utility.metric} {fmt(ref.utility.value)}"
    target_acc = f"held-out {report.utility.metric} {fmt(report.utility.value)}"
    if ref_eps is not None and ref_eps > 0:
        opening = f"Without DP the same training leaks: {ref_text} ({ref_acc})."
    else:
        opening = (f"Without DP the same training (non-private reference, {ref_acc}): {ref_text} — these attacks "
                   f"found no leakage even without DP, so they say little about the target's protection.")
    label = target_label(report)
    side = f"With DP ({label})" if has_dp_guarantee(report.privacy) else f"The target ({label})"
    return f"{opening} {side}: {target_text} ({target_acc})."


#: Column headers of :func:`comparison_rows`, in order.
COMPARISON_COLUMNS = ("model", "held-out accuracy", "majority baseline", "strongest attack", "AUC",
                      "TPR@1% FPR", "ε lower bound")


def _comparison_row(name: str, util, attacks, holder) -> tuple[str, ...]:
    strongest = strongest_of(tuple(attacks))
    tpr = "n/a"
    if strongest is not None:
        entry = strongest.tpr_at(HEADLINE_FPR)
        if entry is not None and entry.resolvable and entry.tpr is not None and strongest.resolves(HEADLINE_FPR):
            tpr = fmt_pct(entry.tpr)
        elif entry is not None:
            tpr = "unresolvable"
    best = _best_lower_bound(holder)
    return (name, fmt(util.value), fmt(util.majority_baseline), "none" if strongest is None else strongest.name,
            fmt(None if strongest is None else strongest.auc), tpr,
            "inconclusive" if best is None else f"{best[1]['epsilon_lb']:.2f}")


def comparison_rows(report: AuditReport) -> list[tuple[str, ...]]:
    """Non-private reference vs target, in :data:`COMPARISON_COLUMNS` order (``[]`` without a reference)."""
    ref = report.reference
    if ref is None:
        return []
    return [_comparison_row("non-private reference (ε = ∞)", ref.utility, ref.attacks, ref),
            _comparison_row(f"target ({target_label(report)})", report.utility, report.attacks, report)]


def _recipe_warning(report: AuditReport) -> str | None:
    target = report.run.target or {}
    if not target.get("recipe_differs"):
        return None
    return (f"Reference models differ from the target's training; attack power may be understated (shadow recipe "
            f"'{target.get('shadow_recipe')}', target: {_TARGET_KINDS.get(target.get('kind'), target.get('kind'))}).")


_TARGET_KINDS = {"train": "trained by dpaudit in this run", "checkpoint": "a dpaudit checkpoint",
                 "hf": "a Hugging Face classifier", "scores": "a file of its scores (black box)"}


def target_row(report: AuditReport) -> tuple[str, str] | None:
    """The provenance row describing the model under audit (``None`` for reports without it)."""
    t = report.run.target
    if not t:
        return None
    parts = [_TARGET_KINDS.get(t.get("kind"), str(t.get("kind")))]
    if t.get("source"):
        parts.append(display_source(t["source"]))
    if t.get("sha256"):
        parts.append(f"sha256 {str(t['sha256'])[:16]}…")
    parts.append(f"outputs {t.get('obtained', 'not recorded')}")
    parts.append(f"shadow recipe {t.get('shadow_recipe', '?')}")
    return "target", "; ".join(parts)


#: Column headers of :func:`attack_rows`, in order.
ATTACK_COLUMNS = ("attack", "status", "AUC", "balanced acc.", "advantage", "TPR@FPR",
                  "ε lower bound", "members / non-members")


def attack_rows(report: AuditReport) -> list[tuple[str, ...]]:
    """One row of plain strings per attack, in :data:`ATTACK_COLUMNS` order."""
    rows = []
    for a in report.attacks:
        tprs = "; ".join(
            f"{fmt_pct(t.tpr)} @ {t.fpr:g}" if t.resolvable and t.tpr is not None and a.resolves(t.fpr)
            else f"unresolvable @ {t.fpr:g}" for t in a.tpr_at_fpr) or "n/a"
        lb = a.epsilon_lb
        if lb.get("status") == "ok" and lb.get("epsilon_lb") is not None and is_estimate(lb):
            lb_text = f"≈ {lb['epsilon_lb']:.2f} (estimate, not a bound)"
        elif lb.get("status") == "ok" and lb.get("epsilon_lb") is not None:
            lb_text = f"{lb['epsilon_lb']:.2f} ({100 * (1 - lb['significance']):.0f}% conf.)"
        else:
            lb_text = "inconclusive"
        auc = fmt(a.auc) if a.auc_std is None or a.auc is None else f"{a.auc:.3f} ± {a.auc_std:.3f}"
        status = a.status if a.reason is None else f"{a.status}: {a.reason}"
        rows.append((a.name, status, auc, fmt_pct(a.balanced_accuracy), fmt(a.advantage),
                     tprs, lb_text, f"{a.n_members} / {a.n_nonmembers}"))
    return rows


def _kv(mapping: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items()) or "—"


_ABSOLUTE = re.compile(r"^(?:/|~|\\\\|[A-Za-z]:[\\/])")


def display_source(value: object) -> str:
    """A path-like ``source`` as its basename (``/home/u/data/train.csv`` → ``train.csv``); other values as is."""
    text = str(value)
    if "/" in text or "\\" in text:
        return re.split(r"[\\/]", text.rstrip("/\\"))[-1] or text
    return text


def redact_paths(value: object) -> object:
    """``value`` with every absolute path string (POSIX, ``~``, UNC or drive letter) cut to its basename."""
    if isinstance(value, dict):
        return {k: redact_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_paths(v) for v in value]
    if isinstance(value, str) and _ABSOLUTE.match(value):
        return display_source(value)
    return value


def _described(mapping: dict) -> str:
    return _kv({k: display_source(v) if k == "source" else v for k, v in mapping.items()})


def privacy_rows(report: AuditReport) -> list[tuple[str, str]]:
    """(label, value) rows describing the theoretical guarantee."""
    p = report.privacy
    note = claim_note(report)
    eps = "∞ (not private)" if p.non_private else (
        "undefined" if p.epsilon is None or p.status != "ok"
        else f"{p.epsilon:.4g}" + (f" ({note})" if note else ""))
    c = p.clipping
    clip = f"{c.mode}, {c.style}, max grad norm {c.max_grad_norm:g}"
    if c.groups:
        clip += f" (groups: {_kv(c.groups)})"
    rows = [("ε (nats, upper bound)", eps), ("δ", f"{p.delta:.3g}"),
            ("noise multiplier σ/C", f"{p.noise_multiplier:g}"), ("sampling rate q", f"{p.sample_rate:g}"),
            ("optimizer steps", str(p.steps)), ("accountant", p.accountant),
            ("neighbouring relation", p.neighbouring), ("clipping", clip), ("status", str(p.status)),
            ("claim source", {"accountant": "dpaudit's accountant (model trained in this run)",
                              "none": "none: no DP claim was stated", None: "not recorded"}.get(p.claim_source, note)),
            ("noise", {"secure": "secure (CSPRNG keyed from OS entropy)",
                       "seeded": f"seeded — {SEEDED_NOISE.lower()}",
                       None: "none (not private)" if p.non_private else "not recorded"}[p.noise])]
    if p.reason:
        rows.append(("reason", p.reason))
    if report.canary is not None:
        lb = report.canary
        value = ("inconclusive" + (f": {lb.get('reason')}" if lb.get("reason") else "")
                 if lb.get("status") != "ok" or lb.get("epsilon_lb") is None
                 else f"≈ {lb['epsilon_lb']:.3f} (estimate, not a bound)" if is_estimate(lb)
                 else f"ε ≥ {lb['epsilon_lb']:.3f} at {100 * (1 - lb['significance']):.0f}% confidence "
                      f"({lb['method']}, {lb['n_in']} in / {lb['n_out']} out)")
        rows.append(("one-run canary audit", value))
    return rows


def mechanism_rows(report: AuditReport) -> list[tuple[str, str]]:
    """The "implementation check" block (``dpaudit verify``); empty when the report has none.

    Pass/fail and the ratio are recomputed from the two ε values, not taken from the section's flags.
    """
    mc = report.mechanism_check
    if mc is None:
        return []
    ratio = mc.epsilon_lower_bound / mc.claimed_epsilon if mc.claimed_epsilon > 0 else None
    passed = mc.epsilon_lower_bound <= mc.claimed_epsilon
    verdict = ("PASS — the white-box bound is within the claim" if passed else
               "FAIL — the white-box bound exceeds the claim: the DP step does not do what the accountant assumes")
    return [("claimed ε (accountant)", f"{fmt(mc.claimed_epsilon)} at δ = {mc.delta:.3g}"),
            ("white-box ε lower bound", f"{fmt(mc.epsilon_lower_bound)} ({fmt_pct(mc.confidence, 0)} confidence)"),
            ("ε_LB / ε", fmt(ratio)),
            ("result", verdict),
            ("canaries", f"{mc.num_canaries} ({mc.num_included} included), {mc.steps} steps, "
                         f"q = {mc.sample_rate:.4g}, σ = {mc.noise_multiplier:.4g}, {mc.wall_time_s:.1f} s"),
            ("method", mc.method)]


def utility_rows(report: AuditReport) -> list[tuple[str, str]]:
    """(label, value) rows describing the task utility."""
    u = report.utility
    return [(u.metric, fmt(u.value)), ("majority-class baseline", fmt(u.majority_baseline)),
            ("evaluation examples", str(u.n_eval)),
            ("per model", ", ".join(fmt(v) for v in u.per_model) or "—"),
            ("non-private reference", fmt(u.non_private_reference))]


def provenance_rows(report: AuditReport) -> list[tuple[str, str]]:
    """(label, value) rows for reproducing the run."""
    r = report.run
    target = target_row(report)
    return [("run id", r.run_id), ("created", r.created), ("dpaudit", r.dpaudit_version),
            ("dataset", _described(r.dataset)), ("model", _described(r.model)), *([target] if target else []),
            ("seeds", _kv(r.seeds)),
            ("versions", _kv(r.versions)),
            ("hardware", _kv({k: v for k, v in r.hardware.items() if k not in _HIDDEN_HARDWARE})),
            ("wall time (s)", _kv(r.wall_time_s))]
