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
import math
import re

from dpaudit.protection import has_dp_guarantee
from dpaudit.reports.power import canaries_sentence, power_sentence
from dpaudit.report_schema import AttackResult, AuditReport, ReferenceSection, is_estimate, strongest_of

__all__ = ["Summary", "summarize", "fmt", "fmt_pct", "attack_rows", "ATTACK_COLUMNS", "privacy_rows",
           "utility_rows", "provenance_rows", "mechanism_rows", "HEADLINE_FPR", "SEEDED_NOISE", "CONFIDENTIAL",
           "claim_note",
           "display_source", "redact_paths", "utility_sentence", "reference_sentence", "reference_note",
           "comparison_rows",
           "COMPARISON_COLUMNS", "target_label", "plural", "fmt_duration", "fmt_confidence", "bound_note",
           "BOUND_MARK"]

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
    "not_measurable": "not measurable — the audit had no power (too few optimizer steps, or no canaries and no "
                      "reference that leaked), so attacks at chance do not show that the model is protected",
}


def fmt(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, or ``"n/a"`` for an undefined (``None``) value."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_pct(value: float | None, digits: int = 2) -> str:
    """``value`` as a percentage, or ``"n/a"``."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``"1 optimizer step"``, ``"2 optimizer steps"`` (``nouns`` for an irregular plural)."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def fmt_duration(seconds: float) -> str:
    """Wall time for people: ``"0.4 s"``, ``"42 s"``, ``"4 min 8 s"``, ``"2 h 5 min"`` (rounded to the unit shown)."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min" + (f" {total % 60} s" if total % 60 else "")
    minutes = round(seconds / 60)
    return f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else "")


def fmt_confidence(significance: float) -> str:
    """``1 − significance`` as a percentage, rounded DOWN to 0.1 (never overstated): 0.05 → ``"95%"``,
    0.01 → ``"99%"``, 0.05/6 → ``"99.1%"``, 0.001 → ``"99.9%"``."""
    tenths = math.floor(1000 * (1 - significance) + 1e-9)
    return f"{tenths // 10}%" if tenths % 10 == 0 else f"{tenths / 10:.1f}%"


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
    canaries: str | None = None  # "Canaries recognised: AUC x, ε ≥ y (cap z)" (``audit.canaries``), else None
    power: str | None = None  # why the audit could not have seen leakage, else None
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
            f"{source} after {plural(p.steps, 'optimizer step')} "
            f"(noise multiplier σ = {p.noise_multiplier:.4g}, sampling rate q = {p.sample_rate:.4g})"
            f"{')' if note else ''}.")


def utility_sentence(report: AuditReport) -> str:
    """The target's held-out accuracy beside the majority-class baseline (so an untrained model shows)."""
    u = report.utility
    text = f"Utility: held-out {u.metric} {fmt(u.value)} on {plural(u.n_eval, 'example')}"
    if u.majority_baseline is None:
        return text + " (majority-class baseline not recorded)."
    gain = 100 * (u.value - u.majority_baseline)
    warn = ("; not above it: the model may be untrained" if gain <= 0.0
            else "; barely above it: the model may be untrained" if gain < 2.0 else "")
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
        candidates.append(("the one-run audit over natural examples", report.canary))
    canaries = getattr(report, "canaries", None)
    if isinstance(canaries, dict) and isinstance(canaries.get("epsilon_lb"), dict):
        candidates.append(("the crafted canaries", canaries["epsilon_lb"]))
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
    after = ""
    if lb.get("family_significance") is not None and lb.get("family_size"):
        # Every bound was computed at its share of the family's significance, fixed before the results.
        claim = f"with {fmt_confidence(lb['family_significance'])} confidence, family-wise"
        after = (f" That confidence holds for all {plural(_family_count(report), 'bound')} of this audit at once, "
                 "so picking the largest after seeing them does not weaken it (see the note under the attacks).")
    elif n_bounds > 1:  # older reports: the maximum of uncorrected bounds
        claim = (f"with {fmt_confidence(lb['significance'])} confidence for that bound alone (the maximum "
                 f"of {n_bounds} bounds, not corrected for the choice)")
    else:
        claim = f"with {fmt_confidence(lb['significance'])} confidence"
    return (f"Empirical ε lower bound: ε ≥ {lb['epsilon_lb']:.2f} {claim}, "
            f"from {source} ({method}, δ = {lb['delta']:.1e}){saturated}.{after}")


#: Marks an ε lower bound computed at its share of the family's confidence (explained by :func:`bound_note`).
BOUND_MARK = "†"


def _family_bounds(report: AuditReport) -> list[dict]:
    """The target's bounds (attacks, then the canary) that name the family they belong to."""
    bounds = [a.epsilon_lb for a in report.attacks] + ([report.canary] if report.canary is not None else [])
    return [b for b in bounds if b.get("family_significance") is not None and b.get("family_size")
            and not is_estimate(b)]


