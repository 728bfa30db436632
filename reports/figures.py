"""Report figures drawn from an :class:`~dpaudit.report_schema.AuditReport`.

Every function draws what the report stores and computes nothing new about the run. The one
formula evaluated here is the ROC ceiling implied by the stored privacy profile δ(ε) — drawing a
stored guarantee, not re-auditing — as

    TPR(FPR) ≤ min_ε min{1, e^ε·FPR + δ(ε), 1 − e^{−ε}·(1 − δ(ε) − FPR)}

(the (ε, δ)-DP hypothesis-testing region, Kairouz, Oh, Viswanath 2015, arXiv 1311.0776 v4,
Theorem 2.1, intersected over the profile grid), evaluated by
:func:`dpaudit.privacy.profile.roc_ceiling` (also exported from ``dpaudit.privacy.accounting``) so
the report and the accountant share one implementation.

Figures are bare matplotlib ``Figure`` objects, never pyplot (no global backend switch, no display;
PNG output goes through Agg); :func:`to_png_base64`
turns one into a base64 PNG for the self-contained HTML, and ``reports.pdf`` draws them as vectors.
PNG rather than inline SVG: a data-URI ``<img>`` needs no ``|safe`` in the autoescaped template,
so no user-controlled label can inject markup. Every string taken from the report is cleaned
(:func:`dpaudit.sanitize.clean_text`) and drawn with math text off (``parse_math=False``,
``usetex=False``): a ``$`` in an attack name or a metric is a dollar sign, never a mathtext
expression that fails to parse (``"$$$"``) or costs seconds to lay out.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dpaudit.report_schema import AttackResult, AuditReport, PrivacySection
from dpaudit.sanitize import clean_text

__all__ = [
    "ceiling_curve", "roc_figure", "histogram_figure",
    "epsilon_history_figure", "privacy_utility_figure", "all_figures", "to_png_base64", "caption",
]

#: Smallest FPR drawn on the log axis when an attack's ROC does not go lower.
MIN_FPR = 1e-4
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def ceiling_curve(privacy: PrivacySection, fpr: np.ndarray) -> np.ndarray:
    """The ROC ceiling at ``fpr`` for the stored profile (see the module docstring).

    Args:
        privacy: the report's privacy section; ``privacy.profile`` must not be ``None``.
        fpr: array of shape (n_points,), false-positive rates in [0, 1].

    Returns:
        Array of shape (n_points,): the largest TPR any attack can reach at each FPR.

    Raises:
        ConfigError: the stored profile is malformed (e.g. ε grid not increasing).
    """
    from dpaudit.privacy.profile import PrivacyProfile, roc_ceiling

    # The report stores the curve (ProfileCurve) and the mechanism (the section's σ, q, steps,
    # accountant) apart; the privacy-math PrivacyProfile holds both and checks the grid.
    stored = privacy.profile
    profile = PrivacyProfile(epsilons=stored.epsilons, deltas=stored.deltas,
                             accountant=privacy.accountant, noise_multiplier=privacy.noise_multiplier,
                             sample_rate=privacy.sample_rate, steps=privacy.steps)
    return np.asarray(roc_ceiling(fpr, profile), dtype=np.float64)


#: Keyword arguments for every Text that shows a string from the report.
_LITERAL = {"parse_math": False, "usetex": False}

_NOTES = {"checkpoint": ", asserted, not verified", "user": ", stated by the user, not verified"}


def _name(text: str) -> str:
    return clean_text(text, max_len=60)


def _literal_legend(ax: Axes, **kwargs) -> None:
    """A legend whose entries are drawn literally (legend() takes no parse_math argument)."""
    for text in ax.legend(**kwargs).get_texts():
        text.set_parse_math(False)
        text.set_usetex(False)


def _new_figure(width: float = 6.4, height: float = 4.2) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def roc_figure(report: AuditReport) -> Figure:
    """Log-log ROC of every attack with the random-guess diagonal and the DP ceiling."""
    fig, ax = _new_figure()
    positive = [f for a in report.attacks for f in a.roc.fpr if f > 0]
    low = max(min(positive, default=MIN_FPR), 1e-6)
    low = min(low, MIN_FPR)
    grid = np.geomspace(low, 1.0, 300)
    ax.plot(grid, grid, color="0.6", linestyle=":", linewidth=1, label="random guess")
    profile = report.privacy.profile
    if profile is not None and len(profile.epsilons) > 0:
        note = _NOTES.get(report.privacy.claim_source or "", "")
        eps_label = "" if report.privacy.epsilon is None else f" (ε = {report.privacy.epsilon:.2f}{note})"
        ax.plot(grid, np.maximum(ceiling_curve(report.privacy, grid), low), color="black", linewidth=2,
                label=f"DP ceiling{eps_label}")
    elif report.privacy.non_private:
        ax.text(0.98, 0.02, "not private: no ceiling (ε = ∞)", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=9, color="0.3")
    for i, attack in enumerate(report.attacks):
        fpr, tpr = np.array(attack.roc.fpr), np.array(attack.roc.tpr)
        keep = fpr > 0
        if attack.status != "ok" or not keep.any():
            continue
        auc = "" if attack.auc is None else f" (AUC {attack.auc:.3f})"
        ax.plot(fpr[keep], np.maximum(tpr[keep], low), color=_COLORS[i % len(_COLORS)],
                linewidth=1.5, label=f"{_name(attack.name)}{auc}")
    _reference_roc(ax, report, low)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1.0)
    ax.set_ylim(low, 1.05)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("Membership-inference ROC (target model, log-log)")
    ax.grid(True, which="major", alpha=0.3)
    _literal_legend(ax, loc="lower right", fontsize=8)
    return fig


def _reference_roc(ax: Axes, report: AuditReport, low: float) -> None:
    """The non-private reference's strongest attack, dashed grey (nothing without a reference)."""
    ref = report.reference
    strongest = None if ref is None else ref.strongest()
    if strongest is None or strongest.status != "ok":
        return
    fpr, tpr = np.array(strongest.roc.fpr), np.array(strongest.roc.tpr)
    keep = fpr >= low
    if not keep.any():
        return
    auc = "" if strongest.auc is None else f", AUC {strongest.auc:.3f}"
    ax.plot(fpr[keep], np.maximum(tpr[keep], low), color="0.35", linestyle="--", linewidth=1.5,
            label=f"non-private reference: {_name(strongest.name)}{auc}")


