"""Evaluate a :class:`~reports.policy.Policy` against an audit report, for CI.

Each policy key becomes one :class:`~dpaudit.report_schema.Check` with status ``"pass"``,
``"fail"`` or ``"inconclusive"``. Rules, applied to every check that spans attacks:

* a measured violation is ``"fail"``, even if other attacks are inconclusive (fail dominates);
* otherwise, any attack or bound that is not ``status="ok"``, or a metric that is ``null`` or
  unresolvable (too few non-members for the FPR), makes the check ``"inconclusive"`` —
  undefined results never reach a comparison as numbers, and inconclusive is never a pass;
* a check with nothing to evaluate (no attacks) is ``"inconclusive"``.

Nothing a report asserts about itself is trusted where it can be recomputed or contradicted
(:mod:`reports.recompute` does the recomputing; docs/design.md, "Report schema and gate"):

* ``max_epsilon`` uses ε only when ``privacy.status == "ok"`` (else inconclusive), and gates the ε the
  accountant gives for the report's σ, q, steps, δ, accountant and neighbouring relation: a stated ε that
  differs, or a ``claim_source`` that ``run.target.kind`` cannot produce, fails ("report edited or produced
  by another accountant"). Only a user's (ε, δ) about a model trained elsewhere is gated as stated,
  labelled "not verified"; no DP claim (``claim_source = "none"``) is gated like a non-private model (fails);
* ``max_tpr_at_fpr`` recomputes resolvability from ``n_nonmembers`` (N_out ≥ ⌈1/FPR⌉); a
  ``resolvable: true`` flag that the count contradicts is inconclusive;
* ``max_epsilon_lb`` needs the canary bound: ``canary: null`` (or an estimate) is inconclusive; the bound on
  crafted canaries (``canaries``) counts too when present, and entries with ``"kind": "estimate"`` never
  count as lower bounds; bounds are read at the policy's ``max_significance`` split over the family
  (attacks + 1, + 1 with crafted canaries; one-run bounds recomputed from their counts; others only
  in the direction their stated significance supports);
* ``mechanism_check`` (``require_mechanism_check`` or ``min_mechanism_tightness``): the ``dpaudit verify``
  section; missing is inconclusive (like a missing canary); pass/fail and the tightness are recomputed
  from ε_LB and the claimed ε it states (its ``passed`` flag is not trusted); a check of another claim or
  mechanism than the report's (ε, δ, σ, q, steps), at a confidence below 1 − ``max_significance``, without
  both included and excluded canaries, or with an ε_LB more than its canaries can show, is inconclusive;
  ε_LB above the claim is a fail (the implementation is proven wrong), a tightness below
  ``min_mechanism_tightness`` a fail (the check was too weak);
* power (``min_canary_cap``, ``min_steps``, ``require_reference_leak``; :mod:`reports.power`): recomputed from
  the canaries', privacy and reference sections; unmet is inconclusive (the audit could not have seen a leak),
  and the protection level of an audit without power is ``not_measurable``, which meets no minimum;
* ``secure_noise`` (every private report): seeded noise fails unless the policy sets
  ``allow_seeded_noise``; noise not recorded (``null``) is taken as stated only for a user claim about a
  model trained elsewhere (``run.target.kind`` hf or scores), fails for a target trained in the run
  (``train`` always records it) and is inconclusive otherwise.

Every string printed, annotated or written to XML passes through :func:`dpaudit.sanitize.clean_text`
(report and policy strings may be hostile: newlines, ``::`` workflow commands, ANSI escapes).

Exit codes (:func:`exit_code`): 0 all pass, 1 any fail, 3 otherwise any inconclusive. Input errors
(bad policy, missing/truncated/NaN report) are raised as ``DpauditError`` (exit 2) before this.

JUnit XML (:func:`junit_xml`): one ``<testcase>`` per check; fail → ``<failure>``; inconclusive →
``<error type="inconclusive">``. Not ``<skipped>``: most CI dashboards count skipped tests as
green, and an inconclusive audit must not look like a pass.
"""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from dpaudit.protection import ALL_LEVELS, NOT_MEASURABLE, has_dp_guarantee, protection_level, report_power
from dpaudit.report_schema import AttackResult, AuditReport, Check
from dpaudit.sanitize import clean_text, guard_line
from dpaudit.reports.policy import Policy
from dpaudit.reports.recompute import gated_bounds, mechanism_mismatch, mechanism_power, recompute_epsilon, target_kind
from dpaudit.reports.power import power_checks

