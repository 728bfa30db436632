from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

import pytest

from dpaudit.errors import ConfigError
from dpaudit.report_io import validate_report
from dpaudit.report_schema import Check
from dpaudit.reports.html import render_html
from dpaudit.reports.markdown import escape_md, render_markdown
from dpaudit.reports.pdf import find_chromium, write_pdf
from tests.reports import sample

EVIL = '<script>alert("x")</script>'
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="needs chromium (apt-get install -y chromium)")


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
    assert not re.search(r"(?<!\\)<[A-Za-z/!?]", md), "an unescaped tag opener"
    assert "\\<script>" in md and "\\<img src=x" in md
    assert "## Privacy audit" in md and "| lira_online |" in md


def test_markdown_reads_clean_raw():
    """No HTML entity and no backslash before text that needs none (issue 24: ``\\``` and ``&#x27;`` raw)."""
    md = render_markdown(sample.make_report(model_name="o'brien-minilm", family=True))
    assert not re.search(r"&(#x?[0-9a-f]+|[a-z]+);", md, re.IGNORECASE), md
    assert "\\`" not in md and "\\_" not in md and "\\-" not in md
    assert "o'brien-minilm" in md and "(run dpaudit gate with a policy)" in md


@pytest.mark.parametrize(("raw", "expected"), [
    ("a|b", "a\\|b"), ("[x](http://e)", "\\[x\\](http://e)"), ("`code`", "\\`code\\`"),
    ("<b>&", "\\<b>&"), ("&amp; & &#39;", "\\&amp; & \\&#39;"), ("two\nlines", "two lines"),
    ("*bold*_u_", "\\*bold\\*\\_u\\_"), ("$x$", "\\$x\\$"), ("lira_online", "lira_online"),
    ("don't < 55%", "don't < 55%"), ("__init__", "\\_\\_init\\_\\_"), ("a\\b", "a\\\\b"),
])
def test_escape_md(raw, expected):
    assert escape_md(raw) == expected


HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[click](http://evil)", "![i](x)",
           "`code` **b** _u_ ~~s~~ $m$", "a | b", "&amp; &#x27; &lt;", "<http://evil>", "<!-- c -->", "__init__",
           "x\\*y", "o'brien-minilm"]


@pytest.mark.parametrize("raw", HOSTILE)
def test_escaped_markdown_renders_as_the_literal_text(raw):
    """A CommonMark renderer shows escape_md(raw) as exactly ``raw``: no tag, link, code or emphasis."""
    markdown_it = pytest.importorskip("markdown_it")
    import html as html_lib

    md = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])  # HTML passed through
    rendered = md.render(f"text {escape_md(raw)} end").strip()
    assert rendered.startswith("<p>") and rendered.endswith("</p>") and rendered.count("<") == 2, rendered
    assert html_lib.unescape(rendered[3:-4]) == f"text {raw} end"


@needs_chromium
def test_pdf_is_written(tmp_path, evil_report):
    path = write_pdf(evil_report, tmp_path / "report.pdf")
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "Claimed guarantee" in text and "lira_online" in text


def test_pdf_without_chromium_is_one_line_naming_the_package(tmp_path, monkeypatch, evil_report):
    monkeypatch.setenv("DPAUDIT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(ConfigError, match=r"install the Debian package `chromium`") as info:
        write_pdf(evil_report, tmp_path / "report.pdf")
    assert "\n" not in str(info.value) and not (tmp_path / "report.pdf").exists()


def test_one_confidence_is_stated_and_explained():
    """The headline's 95% is family-wise; the rows say † and one footnote explains the 99% share."""
    html = render_html(sample.make_report(family=True, canaries=False), dpi=20)
    assert "ε ≥ 0.41 with 95% confidence, family-wise" in html
    assert "conf.)" not in html and "(99% confidence)" not in html
    rows = html[html.index('id="attacks"'):html.index('id="bound-note"')]
    assert rows.count("†") == 4 and "confidence" not in rows
    note = html[html.index('id="bound-note"'):]
    assert "computed at 99% confidence on its own" in note and "5 bounds × 1% chance of error each" in note
    report = sample.make_report(canaries=False)  # an older report, without family fields: each row states its own confidence
    strip = lambda b: {k: v for k, v in b.items() if k not in ("family_size", "family_significance")}  # noqa: E731
    report = dataclasses.replace(report, canary=strip(report.canary), attacks=tuple(
        dataclasses.replace(a, epsilon_lb=strip(a.epsilon_lb)) for a in report.attacks))
    old = render_html(report, dpi=20)
    assert 'id="bound-note"' not in old and "(99% confidence)" in old


def test_counts_and_times_read_as_english():
    report = sample.make_report()
    one = dataclasses.replace(report, privacy=dataclasses.replace(report.privacy, steps=1),
                              utility=dataclasses.replace(report.utility, n_eval=1))
    html = render_html(one, dpi=20)
    assert "after 1 optimizer step " in html and "on 1 example " in html
    assert "1 optimizer steps" not in html and "1 examples" not in html
    assert "train=4 min 8 s" in html and "247.98" not in html


@pytest.mark.parametrize("kind", ["plain", "no_reference_line", "non_private", "with_reference"])
def test_captions_describe_only_what_is_drawn(kind):
    """Issue 24: the privacy–utility caption described a dashed line that was not drawn."""
    from dpaudit.reports import figures as F
    from tests.reports.test_reference_report import with_reference

    report = sample.make_report(non_private=kind == "non_private")
    if kind == "no_reference_line":
        report = dataclasses.replace(report, utility=dataclasses.replace(report.utility, non_private_reference=None))
    if kind == "with_reference":
        report = with_reference(report)
    for key, fig in F.all_figures(report).items():
        _, text = F.caption(key, fig, report)
        dashed = any(line.get_linestyle() == "--" for ax in fig.axes for line in ax.get_lines())
        assert ("dashed" in text) == dashed, (key, text)
        if key == "roc":
            ceiling = any(line.get_label().startswith("DP ceiling") for line in fig.axes[0].get_lines())
            assert ("black curve" in text) == ceiling, text
        if key == "privacy_utility":
            square = report.reference is not None and report.privacy.epsilon is not None
            assert ("black square" in text) == square, text


@pytest.mark.parametrize("module", ["dpaudit.reports.figures", "dpaudit.reports.summary", "dpaudit.reports.html", "dpaudit.reports.markdown",
                                    "dpaudit.reports.pdf", "dpaudit.reports.signoff", "dpaudit.reports.policy", "dpaudit.reports.gate"])
def test_all_names_exist(module):
    import importlib

    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
