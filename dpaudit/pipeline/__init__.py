"""The audit pipeline, as stages above :mod:`trainers` and :mod:`attacks` (see :mod:`dpaudit.pipeline.run`).

``attacks/`` holds algorithms on arrays; the stages here load data and models, train (``trainers/``), score,
and assemble ``audit.json``. ``run_audit`` is imported lazily, so that the config and the CLI can read the
stage and recipe tables without loading torch.
"""

from __future__ import annotations

__all__ = ["AuditOutcome", "run_audit"]


def __getattr__(name: str):
    if name in __all__:
        from dpaudit.pipeline import run

        return getattr(run, name)
    raise AttributeError(f"module 'dpaudit.pipeline' has no attribute {name!r}")