__all__ = ["evaluate", "exit_code", "format_table", "junit_xml", "github_annotations", "with_verdict"]


#: Caps (characters) on check names and messages; match the schema's.
_NAME_CHARS, _MESSAGE_CHARS = 300, 2000


def _check(name: str, value: float | None, threshold: float | str | None, status: str,
           message: str) -> Check:
    """The one constructor: names and messages (which quote report strings) are cleaned here."""
    if isinstance(threshold, str):
        threshold = clean_text(threshold, max_len=200)
    return Check(name=clean_text(name, max_len=_NAME_CHARS), value=value, threshold=threshold,
                 status=status, message=clean_text(message, max_len=_MESSAGE_CHARS))


def _over_attacks(name: str, threshold: float | int, attacks: Iterable[tuple[str, str, str | None, float | None]],
                  *, what: str, higher_is_worse: bool = True) -> Check:
    """Combine per-attack measurements ``(label, status, reason, value)`` into one check.

    A value violates the threshold when it is above it (``higher_is_worse``) or below it.
    """
    items = list(attacks)
    if not items:
        return _check(name, None, threshold, "inconclusive", f"no attack results to evaluate {what}.")
    measured = [(label, v) for label, status, _, v in items if status == "ok" and v is not None]
    undefined = [(label, reason) for label, status, reason, v in items if status != "ok" or v is None]
    violations = [(label, v) for label, v in measured
                  if (v > threshold if higher_is_worse else v < threshold)]
    pick = max if higher_is_worse else min
    worst = pick(measured, key=lambda lv: lv[1]) if measured else None
    value = None if worst is None else float(worst[1])
    if violations:
        listed = ", ".join(f"{label}={v:.4g}" for label, v in violations)
        return _check(name, value, threshold, "fail", f"{what} {'above' if higher_is_worse else 'below'} {threshold:g}: {listed}.")
    if undefined:
        listed = ", ".join(f"{label} ({reason or 'undefined'})" for label, reason in undefined)
        return _check(name, value, threshold, "inconclusive", f"{what} undefined for {listed}.")
    bound, extreme = ("at most", "highest") if higher_is_worse else ("at least", "lowest")
    return _check(name, value, threshold, "pass",
                  f"{what} {bound} {threshold:g} ({extreme}: {worst[0]}={worst[1]:.4g}).")


def _tpr_measurements(attacks: tuple[AttackResult, ...], fpr: float):
    for a in attacks:
        entry = a.tpr_at(fpr)
        if entry is None:
            yield a.name, "inconclusive", f"TPR at FPR {fpr:g} not measured", None
        elif not a.resolves(fpr):  # recomputed: the report's flag is not trusted
            flag = " (the report's resolvable flag says otherwise)" if entry.resolvable else ""
            yield a.name, "inconclusive", f"unresolvable with {a.n_nonmembers} non-members{flag}", None
        elif not entry.resolvable or entry.tpr is None:
            yield a.name, "inconclusive", f"unresolvable with {a.n_nonmembers} non-members", None
        else:
            yield a.name, a.status, a.reason, entry.tpr


def _epsilon_lb_check(report: AuditReport, threshold: float, max_significance: float) -> Check:
    bounds = list(gated_bounds(report, max_significance, threshold))
    check = _over_attacks("max_epsilon_lb", threshold, [b[:4] for b in bounds],
                          what="empirical ε lower bound")
    saturated = [label for label, status, _, value, sat in bounds
                 if sat and status == "ok" and value is not None and value <= threshold]
    if check.status == "pass" and saturated:
        # A saturated search only shows ε ≥ value; the true bound may exceed the threshold.
        return dataclasses.replace(check, status="inconclusive", message=(
            f"empirical ε lower bound search saturated for {', '.join(saturated)}; cannot confirm "
            f"it is within {threshold:g}."))
    return check