def histogram_figure(attacks: tuple[AttackResult, ...]) -> Figure:
    """IN (member) vs OUT (non-member) score histograms, one panel per attack."""
    n = max(len(attacks), 1)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(6.4, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, attack in zip(axes, attacks):
        edges = np.array(attack.histogram.bin_edges)
        ax.set_title(_name(attack.name), fontsize=9, **_LITERAL)
        if edges.size < 2 or attack.status != "ok":
            ax.text(0.5, 0.5, "no scores (inconclusive)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8, color="0.3")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        ax.stairs(attack.histogram.out_counts, edges, fill=True, alpha=0.45, color="#1f77b4",
                  label="OUT (non-member)")
        ax.stairs(attack.histogram.in_counts, edges, fill=True, alpha=0.45, color="#d62728",
                  label="IN (member)")
        ax.set_xlabel("attack score (higher = member)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in axes[len(attacks):]:
        ax.set_visible(False)
    return fig


def epsilon_history_figure(report: AuditReport) -> Figure | None:
    """Accountant ε over optimizer steps, or ``None`` when no history is stored."""
    history = report.privacy.epsilon_history
    if not history.steps:
        return None
    fig, ax = _new_figure(6.4, 3.2)
    ax.plot(history.steps, history.epsilons, marker="o", markersize=3, color="#1f77b4")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("ε (nats)")
    ax.set_title(f"Privacy spent during training (δ = {report.privacy.delta:g})")
    ax.grid(True, alpha=0.3)
    return fig


def privacy_utility_figure(report: AuditReport) -> Figure:
    """The run's (ε, utility) point with the non-private reference as a horizontal line; a reference
    audited in this run is also a labelled marker at ε = ∞, drawn at the right edge of the axis."""
    fig, ax = _new_figure(6.4, 3.2)
    utility = report.utility
    eps = report.privacy.epsilon
    if eps is not None:
        note = _NOTES.get(report.privacy.claim_source or "", "")
        ax.plot([eps], [utility.value], marker="o", markersize=8, color="#d62728",
                label=f"this run (ε = {eps:.2f}{note})")
        right = max(1.0, eps * 1.5)
        ax.set_xlim(0.0, right)
        if report.reference is not None:
            value = report.reference.utility.value
            ax.plot([right], [value], marker="s", markersize=8, color="black", clip_on=False,
                    label=f"non-private reference (ε = ∞, {value:.3f})")
            ax.annotate("ε = ∞", (right, value), textcoords="offset points", xytext=(-6, 8), ha="right",
                        fontsize=8)
    else:
        label = "not private (ε = ∞)" if report.privacy.non_private else "ε undefined"
        ax.text(0.5, 0.5, f"{label}: {_name(utility.metric)} {utility.value:.3f}", ha="center",
                va="center", transform=ax.transAxes, fontsize=9, **_LITERAL)
    if utility.non_private_reference is not None:
        ax.axhline(utility.non_private_reference, color="black", linestyle="--", linewidth=1,
                   label=f"non-private reference ({utility.non_private_reference:.3f})")
    ax.set_xlabel("ε (nats)")
    ax.set_ylabel(_name(utility.metric), **_LITERAL)
    ax.set_title("Privacy–utility")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        _literal_legend(ax, fontsize=8, loc="lower right")
    return fig


def all_figures(report: AuditReport) -> dict[str, Figure]:
    """Every figure the report shows, keyed ``roc``, ``histograms``, ``epsilon_history``,
    ``privacy_utility`` (``epsilon_history`` left out when there is none)."""
    figures = {"roc": roc_figure(report), "histograms": histogram_figure(report.attacks)}
    history = epsilon_history_figure(report)
    if history is not None:
        figures["epsilon_history"] = history
    figures["privacy_utility"] = privacy_utility_figure(report)
    return figures


_ALT = {"roc": "ROC curves of all attacks on log-log axes",
        "histograms": "Attack-score histograms for members and non-members",
        "epsilon_history": "Privacy budget over training steps",
        "privacy_utility": "Privacy-utility point"}


def _labels(fig: Figure) -> list[tuple[str, str]]:
    """(label, linestyle) of every line drawn on ``fig``'s axes (what a caption may describe)."""
    return [(line.get_label(), line.get_linestyle()) for ax in fig.axes for line in ax.get_lines()]


def _texts(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def _roc_caption(fig: Figure) -> str:
    lines = _labels(fig)
    parts = ["ROC of each attack on the target model (log-log axes)."]
    if any(label.startswith("DP ceiling") for label, _ in lines):
        parts.append("The thick black curve is the most any attack can achieve under the claimed privacy "
                     "profile δ(ε): a curve above it would contradict the claim.")
    elif "no ceiling" in _texts(fig):
        parts.append("No DP ceiling is drawn: the model is not private (ε = ∞).")
    else:
        parts.append("No DP ceiling is drawn: the report stores no privacy profile.")
    parts.append("The dotted diagonal is random guessing.")
    if any(style == "--" for _, style in lines):
        parts.append("The dashed grey curve is the strongest attack on the non-private reference.")
    return " ".join(parts)


def _privacy_utility_caption(fig: Figure, report: AuditReport) -> str:
    lines, metric = _labels(fig), _name(report.utility.metric)
    parts = []
    if any(label.startswith("this run") for label, _ in lines):
        parts.append(f"The red dot is this run's held-out {metric} at its claimed ε.")
    else:
        parts.append(f"No point is drawn: ε is infinite or undefined, so the run's held-out {metric} is written "
                     "on the plot.")
    if any(label.startswith("non-private reference (ε = ∞") for label, style in lines if style != "--"):
        parts.append("The black square is the non-private reference audited in this run, drawn at the right "
                     "edge to stand for ε = ∞.")
    if any(style == "--" for _, style in lines):
        parts.append(f"The dashed line is the non-private reference's {metric}.")
    return " ".join(parts)


def caption(key: str, fig: Figure, report: AuditReport) -> tuple[str, str]:
    """``(alt text, caption)`` of the figure ``all_figures(report)[key]``, describing only what ``fig`` draws.

    The caption is read off the drawn lines (their labels and line styles), so a curve that is not drawn
    is never described.
    """
    if key == "roc":
        return _ALT[key], _roc_caption(fig)
    if key == "histograms":
        empty = " A panel reading “no scores” is an inconclusive attack." if "no scores" in _texts(fig) else ""
        return _ALT[key], ("Attack scores of training members (IN, red) and non-members (OUT, blue), one panel "
                           "per attack; the more the two overlap, the less the attack can tell them apart." + empty)
    if key == "epsilon_history":
        return _ALT[key], "The accountant's ε (an upper bound, in nats) after each recorded optimizer step."
    return _ALT[key], _privacy_utility_caption(fig, report)


def to_png_base64(fig: Figure, *, dpi: int = 110) -> str:
    """Render ``fig`` to a base64-encoded PNG (ASCII, no ``data:`` prefix)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
