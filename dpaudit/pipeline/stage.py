"""Stage bookkeeping: each stage's file in the run directory records the hashes of its inputs.

A stage's output is reused only when the run directory verifies the file (its bytes are the ones dpaudit
wrote) *and* the inputs recorded beside it equal the inputs of this run; otherwise the stage is recomputed.
``dpaudit audit --rerun STAGE`` forgets the files of ``STAGE`` and of every stage after it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from dpaudit.errors import ConfigError
from dpaudit.rundir import RunDir, inputs_digest

#: The stages in order and the run-directory files each one owns (``population`` cannot be rerun: its
#: membership is the experiment; use a new run directory).
STAGES: dict[str, tuple[str, ...]] = {
    "population": ("membership.npy",),
    "target": ("target_logits.npy",),
    "shadows": ("fleet.json", "models.safetensors", "model_logits.npy"),
    "signals": ("signals.npz",),
    "attacks": ("attacks.json",),
    "report": ("audit.json",),
}
#: Per-model files of the shadows stage (``shadow-full-NNN.npy``, :func:`dpaudit.trainers.full.shadow_file`).
PER_MODEL_PREFIX = "shadow-full-"
#: Stages ``--rerun`` accepts.
RERUNNABLE = ("target", "shadows", "signals", "attacks", "report")


def normalised(inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` as the run marker stores it (tuples → lists)."""
    return json.loads(json.dumps(inputs, sort_keys=True, allow_nan=False))


def reusable(run: RunDir, name: str, inputs: dict[str, Any]) -> Path | None:
    """The committed ``name`` if it was made from exactly ``inputs``, else ``None`` (recompute it)."""
    path = run.verified(name)
    if path is None:
        return None
    entry = run.entry(name) or {}
    return path if entry.get("inputs_sha256") == inputs_digest(normalised(inputs)) else None


def commit(run: RunDir, name: str, data: bytes, inputs: dict[str, Any], **extra: Any) -> Path:
    """Write ``name`` with the digest of its inputs (and ``extra`` facts) recorded in the run marker."""
    inputs = normalised(inputs)
    return run.write(name, data, inputs=inputs, inputs_sha256=inputs_digest(inputs), **extra)


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def file_sha(run: RunDir, name: str) -> str:
    """The committed hash of ``name`` (an input of the stages after it)."""
    return (run.entry(name) or {}).get("sha256", "")


def forget_from(run: RunDir, stage: str) -> None:
    """Drop the records of ``stage`` and every later stage, so that they are recomputed.

    Raises:
        ConfigError: ``stage`` is not one of :data:`RERUNNABLE`.
    """
    if stage not in RERUNNABLE:
        raise ConfigError(f"--rerun must be one of {{{', '.join(RERUNNABLE)}}}, got --rerun={stage!r}.")
    names = list(STAGES)
    for later in names[names.index(stage):]:
        for name in STAGES[later]:
            run.forget(name)
    if names.index(stage) <= names.index("shadows"):  # the full recipe's per-model files
        for name in [f for f in run.record["files"] if f.startswith(PER_MODEL_PREFIX)]:
            run.forget(name)