def _privacy_checks(report: AuditReport, policy: Policy) -> list[Check]:
    p = report.privacy
    checks = []
    if p.non_private:
        status = "pass" if policy.allow_non_private else "fail"
        what = "no DP claim stated (ε = ∞)" if p.claim_source == "none" else "not private (ε = ∞)"
        checks.append(_check("allow_non_private", None, str(policy.allow_non_private).lower(), status,
                             what + ": " + ("allowed by policy." if policy.allow_non_private
                                                        else "the policy requires a DP guarantee.")))
    else:
        checks.append(_check("allow_non_private", None, str(policy.allow_non_private).lower(), "pass",
                             "trained with differential privacy."))
    if not p.non_private:
        checks.append(_noise_check(p.noise, policy.allow_seeded_noise, p.claim_source, target_kind(report)))
    if policy.max_epsilon is not None:
        t = policy.max_epsilon
        if p.non_private:
            what = "no DP claim was stated" if p.claim_source == "none" else "not private"
            checks.append(_check("max_epsilon", None, t, "fail", f"{what}: ε = ∞ > {t:g}."))
        else:
            checks.append(_epsilon_check(report, t))
    if policy.max_delta is not None:
        t = policy.max_delta
        ok = p.delta <= t
        checks.append(_check("max_delta", p.delta, t, "pass" if ok else "fail",
                             f"δ = {p.delta:.3g} {'≤' if ok else '>'} {t:g}."))
    return checks


_SOURCE_NOTE = {"checkpoint": " (asserted by the checkpoint, not verified)",
                "user": " (stated by the user, not verified)"}


def _epsilon_check(report: AuditReport, t: float) -> Check:
    """``max_epsilon`` of a private report: on the ε the gate recomputes (:mod:`reports.recompute`)."""
    p = report.privacy
    if p.status != "ok" or p.epsilon is None:
        # Never trust a number the report itself does not stand behind.
        return _check("max_epsilon", None, t, "inconclusive",
                      f"privacy status is {p.status}, so ε is not a claim ({p.reason or 'no reason given'}).")
    own = recompute_epsilon(report)
    if own.problem is not None:
        return _check("max_epsilon", p.epsilon, t, "fail", own.problem + ".")
    ok = own.epsilon <= t
    how = " (recomputed from σ, q, steps, δ)" if own.verified else ""
    return _check("max_epsilon", own.epsilon, t, "pass" if ok else "fail",
                  f"ε = {own.epsilon:.4g} {'≤' if ok else '>'} {t:g}{how}{_SOURCE_NOTE.get(p.claim_source, '')}.")


#: Target kinds trained elsewhere: their noise source is part of what the user states, like their ε.
_STATED_NOISE_KINDS = ("hf", "scores")


def _noise_check(noise: str | None, allowed: bool, claim_source: str | None, kind: str | None) -> Check:
    """``secure_noise`` for a private report (see the module docstring). Unrecorded noise is taken as
    stated only for a user claim about a model trained elsewhere (``run.target.kind`` hf or scores); a
    target dpaudit trained (``train``) always records its noise, so ``null`` there means an edited report."""
    threshold = "seeded allowed" if allowed else "secure"
    if noise is None and claim_source == "user" and kind in _STATED_NOISE_KINDS:
        return _check("secure_noise", None, threshold, "pass",
                      "noise source part of the claim stated by the user, not verified.")
    if noise == "secure":
        return _check("secure_noise", None, threshold, "pass",
                      "noise and sampling from a CSPRNG keyed from OS entropy.")
    if noise == "seeded":
        if allowed:
            return _check("secure_noise", None, threshold, "pass",
                          "seeded noise: not a private release (allowed by allow_seeded_noise).")
        return _check("secure_noise", None, threshold, "fail",
                      "seeded noise: not a private release; anyone with the seed can subtract the "
                      "noise (set allow_seeded_noise = true only for tests and benchmarks).")
    if kind == "train":
        return _check("secure_noise", None, threshold, "fail",
                      "the noise source is not recorded (privacy.noise is null), but the target was trained by "
                      "dpaudit in this run (run.target.kind = train), which always records it: report edited.")
    return _check("secure_noise", None, threshold, "inconclusive",
                  "the noise source is not recorded (privacy.noise is null), so the claim cannot be "
                  "trusted; re-audit with a dpaudit that records it.")


