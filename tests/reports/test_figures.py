from __future__ import annotations

import base64
import dataclasses
import math

import numpy as np
import pytest

from dpaudit.report_schema import ProfileCurve, RocCurve, ScoreHistogram
from dpaudit.reports import figures as F
from tests.reports import sample

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_ceiling_matches_pure_dp_closed_form(report):
    # A single (ε, 0) point: TPR ≤ min{1, e^ε·FPR, 1 − e^{−ε}(1 − FPR)} (Kairouz et al. Thm 2.1).
    eps = 1.0
    privacy = dataclasses.replace(report.privacy, profile=ProfileCurve(epsilons=(eps,), deltas=(0.0,)))
    fpr = np.array([0.0, 1e-3, 0.1, 0.3, 0.5, 1.0])
    expected = np.minimum(1.0, np.minimum(math.exp(eps) * fpr, 1 - math.exp(-eps) * (1 - fpr)))
    np.testing.assert_allclose(F.ceiling_curve(privacy, fpr), expected, rtol=1e-12, atol=1e-15)


def test_ceiling_is_above_the_sample_attacks(report):
    for attack in report.attacks:
        fpr = np.array(attack.roc.fpr)
        ceiling = F.ceiling_curve(report.privacy, fpr)
        assert np.all(ceiling >= fpr - 1e-12)
        assert np.all(ceiling <= 1.0)


def test_all_figures_render_png(report):
    figures = F.all_figures(report)  # rendering at low dpi: content is checked elsewhere
    assert list(figures) == ["roc", "histograms", "epsilon_history", "privacy_utility"]
    for fig in figures.values():
        assert base64.b64decode(F.to_png_base64(fig, dpi=40)).startswith(PNG_MAGIC)


def test_roc_draws_every_attack_and_the_ceiling(report):
    labels = [line.get_label() for line in F.roc_figure(report).axes[0].get_lines()]
    assert any(label.startswith("DP ceiling") for label in labels)
    for attack in report.attacks:
        assert any(label.startswith(attack.name) for label in labels)


def test_non_private_and_inconclusive_attack_render():
    report = sample.make_report(non_private=True)
    broken = dataclasses.replace(report.attacks[0], status="inconclusive", reason="one-class labels",
                                 auc=None, balanced_accuracy=None, roc=RocCurve((), ()),
                                 histogram=ScoreHistogram((), (), ()))
    report = dataclasses.replace(report, attacks=(broken, *report.attacks[1:]))
    figures = F.all_figures(report)
    assert "epsilon_history" not in figures
    labels = [line.get_label() for line in figures["roc"].axes[0].get_lines()]
    assert not any(label.startswith("DP ceiling") for label in labels)
    for fig in figures.values():
        assert base64.b64decode(F.to_png_base64(fig, dpi=40)).startswith(PNG_MAGIC)


@pytest.mark.parametrize("name", ["$\\frac{", "a$b", "<script>"])
def test_odd_names_draw_literally(report, name):
    attack = dataclasses.replace(report.attacks[0], name=name)
    fig = F.roc_figure(dataclasses.replace(report, attacks=(attack,)))
    F.to_png_base64(fig, dpi=30)  # mathtext would raise on an unbalanced "$"
