"""The release policies shipped inside the package (package data), so they work from an installed wheel.

``default.toml`` is the shipped release policy (the README shows it; docs/gate.md lists its keys). Its name
``default`` works wherever a policy file does: ``dpaudit gate RUN --policy default``, ``dpaudit.gate(report,
"default")``, and the gate form of ``dpaudit ui``. The repository's ``configs/policy.toml`` is a byte-identical
copy for the examples and CI templates (tests/test_shipped_policy.py keeps the two equal).
"""

from __future__ import annotations

from pathlib import Path

#: shipped name → its file inside the installed package
SHIPPED = {"default": Path(__file__).resolve().with_name("default.toml")}


def policy_file(path: str | Path) -> Path:
    """``path`` as a policy file: a shipped name (``default``) is its file in the package, anything else the
    path itself (a file named ``default`` in the current folder is ``./default``)."""
    return SHIPPED.get(str(path), Path(path))
