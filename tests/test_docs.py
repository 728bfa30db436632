"""The documentation cannot rot: the site builds with ``mkdocs build --strict`` (links, anchors, nav, API
docstrings), every ```python block marked ``<!-- test -->`` in docs/*.md runs, and docs/config.md is what
``python -m dpaudit.docs_config`` generates from dpaudit/config.py."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dpaudit import docs_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKER = "<!-- test -->"


def marked_blocks(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every fenced block whose opening fence directly follows a ``MARKER`` line.

    Raises ValueError for a marker not followed by a ```python fence (a typo would silently skip a block).
    """
    lines, out = text.splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        if i + 1 >= len(lines) or lines[i + 1].strip() != "```python":
            raise ValueError(f"line {i + 1}: {MARKER} must be followed directly by a ```python fence")
        end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
        out.append((i + 3, "\n".join(lines[i + 2:end]) + "\n"))
    return out


BLOCKS = [pytest.param(code, id=f"{page.name}:{line}")
          for page in sorted(DOCS.glob("*.md")) for line, code in marked_blocks(page.read_text(encoding="utf-8"))]


def test_at_least_one_block_is_marked_runnable():
    assert BLOCKS, f"no {MARKER} block in docs/*.md: the runnable-docs test would check nothing"


def test_a_marker_before_anything_but_a_python_fence_is_an_error():
    assert marked_blocks(f"{MARKER}\n```python\nx = 1\n```\n```python\ny\n```\n") == [(3, "x = 1\n")]
    with pytest.raises(ValueError, match="must be followed directly"):
        marked_blocks(f"{MARKER}\n\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="must be followed directly"):
        marked_blocks(f"{MARKER}\n```bash\nls\n```\n")


@pytest.mark.parametrize("code", BLOCKS)
def test_marked_python_block_runs(code, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_config_page_is_generated_from_the_config_code():
    assert (DOCS / "config.md").read_text(encoding="utf-8") == docs_config.render(), (
        "docs/config.md is stale: regenerate it with `python -m dpaudit.docs_config`")


def test_config_page_lists_every_key_with_its_range(tmp_path, capsys):
    from dpaudit.config import RANGES, _CLASSES
    from dataclasses import fields

    text = docs_config.render()
    for section, cls in _CLASSES.items():
        assert f"## `[{section}]`" in text
        for f in fields(cls):
            assert re.search(rf"^\| `{f.name}` \|", text.split(f"## `[{section}]`")[1], re.M), (section, f.name)
    assert "| `max_length` | int | `64` | [1, 131072] |" in text  # a row read off RANGES and the defaults
    for (section, key), (low, high, _) in RANGES.items():
        row = re.search(rf"^\| `{key}` \|.*$", text.split(f"## `[{section}]`")[1], re.M).group(0)
        assert f"{docs_config._number(low)}, {docs_config._number(high)}" in row, (section, key, row)
    stale = tmp_path / "config.md"
    stale.write_text(text.replace("131072", "131073"), encoding="utf-8")
    assert docs_config.main(["--check", "--out", str(stale)]) == 1
    assert "is stale" in capsys.readouterr().err
    assert docs_config.main(["--out", str(stale)]) == 0 and docs_config.main(["--check", "--out", str(stale)]) == 0


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
                    reason="mkdocs / mkdocstrings-python not installed: `pip install '.[docs]'` "
                           "(scripts/setup.sh --test installs them)")
def test_site_builds_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, "\n".join(ln for ln in done.stderr.splitlines() if not ln.startswith("INFO"))
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "calibrate_noise" in api and "install_assets" in api  # docstrings were rendered, not just headings
