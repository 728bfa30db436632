"""One name per concept in package code: no class name defined twice, ``SCHEMA_VERSION`` defined once.

Two classes of one name (``PrivacyProfile`` in the privacy math and in the report, with different fields) made a
reader guess which one a signature meant; ``SCHEMA_VERSION`` written in two modules could drift apart.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dpaudit", "trainers", "attacks", "reports")


def _module_level(kind: type) -> dict[str, list[str]]:
    """Names bound at module level by nodes of ``kind`` (ClassDef or Assign), with the files binding them."""
    found: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if kind is ast.ClassDef and isinstance(node, ast.ClassDef):
                    found[node.name].append(str(path.relative_to(ROOT)))
                elif kind is ast.Assign and isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if isinstance(target, ast.Name):
                            found[target.id].append(str(path.relative_to(ROOT)))
    return found


def test_no_class_name_is_defined_twice():
    twice = {name: files for name, files in _module_level(ast.ClassDef).items() if len(files) > 1}
    assert not twice, f"one class name, several classes: {twice}"


def test_schema_version_is_defined_once():
    assert _module_level(ast.Assign)["SCHEMA_VERSION"] == ["dpaudit/report_schema.py"]
