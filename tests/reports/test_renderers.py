from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

import pytest

from dpaudit.report_io import validate_report
from dpaudit.report_schema import Check
from dpaudit.reports.html import render_html
from dpaudit.reports.markdown import escape_md, render_markdown
from dpaudit.reports.pdf import write_pdf
from tests.reports import sample

EVIL = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def evil_report():
    report = sample.make_report(dataset_name=EVIL, model_name=f"{EVIL}&<img src=x onerror=alert(1)>")
    validate_report(report.to_dict())
    return report


@pytest.fixture(scope="module")
def evil_html(evil_report):
    return render_html(evil_report, dpi=30)


@pytest.fixture(scope="module")
def sample_html():
    return render_html(sample.make_report(), dpi=30)


def test_html_escapes_user_strings(evil_html):
    html = evil_html
    assert "<script" not in html.lower()
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_html_first_screen_says_it_in_plain_words(sample_html):
    html = sample_html
    summary = html[html.index('id="summary"'):html.index("<h2>Attacks")]
    assert "(ε = 3.39, δ = 1.0e-05)" in summary
    assert "Strongest attack: lira_online" in summary
    assert "AUC 0.570" in summary and "at 1% FPR" in summary
    assert "ε ≥ 0.41 with 95% confidence" in summary
    assert "Protection level: strong" in summary
    assert "Verdict:" in summary


def test_html_is_self_contained(sample_html):
    html = sample_html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<script" not in html and "@import" not in html
    assert html.count('src="data:image/png;base64,') == 4
    assert 'id="fig-roc"' in html


def test_html_non_private_and_checks():
    report = sample.make_report(non_private=True)
    check = Check(name="allow_non_private", value=None, threshold="false", status="fail",
                  message="not private <b>")
    report = dataclasses.replace(report, verdict=dataclasses.replace(
        report.verdict, policy="prod", passed=False, checks=(check,)))
    validate_report(report.to_dict())
    html = render_html(report, dpi=30)
    assert "Not private: ε = ∞" in html
    assert "FAILED against policy “prod”" in html
    assert "not private &lt;b&gt;" in html


def test_markdown_escapes_user_strings(evil_report):
    md = render_markdown(evil_report)
    assert "<script" not in md.lower() and "<img" not in md
    assert "&lt;script&gt;" in md
    assert "## Privacy audit" in md and "| lira\\_online |" in md


@pytest.mark.parametrize(("raw", "expected"), [
    ("a|b", "a\\|b"), ("[x](http://e)", "\\[x\\](http://e)"), ("`code`", "\\`code\\`"),
    ("<b>&", "&lt;b&gt;&amp;"), ("two\nlines", "two lines"), ("*bold*_u_", "\\*bold\\*\\_u\\_"), ("$x$", "\\$x\\$"),
])
def test_escape_md(raw, expected):
    assert escape_md(raw) == expected


def test_pdf_is_written(tmp_path, evil_report):
    path = write_pdf(evil_report, tmp_path / "report.pdf")
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "Claimed guarantee" in text and "lira_online" in text


@pytest.mark.parametrize("module", ["dpaudit.reports.figures", "dpaudit.reports.summary", "dpaudit.reports.html", "dpaudit.reports.markdown",
                                    "dpaudit.reports.pdf", "dpaudit.reports.policy", "dpaudit.reports.gate"])
def test_all_names_exist(module):
    import importlib

    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
