"""The canary pictures the HTML report shows, read from ``canary_images.json`` beside the report
(:mod:`dpaudit.pipeline.canary_images`), validated as untrusted input: at most :data:`MAX_SHOWN` entries,
each PNG base64 text of at most :data:`MAX_PNG_CHARS` characters that decodes to a PNG signature, every
label a short string; anything else and the pictures are left out (the report never fails on them)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path

from dpaudit.sanitize import clean_text

FILE = "canary_images.json"
MAX_SHOWN = 16
MAX_PNG_CHARS = 200_000
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_PNG = b"\x89PNG\r\n\x1a\n"


def _row(item) -> dict | None:
    if not isinstance(item, dict):
        return None
    png = item.get("png")
    if not (isinstance(png, str) and len(png) <= MAX_PNG_CHARS and _B64.fullmatch(png)):
        return None
    try:
        if not base64.b64decode(png, validate=True).startswith(_PNG):
            return None
    except (binascii.Error, ValueError):
        return None
    labels = [item.get(k) for k in ("label", "original", "predicted")]
    if not all(isinstance(v, str) for v in labels) or not all(isinstance(item.get(k), bool)
                                                               for k in ("included", "recognised")):
        return None
    label, original, predicted = (clean_text(v, max_len=60) for v in labels)
    return {"png": png, "label": label, "original": original, "predicted": predicted,
            "included": item["included"], "recognised": item["recognised"]}


def load_canary_images(report_path: Path) -> list[dict]:
    """The validated pictures beside ``report_path`` (``[]`` when absent or malformed)."""
    path = Path(report_path).parent / FILE
    if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_SHOWN * (MAX_PNG_CHARS + 1000):
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    items = data.get("canaries") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) > MAX_SHOWN:
        return []
    rows = [_row(item) for item in items]
    return [] if any(r is None for r in rows) else rows
