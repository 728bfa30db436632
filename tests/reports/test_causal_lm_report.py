"""The optional ``causal_lm`` section of audit.json: it round-trips, the schema refuses a malformed one, and the
markdown report shows the exposure table and the generations."""

from __future__ import annotations

import dataclasses
import re

import pytest

from dpaudit.errors import DataError
from dpaudit.report_io import dump_report, load_report, validate_report
from dpaudit.report_schema import AuditReport
from dpaudit.reports.markdown import render_markdown

from tests.reports.sample import make_report

SECTION = {"attacks": ["lm_loss", "min_k_pp"], "loss": "mean next-token NLL per text (nats)",
           "exposure": {"space_bits": 19.93, "n_candidates": 200, "resolution_bits": 7.64,
                        "included": {"n": 10, "mean": 3.5, "max": 7.6}, "excluded": {"n": 10, "mean": 1.0, "max": 2.0}},
           "generations": {"prompts": ["The movie"], "before": [" is"], "after": [" was great"]}}


def test_causal_lm_section_round_trips_and_renders(tmp_path):
    report = dataclasses.replace(make_report(), causal_lm=SECTION)
    path = dump_report(report, tmp_path / "audit.json")
    again = load_report(path)
    assert again.causal_lm == SECTION and isinstance(again, AuditReport)
    md = render_markdown(again)
    assert "Secret Sharer exposure" in md and "was great" in md
    assert "Causal language model" not in render_markdown(make_report())  # absent: no section


@pytest.mark.parametrize("bad", [
    {**SECTION, "exposure": {**SECTION["exposure"], "included": {"n": 1}}},
    {**SECTION, "secret": "123456"},
    {k: v for k, v in SECTION.items() if k != "attacks"},
])
def test_a_malformed_causal_lm_section_is_refused(bad):
    data = make_report().to_dict()
    data["causal_lm"] = bad
    with pytest.raises(DataError):
        validate_report(data)


HOSTILE = {"prompts": ["The movie", "I think that", "the secret number is "],
           "before": ["<script>alert('x')</script>", "", "</td></tr></table><h1>forged</h1>"],
           "after": ["<img src=x onerror=alert(1)>", " a & b \u202e\u0007", "{{ 7*7 }} ![a](http://evil/x.png)"]}


def _lm_report(**kw):
    from tests.reports.lm_sample import make_lm_report

    report = make_lm_report(**kw)
    validate_report(report.to_dict())
    return report


@pytest.fixture
def no_figures(monkeypatch):
    """Figures are not under test here (tests/reports/test_figures.py); skipping them saves seconds."""
    from dpaudit.reports import figures

    monkeypatch.setattr(figures, "all_figures", lambda report: {})


def test_html_report_shows_the_causal_lm_section_escaped(no_figures):
    from dpaudit.reports.html import render_html

    html = render_html(_lm_report(generations=HOSTILE))
    section = html[html.index('<h2 id="causal-lm">'):html.index('<h2>Run provenance</h2>')]
    for table in ('id="lm-canaries"', 'id="lm-exposure"', 'id="lm-generations"'):
        assert table in section
    assert "one-run ε lower bound" in section and "cap (every guess right)" in section and "Secret Sharer" in section
    # every generation is inert text: no tag, no entity, no control or bidi character survives
    assert "<script" not in html and "<img src=x" not in html and "<h1>forged" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in section and "&lt;img src=x onerror" in section
    assert "a &amp; b" in section and "\u202e" not in html and "\u0007" not in html
    assert "{{ 7*7 }}" in section  # no template evaluation of model output
    assert "(nothing generated)" in section
    # the LM attacks' AUC and TPR at low FPR are in the attack table
    attacks = html[html.index('<table id="attacks">'):]
    assert all(f'<span class="name">{n}</span>' in attacks for n in ("lm_loss", "min_k_pp", "ref_ratio"))
    assert "1.30% @ 0.01" in attacks


def test_html_without_a_causal_lm_section_shows_none(no_figures):
    from dpaudit.reports.html import render_html

    assert 'id="causal-lm"' not in render_html(make_report())


def test_markdown_escapes_hostile_generations():
    md = render_markdown(_lm_report(generations=HOSTILE))
    assert re.search(r"(?<!\\)<[A-Za-z/!?]", md) is None  # every "<" that could open a tag is escaped
    assert "\\<script>" in md and "\\[a\\](http" in md and "\u202e" not in md and "\u0007" not in md