def _family_count(report: AuditReport) -> int:
    return len(_family_bounds(report))


def bound_note(report: AuditReport) -> str | None:
    """The footnote (plain text, starting with :data:`BOUND_MARK`) that explains the rows' confidence.

    ``None`` when no bound belongs to a family (older reports: each row then states its own confidence).
    """
    family = _family_bounds(report)
    if not family:
        return None
    alpha = family[0]["family_significance"]
    shares = sorted({b["significance"] for b in family})
    each = " or ".join(fmt_confidence(s) for s in shares)
    if len(shares) == 1:
        budget = f"{plural(len(family), 'bound')} × {_pct(shares[0])} chance of error each = {_pct(alpha)} in all"
    else:
        budget = f"{plural(len(family), 'bound')}, their chances of error adding up to {_pct(alpha)}"
    best = _best_lower_bound(report)
    headline = f"ε ≥ {best[1]['epsilon_lb']:.2f}" if best is not None else "ε ≥ x"
    return (f"{BOUND_MARK} Each ε lower bound marked {BOUND_MARK} is computed at {each} confidence on its own "
            f"({budget}; Bonferroni). So the headline “{headline} with {fmt_confidence(alpha)} confidence”, the "
            "largest of them, holds for the whole family even though it was picked after the results were seen.")


def _pct(probability: float) -> str:
    """A small probability as a percentage with at most two decimals: 0.01 → ``"1%"``, 0.05/6 → ``"0.83%"``."""
    return f"{100 * probability:.2f}".rstrip("0").rstrip(".") + "%"


def _verdict(report: AuditReport) -> tuple[str, str]:
    v = report.verdict
    if v.passed is None and not v.checks:
        return "No release policy evaluated yet (run dpaudit gate with a policy).", "none"
    policy = f" against policy “{v.policy}”" if v.policy else ""
    n_fail = sum(c.status == "fail" for c in v.checks)
    n_inc = sum(c.status == "inconclusive" for c in v.checks)
    if v.passed:
        every = "the only check passed" if len(v.checks) == 1 else f"all {len(v.checks)} checks passed"
        return f"PASSED{policy}: {every}.", "pass"
    if n_fail:
        return f"FAILED{policy}: {n_fail} of {plural(len(v.checks), 'check')} failed.", "fail"
    verb = "was" if n_inc == 1 else "were"
    return (f"INCONCLUSIVE{policy}: {plural(n_inc, 'check')} could not be evaluated ({verb} not measured or not "
            "resolvable); this is not a pass.", "inconclusive")


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
                   utility=utility_sentence(report), reference=reference_sentence(report),
                   canaries=canaries_sentence(report), power=power_sentence(report))


def _tpr_text(attack: AttackResult) -> str:
    """``"TPR 3.20% at 1% FPR"``, or why it is not measured or not resolvable."""
    entry = attack.tpr_at(HEADLINE_FPR)
    if entry is None:
        return "TPR at 1% FPR not measured"
    if not entry.resolvable or entry.tpr is None or not attack.resolves(HEADLINE_FPR):
        return f"TPR at 1% FPR unresolvable with {plural(attack.n_nonmembers, 'non-member')}"
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


def _valid_eps(bound: dict | None) -> float | None:
    """ε of a valid ``"ok"`` bound (never an estimate), else ``None``."""
    if not isinstance(bound, dict) or bound.get("status") != "ok" or is_estimate(bound):
        return None
    return None if bound.get("epsilon_lb") is None else float(bound["epsilon_lb"])


def _canary_text(section: dict | None) -> str | None:
    """``"canaries recognised (400 mislabeled), AUC 0.794, ε ≥ 1.12"`` of a crafted-canary section, else None."""
    if not isinstance(section, dict):
        return None
    eps = _valid_eps(section.get("epsilon_lb"))
    seen = "canaries recognised" if eps is not None and eps > 0 else "canaries not recognised"
    bound = "ε lower bound inconclusive" if eps is None else f"ε ≥ {eps:.2f}"
    return f"{seen} ({section.get('count')} {section.get('kind')}), AUC {fmt(section.get('auc'))}, {bound}"


def _full_reference_sentence(report: AuditReport, ref: ReferenceSection, ref_acc: str, target_acc: str) -> str:
    """``Without DP (full fine-tuning): canaries recognised …, AUC 0.79, ε ≥ 1.20 — With DP-BiTFiT (ε = 8.00): …``"""
    ref_text = _canary_text(ref.canaries) or _leakage(ref.attacks, ref)[0]
    target_text = _canary_text(getattr(report, "canaries", None)) or _leakage(report.attacks, report)[0]
    label = target_label(report)
    trained_here = (report.run.target or {}).get("kind") in ("train", "checkpoint")
    side = (f"With DP-BiTFiT ({label})" if trained_here else f"With DP ({label})") if has_dp_guarantee(
        report.privacy) else f"The target ({label})"
    return f"Without DP (full fine-tuning, {ref_acc}): {ref_text} — {side}: {target_text} ({target_acc})."