def _protection_check(report: AuditReport, minimum: str) -> Check:
    measured = [(a.name, a.status, a.reason, a.balanced_accuracy) for a in report.attacks]
    # Strongest attack = highest balanced accuracy; level thresholds as protection_level().
    inner = _over_attacks("min_protection_level", math.inf, measured, what="balanced accuracy")
    rank = {level: i for i, level in enumerate(ALL_LEVELS)}  # 0 = strongest; no_guarantee meets no minimum
    if inner.value is None:
        return _check("min_protection_level", None, minimum, "inconclusive", inner.message)
    # Recomputed from the report's privacy section, not read from its verdict: without a DP claim no
    # attack result, however weak, earns a protection level.
    level = protection_level(inner.value, guaranteed=has_dp_guarantee(report.privacy),
                             measurable=report_power(report)[0])
    if level == NOT_MEASURABLE:  # the audit could not have seen a leak: not a pass, and not a measured failure
        return _check("min_protection_level", inner.value, minimum, "inconclusive",
                      f"protection level not measurable: {report_power(report)[1]}.")
    if rank[level] > rank[minimum]:
        return _check("min_protection_level", inner.value, minimum, "fail",
                      f"protection level {level} (balanced accuracy {inner.value:.4f}) is below {minimum}.")
    if inner.status == "inconclusive":
        return _check("min_protection_level", inner.value, minimum, "inconclusive",
                      f"protection level {level} among conclusive attacks, but {inner.message}")
    return _check("min_protection_level", inner.value, minimum, "pass",
                  f"protection level {level} (balanced accuracy {inner.value:.4f}) meets {minimum}.")


def _mechanism_check(report: AuditReport, min_tightness: float | None, max_significance: float) -> Check:
    """``mechanism_check`` (see the module docstring)."""
    threshold = "passed" if min_tightness is None else min_tightness
    mc, p = report.mechanism_check, report.privacy
    if mc is None:
        return _check("mechanism_check", None, threshold, "inconclusive",
                      "no mechanism check in the report; run `dpaudit verify` with the run's config.")
    claimed, lb = mc.claimed_epsilon, mc.epsilon_lower_bound
    if not (math.isfinite(claimed) and claimed > 0 and math.isfinite(lb) and lb >= 0):
        return _check("mechanism_check", None, threshold, "inconclusive",
                      f"mechanism check states ε = {claimed!r}, ε_LB = {lb!r}: not a usable check.")
    weak = mechanism_power(mc, max_significance)
    if weak is not None:
        return _check("mechanism_check", None, threshold, "inconclusive", weak + "; rerun `dpaudit verify`.")
    if lb > claimed:
        return _check("mechanism_check", lb / claimed, threshold, "fail",
                      f"white-box ε_LB = {lb:.4g} > claimed ε = {claimed:.4g} at {mc.confidence:.0%} "
                      f"confidence: the DP step does not implement the mechanism the accountant assumes.")
    own = None if p.non_private or p.status != "ok" or p.epsilon is None else recompute_epsilon(report).epsilon
    other = mechanism_mismatch(mc, p, own)
    if other is not None:
        return _check("mechanism_check", lb / claimed, threshold, "inconclusive",
                      other + "; rerun `dpaudit verify` with the run's config.")
    tightness = lb / claimed
    if min_tightness is not None and tightness < min_tightness:
        return _check("mechanism_check", tightness, threshold, "fail",
                      f"white-box ε_LB / ε = {tightness:.3f} < {min_tightness:g}: the check is too weak to "
                      f"vouch for the implementation (more canaries: `dpaudit verify --canaries`).")
    return _check("mechanism_check", tightness, threshold, "pass",
                  f"white-box ε_LB = {lb:.4g} ≤ claimed ε = {claimed:.4g} (ε_LB / ε = {tightness:.3f}, "
                  f"{mc.num_canaries} canaries).")


def evaluate(report: AuditReport, policy: Policy) -> tuple[Check, ...]:
    """Run every check the policy sets, in the order of :data:`reports.policy.POLICY_KEYS`."""
    attacks = report.attacks
    checks = _privacy_checks(report, policy)
    if policy.max_auc is not None:
        checks.append(_over_attacks("max_auc", policy.max_auc,
                                    [(a.name, a.status, a.reason, a.auc) for a in attacks],
                                    what="AUC"))
    for limit in policy.max_tpr_at_fpr:
        checks.append(_over_attacks(f"max_tpr_at_fpr[{limit.fpr:g}]", limit.max_tpr,
                                    _tpr_measurements(attacks, limit.fpr),
                                    what=f"TPR at FPR {limit.fpr:g}"))
    if policy.max_epsilon_lb is not None:
        checks.append(_epsilon_lb_check(report, policy.max_epsilon_lb, policy.max_significance))
    if policy.min_nonmembers is not None:
        checks.append(_over_attacks("min_nonmembers", policy.min_nonmembers,
                                    [(a.name, "ok", None, float(a.n_nonmembers)) for a in attacks],
                                    what="non-members", higher_is_worse=False))
    for name in policy.required_attacks:
        found = [a for a in attacks if a.name == name]
        if not found:
            checks.append(_check(f"required_attacks[{name}]", None, name, "fail",
                                 f"required attack {name} is missing from the report."))
        elif any(a.status != "ok" for a in found):
            reason = next(a.reason for a in found if a.status != "ok")
            checks.append(_check(f"required_attacks[{name}]", None, name, "inconclusive",
                                 f"required attack {name} is inconclusive ({reason})."))
        else:
            checks.append(_check(f"required_attacks[{name}]", None, name, "pass",
                                 f"required attack {name} ran."))
    if policy.min_protection_level is not None:
        checks.append(_protection_check(report, policy.min_protection_level))
    if policy.require_mechanism_check or policy.min_mechanism_tightness is not None:
        checks.append(_mechanism_check(report, policy.min_mechanism_tightness, policy.max_significance))
    checks += power_checks(report, policy)
    return tuple(checks)


