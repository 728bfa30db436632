"""Markdown summary for a pull-request comment (GitHub-flavoured: tables, no raw HTML).

Every string taken from the report is escaped twice over: HTML special characters become entities
(so a name like ``<script>`` is inert even where the Markdown renderer passes HTML through) and
Markdown punctuation is backslash-escaped (so a name cannot open a link, code span or table cell).
Control characters, bidi overrides and line separators are escaped by
:func:`dpaudit.sanitize.clean_text` (the file may be ``cat``-ed in a terminal).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from dpaudit.fileio import write_text_atomic
from dpaudit.report_schema import AuditReport
from dpaudit.sanitize import clean_text
from dpaudit.reports import summary as S

__all__ = ["escape_md", "render_markdown", "write_markdown"]

# Only characters that can start inline markup mid-line; "<"/">"/"&" are already entities, and no
# escaped value starts a line ("#", "+", "-" and ">" only matter there).
# "$" too: GitHub renders $...$ as math in comments.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|~$])")
_BADGES = {"pass": "✅ PASSED", "fail": "❌ FAILED", "inconclusive": "⚠️ INCONCLUSIVE",
           "none": "ℹ️ NO POLICY"}


def escape_md(text: object) -> str:
    """Return ``text`` safe to place in Markdown prose or a table cell, on one line.

    HTML specials (``& < > " '``) become entities first; then Markdown punctuation is
    backslash-escaped. Newlines become spaces so a value cannot break a table row.
    """
    escaped = html.escape(clean_text(" ".join(str(text).split()), max_len=None), quote=True)
    return _MD_SPECIAL.sub(r"\\\1", escaped)


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
    lines += [f"- {escape_md(s.claim)}",
              f"- {escape_md(s.utility)}",
              *([f"- **{escape_md(s.reference)}**"] if s.reference else []),
              f"- {escape_md(s.strongest)} {escape_md(s.headline_metrics)}",
              f"- {escape_md(s.protection)}",
              f"- {escape_md(s.empirical)}", ""]
    if s.reference:
        lines += ["### Without DP vs with DP", ""]
        lines += _table(S.COMPARISON_COLUMNS, S.comparison_rows(report))
        lines += ["", "The non-private reference (same population, membership, backbone and recipe, no clipping "
                      "or noise) is context, never gated.", ""]
    lines += ["### Attacks", ""]
    lines += _table(S.ATTACK_COLUMNS, S.attack_rows(report))
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
    u = report.utility
    lines += ["", f"Utility: {escape_md(u.metric)} {S.fmt(u.value)} on {u.n_eval} examples "
                  f"(majority-class baseline {S.fmt(u.majority_baseline)}, "
                  f"non-private reference {S.fmt(u.non_private_reference)}). "
                  f"Run {escape_md(report.run.run_id)}, dpaudit {escape_md(report.run.dpaudit_version)}."]
    return "\n".join(lines) + "\n"


def write_markdown(report: AuditReport, path: str | Path) -> Path:
    """Write :func:`render_markdown` output to ``path`` (atomically, never through a link); returns the path."""
    return write_text_atomic(Path(path), render_markdown(report), private=True)
