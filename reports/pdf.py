"""PDF report for sign-off: a text summary page, the tables, then every figure.

Built with matplotlib's ``PdfPages`` backend. Why this and not fpdf2/reportlab/WeasyPrint:
matplotlib is already a dependency, its PDF backend is pure Python (no cairo, pango or other
system libraries), it embeds the DejaVu fonts it ships (which cover ε, δ, ≥, ∞), and the figures
go in as vectors, identical to the HTML ones. Text pages are laid out with ``Figure.text`` and
``textwrap``, which is plain but dependable on a fresh machine.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from dpaudit.fileio import refuse_symlink, write_bytes_atomic
from dpaudit.report_schema import AuditReport
from dpaudit.sanitize import clean_text
from dpaudit.reports import figures as F
from dpaudit.reports import summary as S

__all__ = ["write_pdf"]

_A4 = (8.27, 11.69)  # inches
_WRAP = 88  # characters per line at 9.5 pt on A4 with 0.7 in margins


class _TextPage:
    """Appends wrapped lines top-down onto A4 figures, starting a new page when full."""

    def __init__(self, pdf: PdfPages) -> None:
        self.pdf = pdf
        self.fig: Figure | None = None
        self.y = 0.0

    def _ensure(self, height: float) -> Figure:
        if self.fig is None or self.y - height < 0.06:
            self.flush()
            self.fig = Figure(figsize=_A4)
            self.y = 0.95
        return self.fig

    def line(self, text: str, *, size: float = 9.5, weight: str = "normal", color: str = "black",
             gap: float = 0.0, wrap: int = _WRAP, indent: str = "") -> None:
        text = clean_text(text, max_len=None)  # no control character or bidi override on the page
        for i, part in enumerate(textwrap.wrap(text, wrap, subsequent_indent=indent) or [""]):
            step = size / 72 / _A4[1] * 1.45
            fig = self._ensure(step)
            fig.text(0.085, self.y, part, fontsize=size, fontweight=weight, color=color,
                     va="top", ha="left", family="DejaVu Sans",
                     parse_math=False)  # a "$" in a user-supplied name must stay literal
            self.y -= step
        self.y -= gap

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            self.fig = None


def _rows(page: _TextPage, title: str, rows: list[tuple[str, str]]) -> None:
    page.line(title, size=12, weight="bold", gap=0.004)
    for label, value in rows:
        page.line(f"{label}: {value}", indent="    ")
    page.line("", gap=0.006)


def write_pdf(report: AuditReport, path: str | Path) -> Path:
    """Write the sign-off PDF for ``report`` to ``path`` (atomically, never through a link); returns the path."""
    path = Path(path)
    refuse_symlink(path)
    buf = io.BytesIO()
    s = S.summarize(report)
    verdict_color = {"pass": "#1a7f37", "fail": "#cf222e", "inconclusive": "#9a6700"}.get(
        s.verdict_status, "#57606a")
    with PdfPages(buf, metadata={"Title": clean_text(s.title, max_len=200), "Creator": "dpaudit"}) as pdf:
        page = _TextPage(pdf)
        page.line(s.title, size=16, weight="bold", wrap=52, gap=0.004)
        page.line(f"Run {report.run.run_id} · created {report.run.created} · dpaudit "
                  f"{report.run.dpaudit_version}", size=8.5, color="#57606a", gap=0.014)
        page.line(s.confidential, size=11, weight="bold", color="#cf222e", gap=0.008)
        if s.noise_warning:
            page.line(s.noise_warning, size=11, weight="bold", color="#cf222e", gap=0.008)
        if s.recipe_warning:
            page.line(s.recipe_warning, size=10, color="#cf222e", gap=0.008)
        page.line(s.claim, weight="bold", gap=0.008)
        page.line(s.utility, gap=0.008)
        if s.reference:
            page.line(s.reference, weight="bold", gap=0.008)
            for row in S.comparison_rows(report):
                cells = dict(zip(S.COMPARISON_COLUMNS, row))
                page.line(cells.pop("model"), weight="bold")
                page.line("; ".join(f"{k}: {v}" for k, v in cells.items()), indent="    ", gap=0.004)
            page.line("", gap=0.006)
        page.line(f"{s.strongest} {s.headline_metrics}", gap=0.008)
        page.line(s.protection, gap=0.008)
        page.line(s.empirical, gap=0.008)
        page.line(f"Verdict: {s.verdict}", size=11, weight="bold", color=verdict_color, wrap=80,
                  gap=0.02)
        page.line("Attacks", size=12, weight="bold", gap=0.004)
        for row in S.attack_rows(report):
            cells = dict(zip(S.ATTACK_COLUMNS, row))
            page.line(cells.pop("attack"), weight="bold")
            page.line("; ".join(f"{k}: {v}" for k, v in cells.items()), indent="    ", gap=0.004)
        page.line("", gap=0.006)
        if report.verdict.checks:
            _rows(page, f"Policy checks ({report.verdict.policy or 'policy'})",
                  [(c.name, f"{c.status.upper()} — {c.message}") for c in report.verdict.checks])
        _rows(page, "Privacy", S.privacy_rows(report))
        if report.mechanism_check is not None:
            _rows(page, "Implementation check", S.mechanism_rows(report))
        _rows(page, "Utility", S.utility_rows(report))
        _rows(page, "Run provenance", S.provenance_rows(report))
        page.flush()
        for fig in F.all_figures(report).values():
            pdf.savefig(fig)
    return write_bytes_atomic(path, buf.getvalue(), private=True)
