"""dpaudit: train with DP-BiTFiT, attack with shadow models, report and gate.

``dpaudit`` is the only top-level import name. The core package holds what every stage shares: config,
data and model loading, the privacy math (:mod:`dpaudit.privacy`), error types and the CLI. The stages are
its subpackages :mod:`dpaudit.trainers` → :mod:`dpaudit.attacks` → :mod:`dpaudit.reports` (imports flow
one way, from the core outwards); see ``docs/design.md``.

In the repository the stage folders sit beside this one, at the root (``trainers/``, ``attacks/``,
``reports/``), as the design card lays them out; a built wheel places them inside ``dpaudit/``
(``pyproject.toml``: ``package-dir``). Run from a source checkout, this package's search path also covers
the repository root so that ``dpaudit.trainers`` resolves to ``trainers/`` there.

The Python front door, loaded on first use (``__all__``; docs/library.md): ``dpaudit.train`` →
``dpaudit.audit`` → ``dpaudit.gate`` → ``dpaudit.render`` (what the CLI commands call), ``dpaudit.ScoreAuditor``
(every ε estimator on your own scores), ``dpaudit.load_config`` and the config sections.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

_STAGES = ("trainers", "attacks", "reports")
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and all((_checkout / s / "__init__.py").is_file() for s in _STAGES):
    __path__.append(str(_checkout))  # noqa: F821 — a package's __path__, extended for a source checkout

#: Library entry points, imported on first use (``import dpaudit`` stays fast and imports no torch):
#: name → module that defines it. See docs/library.md.
_LAZY = {
    "make_private": "dpaudit.private",
    "PrivacyEngine": "dpaudit.private",
    "PrivateTrainer": "dpaudit.private_trainer",
    "export_run": "dpaudit.export",
    # the front door (docs/library.md, "Python quickstart")
    "train": "dpaudit.api", "audit": "dpaudit.api", "TrainResult": "dpaudit.api", "Report": "dpaudit.api",
    "gate": "dpaudit.gating", "render": "dpaudit.gating", "GateResult": "dpaudit.gating",
    "ScoreAuditor": "dpaudit.score_auditor",
    "load_config": "dpaudit.config", "Config": "dpaudit.config", "DataConfig": "dpaudit.config",
    "ModelConfig": "dpaudit.config", "PrivacyConfig": "dpaudit.config", "OptimConfig": "dpaudit.config",
    "TrainConfig": "dpaudit.config", "AuditConfig": "dpaudit.config", "TargetConfig": "dpaudit.config",
    "ClippingConfig": "dpaudit.clipping",
    "DpauditError": "dpaudit.errors", "ConfigError": "dpaudit.errors", "DataError": "dpaudit.errors",
}

__all__ = ["__version__", *_LAZY]


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dpaudit' has no attribute {name!r}")