def reference_sentence(report: AuditReport) -> str | None:
    """The first-screen comparison of the non-private reference with the target, or ``None`` without one."""
    ref = report.reference
    if ref is None:
        return None
    ref_acc = f"held-out {ref.utility.metric} {fmt(ref.utility.value)}"
    target_acc = f"held-out {report.utility.metric} {fmt(report.utility.value)}"
    if ref.kind == "full_non_private":
        return _full_reference_sentence(report, ref, ref_acc, target_acc)
    ref_text, ref_eps = _leakage(ref.attacks, ref)
    target_text, _ = _leakage(report.attacks, report)
    if ref_eps is not None and ref_eps > 0:
        opening = f"Without DP the same training leaks: {ref_text} ({ref_acc})."
    else:
        opening = (f"Without DP the same training (non-private reference, {ref_acc}): {ref_text} — these attacks "
                   f"found no leakage even without DP, so they say little about the target's protection.")
    label = target_label(report)
    side = f"With DP ({label})" if has_dp_guarantee(report.privacy) else f"The target ({label})"
    return f"{opening} {side}: {target_text} ({target_acc})."


def reference_note(report: AuditReport) -> str:
    """What the reference is (the note under the comparison table)."""
    ref = report.reference
    if ref is not None and ref.kind == "full_non_private":
        r = ref.recipe or {}
        return (f"The reference is one model fine-tuned in full (every weight, {r.get('optimizer', 'adamw')} "
                f"lr {r.get('lr', 'n/a')}, {r.get('epochs', 'n/a')} epochs) on the target's training set, without "
                f"clipping or noise — what a team does without DP. It is context, never gated.")
    return ("The non-private reference (same population, membership, backbone and recipe, no clipping or noise) "
            "is context, never gated.")


#: Column headers of :func:`comparison_rows`, in order.
COMPARISON_COLUMNS = ("model", "held-out accuracy", "majority baseline", "strongest attack", "AUC",
                      "TPR@1% FPR", "ε lower bound", "canary AUC")


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
            "inconclusive" if best is None else f"{best[1]['epsilon_lb']:.2f}",
            fmt(crafted.get("auc")) if isinstance(crafted := getattr(holder, "canaries", None), dict) else "n/a")


def comparison_rows(report: AuditReport) -> list[tuple[str, ...]]:
    """Non-private reference vs target, in :data:`COMPARISON_COLUMNS` order (``[]`` without a reference)."""
    ref = report.reference
    if ref is None:
        return []
    name = "full fine-tuning, non-private (ε = ∞)" if ref.kind == "full_non_private" else "non-private reference (ε = ∞)"
    return [_comparison_row(name, ref.utility, ref.attacks, ref),
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
            lb_text = f"{lb['epsilon_lb']:.2f}" + _confidence_tag(lb)
        else:
            lb_text = "inconclusive"
        auc = fmt(a.auc) if a.auc_std is None or a.auc is None else f"{a.auc:.3f} ± {a.auc_std:.3f}"
        status = a.status if a.reason is None else f"{a.status}: {a.reason}"
        rows.append((a.name, status, auc, fmt_pct(a.balanced_accuracy), fmt(a.advantage),
                     tprs, lb_text, f"{a.n_members} / {a.n_nonmembers}"))
    return rows


def _confidence_tag(lb: dict) -> str:
    """``"†"`` for a bound in the family (:func:`bound_note` explains it), else its own ``" (95% confidence)"``."""
    if lb.get("family_significance") is not None and lb.get("family_size"):
        return BOUND_MARK
    return f" ({fmt_confidence(lb['significance'])} confidence)"


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
            ("noise multiplier σ/C", f"{p.noise_multiplier:.4g}"), ("sampling rate q", f"{p.sample_rate:.4g}"),
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
                 else f"ε ≥ {lb['epsilon_lb']:.2f}{_confidence_tag(lb)} "
                      f"({lb['method']}, {lb['n_in']} in / {lb['n_out']} out)")
        rows.append(("one-run audit (natural examples)", value))
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
            ("white-box ε lower bound", f"{fmt(mc.epsilon_lower_bound)} ({fmt_confidence(1 - mc.confidence)} confidence)"),
            ("ε_LB / ε", fmt(ratio)),
            ("result", verdict),
            ("canaries", f"{mc.num_canaries} ({mc.num_included} included), {plural(mc.steps, 'step')}, "
                         f"q = {mc.sample_rate:.4g}, σ = {mc.noise_multiplier:.4g}, {fmt_duration(mc.wall_time_s)}"),
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
            ("wall time", _kv({k: fmt_duration(v) for k, v in r.wall_time_s.items()}))]
