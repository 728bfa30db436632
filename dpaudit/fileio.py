"""Atomic writes for run-directory files: write a temporary sibling, then rename it over the target,
so a kill never leaves a half-written file in place of finished work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | Path, text: str) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_json_atomic(path: str | Path, obj: Any, *, sort_keys: bool = True) -> Path:
    """JSON with ``allow_nan=False``: a NaN or infinity is a bug to surface, not a value to store."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")
