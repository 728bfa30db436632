"""Markdown summary for a pull-request comment (GitHub-flavoured: tables, no raw HTML).

The file reads clean both raw and rendered: no HTML entities, and a backslash only where Markdown
would otherwise act on a character. Every string taken from the report goes through
:func:`escape_md`, which backslash-escapes exactly what could start markup mid-line — ``<`` (so
``<script>`` or ``<img ...>`` stays text even where a renderer passes HTML through, and no autolink
opens), an ``&`` that would start an entity, code spans, emphasis, links, table cells, strikethrough
and ``$`` math — and leaves everything else as typed (``lira_online``, ``don't``). Control characters,
bidi overrides and line separators are escaped by :func:`dpaudit.sanitize.clean_text` (the file may be
``cat``-ed in a terminal).
"""

from __future__ import annotations

import re
from pathlib import Path

from dpaudit.fileio import write_text_atomic
from dpaudit.report_schema import AuditReport
from dpaudit.sanitize import clean_text
from dpaudit.reports import lm_rows as L
from dpaudit.reports import signoff as O
from dpaudit.reports import summary as S

__all__ = ["escape_md", "render_markdown", "write_markdown"]

# What can start inline markup mid-line in GitHub-flavoured Markdown (no escaped value starts a line, so
# "#", "+", "-" and ">" never matter): "\\" itself, code spans, "*" emphasis, "[" "]" links and images,
# "|" table cells, "~" strikethrough, "$" math (GitHub renders $...$ in comments), "<" where it could
# open raw HTML, a comment or an autolink (before a letter, "/", "!" or "?"); "_" only at a word's edge
# (GFM never treats an intraword "_" as emphasis); "&" only where it would start a character reference.
_MD_SPECIAL = re.compile(r"[\\`*\[\]|~$]|<(?=[A-Za-z/!?])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|&(?=#?[A-Za-z0-9]+;)")
_BADGES = {"pass": "✅ PASSED", "fail": "❌ FAILED", "inconclusive": "⚠️ INCONCLUSIVE",
           "none": "ℹ️ NO POLICY"}


def escape_md(text: object) -> str:
    """Return ``text`` safe to place in Markdown prose or a table cell, on one line.

    Markdown punctuation that could open markup is backslash-escaped (see :data:`_MD_SPECIAL`); nothing
    becomes an HTML entity. Newlines become spaces so a value cannot break a table row.
    """
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), clean_text(" ".join(str(text).split()), max_len=None))


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(escape_md(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(escape_md(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: AuditReport) -> str:
    """Render the PR-comment summary of ``report`` (a ``str`` ending in a newline)."""
    s = S.summarize(report)
    lines = [f"## {escape_md(s.title)}", "", f"**{escape_md(s.confidential)}**", "",
             f"**Verdict: {_BADGES[s.verdict_status]}** — {escape_md(s.verdict)}", ""]
    if s.noise_warning:
        lines += [f"> ⚠️ **{escape_md(s.noise_warning)}**", ""]
    if s.recipe_warning:
        lines += [f"> ⚠️ {escape_md(s.recipe_warning)}", ""]
    if s.power:
        lines += [f"> ⚠️ {escape_md(s.power)}", ""]
    lines += [f"- {escape_md(s.claim)}",
              f"- {escape_md(s.utility)}",
              *([f"- **{escape_md(s.canaries)}**"] if s.canaries else []),
              *([f"- **{escape_md(s.reference)}**"] if s.reference else []),
              f"- {escape_md(s.strongest)} {escape_md(s.headline_metrics)}",
              f"- {escape_md(s.protection)}",
              f"- {escape_md(s.empirical)}", ""]
    if s.reference:
        lines += ["### Without DP vs with DP", ""]
        lines += _table(S.COMPARISON_COLUMNS, S.comparison_rows(report))
        lines += ["", escape_md(S.reference_note(report)), ""]
    lines += ["### Attacks", ""]
    lines += _table(S.ATTACK_COLUMNS, S.attack_rows(report))
    note = S.bound_note(report)
    if note:
        lines += ["", escape_md(note)]
    checks = report.verdict.checks
    if checks:
        lines += ["", "### Policy checks", ""]
        lines += _table(("check", "status", "value", "threshold", "message"),
                        [(c.name, c.status, S.fmt(c.value, 4),
                          "n/a" if c.threshold is None else str(c.threshold), c.message)
                         for c in checks])
    mechanism = S.mechanism_rows(report)
    if mechanism:
        lines += ["", "### Implementation check", ""]
        lines += _table(("", ""), mechanism)
    lines += _causal_lm_lines(report)
    lines += _sign_off_lines(report)
    u = report.utility
    lines += ["", f"Utility: {escape_md(u.metric)} {S.fmt(u.value)} on {S.plural(u.n_eval, 'example')} "
                  f"(majority-class baseline {S.fmt(u.majority_baseline)}, "
                  f"non-private reference {S.fmt(u.non_private_reference)}). "
                  f"Run {escape_md(report.run.run_id)}, dpaudit {escape_md(report.run.dpaudit_version)}."]
    return "\n".join(lines) + "\n"


def _causal_lm_lines(report: AuditReport) -> list[str]:
    """Causal LM audits: the secret canaries' bound, their exposure and the before/after generations
    (docs/causal-lm.md; rows from :mod:`reports.lm_rows`, every cell escaped: generations are model output)."""
    if not L.has_causal_lm(report):
        return []
    lines = ["", "### Causal language model", ""]
    bound = L.canary_bound_rows(report)
    if bound:
        lines += _table(("", ""), bound) + [""]
    caption = L.exposure_caption(report)
    if caption:
        lines += [escape_md(caption), ""]
        lines += _table(L.EXPOSURE_COLUMNS, L.exposure_rows(report)) + [""]
    generations = L.generation_rows(report)
    if generations:
        lines += _table(L.GENERATION_COLUMNS, generations)
    return lines


def _sign_off_lines(report: AuditReport) -> list[str]:
    """The recorded sign-off (reviewer, role, date, decision), or nothing: paper sign-off is in the HTML/PDF."""
    so = report.sign_off
    if so is None or not any(so.to_dict().values()):
        return []
    rows = [(key, value if key != "decision" else O.DECISION_LABELS[value])
            for key, value in so.to_dict().items() if value]
    return ["", "### Sign-off", "", *_table(("", ""), rows)]


def write_markdown(report: AuditReport, path: str | Path) -> Path:
    """Write :func:`render_markdown` output to ``path`` (atomically, never through a link); returns the path."""
    return write_text_atomic(Path(path), render_markdown(report), private=True)
