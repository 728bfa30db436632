"""The embedded vision backbone (``--model embedded-vision``): a small ConvNeXt dpaudit pretrained itself.

The folder ``dpaudit/assets/embedded-vision/`` (package data: it ships inside the wheel) holds a
``ConvNextForImageClassification`` (``config.json``, ``model.safetensors``; widths 32/64/128, one block per
stage, 227,493 parameters) and its image processor
(``preprocessor_config.json``), made by ``scripts/pretrain_vision.py`` from a fixed seed on the public
Fashion-MNIST classes 0-4 (:data:`dpaudit.embedded_images.PUBLIC_CLASSES`), disjoint from the private task's
classes 5-9. Its classifier head is the public 5-class head; a private run replaces it.

Every file's SHA-256 is pinned in :data:`FILE_SHA256`; :func:`embedded_vision_dir` checks them before the
folder is handed to ``from_pretrained``, so a tampered or truncated file is refused with one line.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

from dpaudit.errors import ModelError

EMBEDDED_VISION = "embedded-vision"
#: SHA-256 of each file of the shipped folder (printed by scripts/pretrain_vision.py).
FILE_SHA256 = {
    "config.json": "0c0159c2f4495ec7920f46337a32ae7440f56e52cd6696f8383095feb18edc4d",
    "model.safetensors": "a7dba7a3805656f9f155aef43e089f99a621de7c8e52c1dc29c5d868550028ce",
    "preprocessor_config.json": "07a36433d7d1eb6dd06ccc40acb60d9f318c7c30e0662caf3eda386c7ffddbc0",
}


def shipped_vision_dir() -> Path:
    """``dpaudit/assets/embedded-vision`` of the installed package (not yet checked)."""
    return Path(str(importlib.resources.files("dpaudit").joinpath("assets", EMBEDDED_VISION)))


def check_vision_dir(folder: Path, pins: dict[str, str] | None = None) -> Path:
    """``folder`` when each pinned file is there with its pinned SHA-256.

    Raises:
        ModelError: a file missing or with another hash (one line: reinstall dpaudit).
    """
    pins = FILE_SHA256 if pins is None else pins
    for name, pinned in pins.items():
        path = folder / name
        if not path.is_file() or path.is_symlink():
            raise ModelError(f"the embedded vision backbone lacks '{name}' in {folder}; reinstall dpaudit "
                             f"(or rebuild it with scripts/pretrain_vision.py).")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != pinned:
            raise ModelError(f"the embedded vision backbone's '{name}' has sha256 {actual[:16]}…, pinned "
                             f"{pinned[:16]}…; refused (a tampered or damaged file) — reinstall dpaudit.")
    return folder


def embedded_vision_dir() -> Path:
    """The checked folder of the embedded vision backbone, ready for ``from_pretrained``."""
    return check_vision_dir(shipped_vision_dir())


def resolve_vision_path(path: str) -> str:
    """``"embedded-vision"`` → the checked shipped folder (as a string); any other model path unchanged."""
    return str(embedded_vision_dir()) if path == EMBEDDED_VISION else path
