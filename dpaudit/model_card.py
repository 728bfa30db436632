"""The model card (``README.md``) of a released DP-BiTFiT model: the privacy claim's parameters, nothing else.

Written by ``dpaudit export`` and :class:`dpaudit.PrivateTrainer`. It states ε, δ, σ, the sampling rate q,
the optimizer steps, the clipping norm C, the accountant and the neighbouring relation — the numbers anyone
needs to recompute ε — and, when an audit of the same model is given, the audit's headline. It never holds
the dataset's hash, the training-set size, the members' commitment or any example: those stay in the run
directory, which is private (docs/design.md, "Security model"; what may leave it is the release boundary
of docs/design.md). The sampling rate is part of the claim and is stated; with a known batch size it tells
the training-set size approximately, as any DP-SGD claim does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NEIGHBOURING_TEXT = {"add_remove": "add/remove one example", "replace_one": "replace one example"}


@dataclass(frozen=True)
class ReleaseClaim:
    """The (ε, δ) claim of one trained model and the parameters it follows from (ε in nats)."""

    epsilon: float | None
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    accountant: str
    neighbouring: str = "add_remove"
    max_grad_norm: float | None = None
    noise: str | None = None  # "secure" | "seeded" | None
    non_private: bool = False

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _privacy_lines(c: ReleaseClaim) -> list[str]:
    if c.non_private:
        return ["**Not differentially private** (trained without clipping or noise): ε = ∞."]
    eps = "∞" if c.epsilon is None or not math.isfinite(c.epsilon) else f"{c.epsilon:.4g}"
    relation = NEIGHBOURING_TEXT.get(c.neighbouring, c.neighbouring)
    noise = {"secure": "OS CSPRNG", "seeded": "seeded — NOT a private release"}.get(c.noise or "", "not recorded")
    rows = [("ε (nats, an upper bound)", eps), ("δ", f"{c.delta:.3g}"),
            ("noise multiplier σ", f"{c.noise_multiplier:.6g}"),
            ("sampling rate q (Poisson)", f"{c.sample_rate:.6g}"), ("optimizer steps", str(c.steps)),
            ("clipping norm C", "—" if c.max_grad_norm is None else f"{c.max_grad_norm:g}"),
            ("accountant", c.accountant),
            ("neighbouring relation", relation), ("noise", noise)]
    lines = [f"({eps}, {c.delta:.3g})-differentially private with respect to {relation} of the training set, by "
             f"DP-BiTFiT (DP-SGD on the biases and the task head; every other weight is the unchanged base model's).",
             "", "| parameter | value |", "|---|---|"]
    return lines + [f"| {k} | {v} |" for k, v in rows]


def audit_headline(report) -> str:
    """One sentence from an :class:`~dpaudit.report_schema.AuditReport`: the ε lower bound and the verdict."""
    parts = []
    fam = getattr(report, "epsilon_lb_family", None) or {}
    if fam.get("status") == "ok" and fam.get("epsilon_lb") is not None:
        conf = 1.0 - float(fam.get("significance") or 0.0)
        parts.append(f"empirical ε ≥ {float(fam['epsilon_lb']):.3g} with {conf:.1%} confidence "
                     f"({fam.get('size', '?')} estimators, Bonferroni)")
    verdict = report.verdict
    if verdict.protection_level:
        parts.append(f"protection level {verdict.protection_level} (strongest attack: {verdict.strongest_attack})")
    if verdict.policy is not None:
        parts.append(f"gate policy {verdict.policy}: {'passed' if verdict.passed else 'failed'}")
    return "; ".join(parts) if parts else "the audit reached no conclusion (see audit.json)"


def loader_name(modality: str) -> str:
    """The transformers auto class an exported model loads with."""
    return "AutoModelForImageClassification" if modality == "image" else "AutoModelForSequenceClassification"


def render_card(claim: ReleaseClaim, *, base_model: str, labels: list[str], source: str, audit: str | None = None,
                modality: str = "text") -> str:
    """The README.md text (Hugging Face card: YAML front matter, then Markdown); ``modality``: text | image."""
    image = modality == "image"
    lines = ["---", "library_name: transformers",
             f"pipeline_tag: {'image' if image else 'text'}-classification", "tags:",
             "- differential-privacy", "- dp-bitfit", "- dpaudit", "---", "",
             f"# DP-BiTFiT {'image' if image else 'text'} classifier", "",
             f"Base model: {base_model}. Labels: {', '.join(labels) if labels else 'as in config.json'}. "
             f"Loads with `{loader_name(modality)}.from_pretrained` (no custom code).", "",
             "## Privacy", ""] + _privacy_lines(claim)
    lines += ["", f"Source of these numbers: {source}."]
    if audit is not None:
        lines += ["", "## Audit", "", f"Membership-inference audit of this model: {audit}."]
    lines += ["", "This card holds only the claim's parameters: no dataset hash, training-set size or example. "
              "The privacy guarantee covers the training examples only; the base model's own pre-training data "
              "is outside it.", ""]
    return "\n".join(lines)