def exit_code(checks: Iterable[Check]) -> int:
    """0 when every check passes, 1 when any fails, else 3 (some inconclusive)."""
    statuses = {c.status for c in checks}
    if "fail" in statuses:
        return 1
    if statuses - {"pass"}:
        return 3
    return 0


def with_verdict(report: AuditReport, policy: Policy, checks: tuple[Check, ...]) -> AuditReport:
    """``report`` with its verdict's ``policy``, ``passed`` (``None`` if inconclusive) and ``checks`` set."""
    code = exit_code(checks)
    passed = {0: True, 1: False}.get(code)
    verdict = dataclasses.replace(report.verdict, policy=policy.name, passed=passed, checks=checks)
    return dataclasses.replace(report, verdict=verdict)


def _value_text(check: Check) -> str:
    return "n/a" if check.value is None else f"{check.value:.4g}"


def format_table(checks: tuple[Check, ...], policy: Policy) -> str:
    """A fixed-width text table of the checks with a one-line summary; every cell cleaned."""
    header = ("check", "status", "value", "threshold", "message")
    rows = [tuple(clean_text(cell, max_len=cap) for cell, cap in zip(
                (c.name, c.status.upper(), _value_text(c),
                 "n/a" if c.threshold is None else f"{c.threshold}", c.message),
                (_NAME_CHARS, 20, 40, 200, _MESSAGE_CHARS)))
            for c in checks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header[:4], widths)) + "  " + header[4]]
    lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    counts = {s: sum(c.status == s for c in checks) for s in ("pass", "fail", "inconclusive")}
    outcome = {0: "PASSED", 1: "FAILED", 3: "INCONCLUSIVE (not a pass)"}[exit_code(checks)]
    lines.append(f"policy {clean_text(policy.name, max_len=200)}: {outcome} — {counts['pass']} pass, "
                 f"{counts['fail']} fail, {counts['inconclusive']} inconclusive")
    return "\n".join(guard_line(line) for line in lines)


def junit_xml(checks: tuple[Check, ...], policy: Policy) -> str:
    """JUnit XML: one testcase per check (see the module docstring for the status mapping)."""
    # Cleaned: XML 1.0 forbids most C0 characters even as character references.
    name, text = (lambda s: clean_text(s, max_len=200)), (lambda s: clean_text(s, max_len=_MESSAGE_CHARS))
    suite = ET.Element("testsuite", name=name(f"dpaudit gate: {policy.name}"), tests=str(len(checks)),
                       failures=str(sum(c.status == "fail" for c in checks)),
                       errors=str(sum(c.status == "inconclusive" for c in checks)), skipped="0")
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=name(f"dpaudit.gate.{policy.name}"),
                             name=name(c.name))
        if c.status == "fail":
            ET.SubElement(case, "failure", message=text(c.message), type="fail").text = text(c.message)
        elif c.status == "inconclusive":
            ET.SubElement(case, "error", message=text(c.message), type="inconclusive").text = (
                "inconclusive: " + text(c.message))
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(checks: tuple[Check, ...], policy: Policy) -> list[str]:
    """GitHub Actions workflow commands (``::error title=...::message``), one per non-passing check.

    Title and message are cleaned first (no line break can survive), then escaped as the runner
    expects (``%``, CR, LF; and ``:``/``,`` in properties).
    """
    lines = []
    for c in checks:
        if c.status == "pass":
            continue
        title = _escape_property(clean_text(f"dpaudit gate ({policy.name}): {c.name} {c.status}",
                                            max_len=300))
        lines.append(f"::error title={title}::{_escape_data(clean_text(c.message, max_len=_MESSAGE_CHARS))}")
    return lines
