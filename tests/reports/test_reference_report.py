"""The non-private reference in the report: schema, first-screen sentence, comparison table, figures."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dpaudit.errors import DataError
from dpaudit.report_io import dump_report, load_report, validate_report
from dpaudit.report_schema import AuditReport, ReferenceSection, UtilitySection
from dpaudit.reports import figures as F
from dpaudit.reports import summary as S
from dpaudit.reports.html import render_html
from dpaudit.reports.markdown import render_markdown
from dpaudit.reports.pdf import find_chromium, write_pdf
from tests.reports import sample
from tests.reports.test_browser import CHROMIUM, PROBE, _chromium, _console_errors


def with_reference(report: AuditReport, *, shift: float = 1.2, accuracy: float = 0.871) -> AuditReport:
    """``report`` with a leaky non-private reference (Gaussian attacks shifted by ``shift``)."""
    attacks = tuple(sample.gaussian_attack(a.name, a.paper, shift, seed=10 + i)
                    for i, a in enumerate(report.attacks))
    ref = ReferenceSection(kind="non_private", non_private=True, noise_multiplier=0.0, sample_rate=0.01,
                           steps=1000, utility=UtilitySection(metric="accuracy", value=accuracy, n_eval=872,
                                                              per_model=(accuracy,), majority_baseline=0.5),
                           attacks=attacks, canary=sample.empirical_epsilon(2.5, n_in=1000, n_out=1000),
                           strongest_attack=max(attacks, key=lambda a: a.balanced_accuracy).name)
    util = dataclasses.replace(report.utility, non_private_reference=accuracy, majority_baseline=0.5)
    return dataclasses.replace(report, utility=util, reference=ref)


@pytest.fixture
def ref_report() -> AuditReport:
    return with_reference(sample.make_report())


def test_reference_round_trips_through_audit_json(tmp_path, ref_report):
    dump_report(ref_report, tmp_path / "audit.json")
    loaded = load_report(tmp_path / "audit.json")
    assert loaded.reference == ref_report.reference
    assert loaded.utility.non_private_reference == loaded.reference.utility.value


def test_first_screen_compares_reference_and_target(ref_report):
    s = S.summarize(ref_report)
    assert s.reference.startswith("Without DP the same training leaks: strongest attack ")
    assert "With DP (ε = " in s.reference and "TPR " in s.reference and "ε ≥ 2.50" in s.reference
    rows = S.comparison_rows(ref_report)
    assert [r[0] for r in rows] == ["non-private reference (ε = ∞)", f"target ({S.target_label(ref_report)})"]
    assert rows[0][1] == "0.871" and rows[1][1] == "0.842"
    assert float(rows[0][4]) > float(rows[1][4])  # the reference's strongest attack is stronger
    assert S.comparison_rows(sample.make_report()) == [] and S.summarize(sample.make_report()).reference is None


def test_reference_finding_nothing_is_not_called_leaky(ref_report):
    quiet = with_reference(sample.make_report(), shift=0.0)
    quiet = dataclasses.replace(quiet, reference=dataclasses.replace(
        quiet.reference, canary=sample.empirical_epsilon(0.0),
        attacks=tuple(dataclasses.replace(a, epsilon_lb=sample.empirical_epsilon(0.0))
                      for a in quiet.reference.attacks)))
    text = S.summarize(quiet).reference
    assert "leaks" not in text and "found no leakage even without DP" in text


def test_renderers_show_both_models(tmp_path, ref_report):
    html = render_html(ref_report, dpi=40)
    assert 'id="reference-summary"' in html and 'id="comparison"' in html
    assert html.count("non-private reference (ε = ∞)") >= 1 and "Without DP the same training leaks" in html
    md = render_markdown(ref_report)
    assert "### Without DP vs with DP" in md and "non\\-private reference" not in md
    assert "| non-private reference (ε = ∞) | 0.871 | 0.500 |" in md
    if find_chromium() is not None:  # the PDF is the HTML printed by Chromium
        assert write_pdf(ref_report, tmp_path / "report.pdf").stat().st_size > 1000
    plain = render_html(sample.make_report(), dpi=40)
    assert 'id="comparison"' not in plain


def test_figures_draw_the_reference(ref_report):
    roc = F.roc_figure(ref_report)
    labels = roc.axes[0].get_legend_handles_labels()[1]
    assert any(label.startswith("non-private reference: ") for label in labels)
    dashed = [l for l in roc.axes[0].get_lines() if l.get_linestyle() == "--"]
    assert len(dashed) == 1
    pu = F.privacy_utility_figure(ref_report)
    ax = pu.axes[0]
    marker = [l for l in ax.get_lines() if l.get_marker() == "s"]
    assert len(marker) == 1 and marker[0].get_xdata()[0] == pytest.approx(ax.get_xlim()[1])
    assert marker[0].get_ydata()[0] == pytest.approx(0.871)
    assert any("ε = ∞" in label for label in ax.get_legend_handles_labels()[1])


def test_schema_rejects_a_reference_that_claims_privacy(ref_report):
    good = ref_report.to_dict()
    validate_report(good)
    for key, value in (("non_private", False), ("noise_multiplier", 1.1), ("epsilon", 1.0), ("kind", "dp")):
        bad = json.loads(json.dumps(good))
        bad["reference"][key] = value
        with pytest.raises(DataError, match=r"audit report is invalid at reference"):
            validate_report(bad)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")
def test_reference_report_renders_in_chromium(tmp_path, ref_report):
    """The comparison table is in the rendered DOM, every figure decodes, the console is clean."""
    page = tmp_path / "report.html"
    page.write_text(render_html(ref_report).replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    dom = result.stdout
    assert 'data-broken-images="0"' in dom, result.stderr[-2000:]
    assert _console_errors(result.stderr) == []
    table = dom.split('id="comparison"')[1].split("</table>")[0]
    assert table.count("<tr>") == 3 and "non-private reference (ε = ∞)" in table
    assert 'id="reference-summary"' in dom and 'id="fig-privacy_utility"' in dom
