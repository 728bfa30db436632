"""The sign-off block: what is being signed for (scope), who signs, the decision, a signature line.

A reviewer approves *this* model on *this* data under *this* claim, so the scope names them the way
the provenance table does (names, source basenames, the first 16 hex digits of each sha256) and the
claim in a few words. Fields not given on the command line (``dpaudit report --sign-off KEY=VALUE``)
are left blank to fill in by hand on paper; the signature is always handwritten and never stored.

Strings here are plain text; each renderer escapes them (they come from ``audit.json`` or the
command line, so they are untrusted).
"""

from __future__ import annotations

import datetime

from dpaudit.errors import ConfigError
from dpaudit.report_schema import SIGN_OFF_DECISIONS, AuditReport, SignOff
from dpaudit.sanitize import clean_text
from dpaudit.reports import summary as S

__all__ = ["SIGN_OFF_KEYS", "DECISION_LABELS", "scope_rows", "decision_marks", "parse_sign_off", "merge_sign_off"]

#: Keys ``--sign-off`` accepts, each with the most characters it may hold (the schema's caps).
SIGN_OFF_KEYS = {"reviewer": 200, "role": 200, "date": 10, "decision": 40, "conditions": 2000}

#: How each decision reads on paper.
DECISION_LABELS = {"approve": "approve", "reject": "reject", "approve_with_conditions": "approve with conditions"}


def _identity(mapping: dict) -> str:
    parts = [str(mapping.get("name", "?"))]
    if mapping.get("source"):
        parts.append(S.display_source(mapping["source"]))
    if mapping.get("sha256"):
        parts.append(f"sha256 {str(mapping['sha256'])[:16]}…")
    return "; ".join(parts)


def scope_rows(report: AuditReport) -> list[tuple[str, str]]:
    """(label, value) rows naming what a signature covers: run, model, data, claim, audit result, verdict."""
    p, run, summary = report.privacy, report.run, S.summarize(report)
    claim = S.target_label(report)
    if claim == "ε = ∞":
        claim = "not private (ε = ∞)"
    elif claim.startswith("ε = "):
        note = S.claim_note(report) or ("from dpaudit's accountant" if p.claim_source == "accountant" else "")
        claim = f"({claim}, δ = {p.delta:.1e})-differential privacy" + (f", {note}" if note else "")
    model = _identity(run.model)
    target = S.target_row(report)
    if target is not None:
        model += f" (under audit: {target[1].split(';')[0]})"
    return [("run", run.run_id), ("model", model), ("data", _identity(run.dataset)), ("claim", claim),
            ("audit result", summary.empirical.removeprefix("Empirical ε lower bound: ")),
            ("verdict", summary.verdict)]


def decision_marks(sign_off: SignOff | None) -> list[tuple[str, bool]]:
    """Each decision's label with whether it is ticked (all unticked: to be ticked by hand)."""
    chosen = None if sign_off is None else sign_off.decision
    return [(DECISION_LABELS[d], d == chosen) for d in SIGN_OFF_DECISIONS]


def _decision(value: str) -> str:
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in SIGN_OFF_DECISIONS:
        raise ConfigError(f"--sign-off decision must be one of approve, reject, approve-with-conditions, "
                          f"got decision={clean_text(value, max_len=60)!r}.")
    return key


def _date(value: str) -> str:
    text = value.strip()
    if text.lower() == "today":
        return datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ConfigError(f"--sign-off date must be YYYY-MM-DD or 'today', got date={clean_text(text, max_len=60)!r}."
                          ) from None


def parse_sign_off(pairs: list[str]) -> dict[str, str]:
    """``["reviewer=Ada Lovelace", "decision=approve"]`` → ``{"reviewer": "Ada Lovelace", "decision": "approve"}``.

    Values are collapsed onto one line (runs of whitespace become one space); a value holding a control,
    bidi or line-separator character, an unknown key, a repeated key or a value over its cap
    (:data:`SIGN_OFF_KEYS`) is refused.

    Raises:
        ConfigError: one line naming the bad pair and the fix.
    """
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower()
        if not sep or key not in SIGN_OFF_KEYS:
            raise ConfigError(f"--sign-off takes KEY=VALUE with KEY one of {', '.join(SIGN_OFF_KEYS)}, got "
                              f"{clean_text(pair, max_len=80)!r}.")
        if key in fields:
            raise ConfigError(f"--sign-off {key} given twice; give each key once.")
        if clean_text(value, max_len=None) != value.replace("\t", " "):
            raise ConfigError(f"--sign-off {key} holds a control, bidi or line-break character; give it as "
                              "one plain line.")
        value = " ".join(value.split())
        if not value:
            raise ConfigError(f"--sign-off {key} is empty; leave it out to fill it in by hand.")
        if len(value) > SIGN_OFF_KEYS[key]:
            raise ConfigError(f"--sign-off {key} has {len(value)} characters (at most {SIGN_OFF_KEYS[key]}).")
        fields[key] = _decision(value) if key == "decision" else _date(value) if key == "date" else value
    return fields


def merge_sign_off(existing: SignOff | None, fields: dict[str, str]) -> SignOff:
    """``existing`` with ``fields`` written over it; a decision given without a date is dated today (UTC)."""
    merged = {**(existing.to_dict() if existing is not None else {}), **fields}
    if "decision" in fields and "date" not in fields:
        merged["date"] = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    if merged.get("conditions") and merged.get("decision") not in (None, "approve_with_conditions"):
        raise ConfigError("--sign-off conditions go with decision=approve-with-conditions; change the decision or "
                          "leave the conditions out.")
    return SignOff.from_dict(merged)
