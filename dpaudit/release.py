"""The release boundary: what dpaudit writes to its one public file, ``summary.json`` (docs/design.md,
"Release boundary").

Rule: a file is public only if its content is post-processing of the DP-trained model and of values fixed
before the data were seen. Everything else (a content hash of the data, clip fractions, losses, held-out
accuracy, membership counts, score histograms, attack metrics, canary counts, the reference's metrics) is
private, 0600, and labelled :data:`PRIVATE_LABEL` (metrics.json) or
:data:`dpaudit.reports.summary.CONFIDENTIAL` (audit.json, the reports).

The dataset size N, and what is computed from it (q = batch/N, the default δ = 1/(10·N), the step count,
σ calibrated from them, ε and its history), are public only when the claim is replace-one
(``privacy.neighbouring = "replace_one"``, the default): replace-one neighbours have the same size, so
the (ε, δ) is stated for an adversary who knows N. Under add/remove they stay private (:func:`_sized`).
An audit target's own accounting is computed from its training-set size, which is a function of its
secret membership row, so an audit's summary states only the requested ε, never the computed one.
"""

from __future__ import annotations

from typing import Any

from dpaudit.rundir import SHAREABLE, SUMMARY

SUMMARY_FORMAT = "dpaudit-summary-1"
PUBLIC_LABEL = ("public: post-processing of the DP-trained model and of values fixed before the data were seen "
                "(docs/design.md, \"Release boundary\")")
PRIVATE_LABEL = ("private (0600): statistics of the training data that are not differentially private "
                 "(docs/design.md, \"Release boundary\"); never publish this file")

__all__ = ["PRIVATE_LABEL", "PUBLIC_LABEL", "SUMMARY", "SUMMARY_FORMAT", "audit_summary", "public_files",
           "train_summary"]


def public_files() -> frozenset[str]:
    """The names of the run-dir files dpaudit writes 0644 (all others are 0600)."""
    return SHAREABLE


def _base(command: str, *, neighbouring: str, accountant: str, noise: str | None, model: dict) -> dict[str, Any]:
    from dpaudit import __version__

    return {"format": SUMMARY_FORMAT, "command": command, "release": PUBLIC_LABEL, "dpaudit_version": __version__,
            "model": model, "privacy": {"neighbouring": neighbouring, "accountant": accountant, "noise": noise}}


def _sized(neighbouring: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (functions of the dataset size) when the size is public (replace-one), else a note."""
    if neighbouring == "replace_one":
        return values
    return {"withheld": "add_remove: the dataset size and everything computed from it (q, δ, steps, σ, ε) "
                        "stay private"}


def train_summary(*, cfg, plan, outcome, info, models_sha256: str, dataset_size: int, n_train: int,
                  epsilon: float | None) -> dict[str, Any]:
    """The public summary of ``dpaudit train``: the released model's hash and its (ε, δ) claim.

    Args:
        cfg: the resolved :class:`~dpaudit.config.Config`.
        plan: the run's :class:`~dpaudit.trainers.recipe.PrivacyPlan`.
        outcome: the :class:`~dpaudit.trainers.loop.TrainOutcome` (only steps and the budget stop are read).
        info: the backbone's ``ModelInfo`` (name and hash: fixed before the data were seen).
        models_sha256: hash of the released checkpoint file (noisy tables and public metadata).
        dataset_size, n_train: N and the training-set size (public under replace-one only).
        epsilon: the accountant's ε after ``outcome.steps`` (None when non-private).
    """
    p = cfg.privacy
    out = _base("train", neighbouring=p.neighbouring, accountant=plan.accountant,
                noise=None if plan.non_private else cfg.train.noise,
                model={"name": info.name, "backbone_sha256": info.sha256, "models_sha256": models_sha256})
    out["privacy"].update(non_private=plan.non_private, requested_epsilon=p.epsilon,
                          clipping_norm=float(cfg.clipping.max_grad_norm))
    out["privacy"].update(_sized(p.neighbouring, {
        "epsilon": epsilon, "delta": plan.delta, "noise_multiplier": plan.noise_multiplier,
        "sample_rate": plan.sample_rate, "steps": outcome.steps, "planned_steps": outcome.planned_steps,
        "stopped_by_budget": outcome.stopped_by_budget, "dataset_size": int(dataset_size),
        "n_train": int(n_train)}))
    return out


def audit_summary(cfg, report) -> dict[str, Any]:
    """The public summary of ``dpaudit audit``: what was audited and how, with no membership-dependent number.

    Attack metrics, ε lower bounds, canary counts, the target's utility and its computed ε are functions of
    the target's secret membership row and stay in the confidential audit.json. A checkpoint's or a user's
    claim was public before the audit and is repeated; dpaudit's own accounting of the audit target is not.
    """
    p = report.privacy
    out = _base("audit", neighbouring=p.neighbouring, accountant=p.accountant, noise=p.noise,
                model={"name": report.run.model.get("name"), "backbone_sha256": report.run.model.get("sha256")})
    out["privacy"].update(claim_source=p.claim_source, requested_epsilon=cfg.privacy.epsilon,
                          non_private=p.non_private)
    if p.claim_source in ("checkpoint", "user"):
        out["privacy"].update(epsilon=p.epsilon, delta=p.delta)
    out["audit"] = {"attacks": list(cfg.audit.attacks), "num_shadows": int(cfg.audit.num_shadows),
                    "significance": float(cfg.audit.significance), "confidential": ["audit.json", "report.*"]}
    return out
