"""Checkpoints: one safetensors file of the K models' trainable tables + JSON metadata.

``models.safetensors`` holds every (K, …) table by slot name (backbone biases, ``head.weight``,
``head.bias``) and metadata: format, backbone content hash and source, labels, model config and
accounting. ``train_state.safetensors`` holds what resuming needs (optimizer moments, noise-generator
states, step, sampler states). Writes are atomic (temporary file + rename), so a kill never leaves a
half-written checkpoint behind the last good one. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dpaudit.errors import CheckpointError

FORMAT = "dpaudit-bitfit-1"


def _atomic_save(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def save_models(path: Path, tables: dict[str, torch.Tensor], meta: dict) -> None:
    """Write the tables and ``meta`` (JSON-serialisable; must hold ``backbone_sha256``)."""
    _atomic_save(tables, {"format": FORMAT, "meta": json.dumps(meta, sort_keys=True)}, path)


def read_models(path: Path, *, backbone_sha256: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Read ``(tables, meta)``; checks the format and, if given, the backbone hash.

    Raises:
        CheckpointError: missing, corrupt, not a dpaudit checkpoint, or trained on another backbone.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; train first or point at a models.safetensors file.")
    try:
        tables = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint '{path}' is corrupt or truncated ({err}); retrain or restore it.") from err
    if header.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a dpaudit checkpoint (format {header.get('format')!r}).")
    try:
        meta = json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint '{path}' has unreadable metadata; retrain or restore it.") from err
    if backbone_sha256 is not None and meta.get("backbone_sha256") != backbone_sha256:
        raise CheckpointError(
            f"checkpoint '{path}' was trained on backbone {str(meta.get('backbone_sha256'))[:12]}…, but the model "
            f"given has hash {backbone_sha256[:12]}…; use the backbone it was trained with "
            f"({meta.get('backbone_source', 'unknown')})."
        )
    return tables, meta


def save_train_state(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    _atomic_save(tensors, {"format": FORMAT + "-state", "meta": json.dumps(meta, sort_keys=True)}, path)


def read_train_state(path: Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The resume state, or None when absent. A corrupt state raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {})["meta"])
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"resume state '{path}' is corrupt ({err}); delete it to restart from the last "
                              f"saved models, or start a new run directory.") from err
    return tensors, meta
