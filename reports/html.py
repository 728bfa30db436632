"""Self-contained HTML report: one file, CSS and figures inline, no scripts, no external fetches.

Rendered with jinja2 with autoescaping on, so every user-controlled string (dataset and model
names, attack reasons, policy names, config values) comes out inert, and every value printed goes
through :func:`dpaudit.sanitize.clean_text` (the environment's ``finalize``), so no control
character, bidi override or line separator reaches the file. Figures are base64 PNG ``data:``
URIs, so nothing is inserted with ``|safe``. Absolute paths in the config are shown as basenames.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from dpaudit.fileio import write_text_atomic
from dpaudit.report_schema import AuditReport, SignOff
from dpaudit.sanitize import clean_text
from dpaudit.reports import figures as F
from dpaudit.reports import lm_rows as L
from dpaudit.reports import signoff as O
from dpaudit.reports import summary as S

__all__ = ["render_html", "write_html"]

def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("dpaudit.reports", "templates"),
        autoescape=True,  # every template here is HTML; never rely on extension sniffing
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        finalize=_finalize,
    )


def _finalize(value: object) -> object:
    """Clean every string a template prints (no length cap: the schema bounds each field)."""
    return clean_text(value, max_len=None) if isinstance(value, str) else value


def render_html(report: AuditReport, *, dpi: int = 110, canary_images: list[dict] | None = None) -> str:
    """Render ``report`` as a standalone HTML document (a ``str``); figures as PNG at ``dpi``;
    ``canary_images``: validated rows of :func:`dpaudit.reports.canary_images.load_canary_images` (image audits)."""
    figs = []
    for key, fig in F.all_figures(report).items():
        alt, caption = F.caption(key, fig, report)
        figs.append({"key": key, "alt": alt, "caption": caption, "png": F.to_png_base64(fig, dpi=dpi)})
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report, run=report.run, s=S.summarize(report), figures=figs, canary_images=canary_images or [],
        attack_columns=S.ATTACK_COLUMNS, attack_rows=S.attack_rows(report),
        comparison_columns=S.COMPARISON_COLUMNS, comparison_rows=S.comparison_rows(report),
        reference_note=S.reference_note(report),
        privacy_rows=S.privacy_rows(report), utility_rows=S.utility_rows(report),
        mechanism_rows=S.mechanism_rows(report),
        causal_lm=L.has_causal_lm(report), lm_bound_rows=L.canary_bound_rows(report),
        exposure_caption=L.exposure_caption(report), exposure_columns=L.EXPOSURE_COLUMNS,
        exposure_rows=L.exposure_rows(report), generation_columns=L.GENERATION_COLUMNS,
        generation_rows=L.generation_rows(report),
        provenance_rows=S.provenance_rows(report), bound_note=S.bound_note(report),
        sign_off=report.sign_off or SignOff(), sign_off_scope=O.scope_rows(report),
        decision_marks=O.decision_marks(report.sign_off),
        config_lines=json.dumps(S.redact_paths(report.run.config), indent=2, sort_keys=True,
                                ensure_ascii=False).splitlines(),
    )


def write_html(report: AuditReport, path: str | Path) -> Path:
    """Write :func:`render_html` output to ``path`` (UTF-8, atomically, never through a link); returns the path.
    The canary pictures of an image audit (``canary_images.json`` beside ``path``) are shown when present."""
    from dpaudit.reports.canary_images import load_canary_images

    return write_text_atomic(Path(path), render_html(report, canary_images=load_canary_images(Path(path))),
                             private=True)
