"""Layering: ``attacks/`` is algorithms on arrays; it never imports the trainers or the pipeline above it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("dpaudit.trainers", "trainers", "dpaudit.pipeline")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_attacks_do_not_import_trainers_or_the_pipeline():
    bad = [(p.name, name) for p in sorted((ROOT / "attacks").glob("*.py")) for name in _imports(p)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []


def test_the_old_pipeline_module_is_gone():
    assert not (ROOT / "attacks" / "audit.py").exists() and not (ROOT / "attacks" / "target.py").exists()
