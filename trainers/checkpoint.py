"""Checkpoints: ONE safetensors file that commits everything a step changed, atomically.

``models.safetensors`` holds every (K, …) table by slot name (backbone biases, ``head.weight``,
``head.bias``), the optimizer moments (``train_state.opt.<param>.<key>``; Adam/SGD state is computed from
noisy gradients only, so it is DP post-processing and as public as the tables), and JSON metadata: format,
backbone hash and source, labels, model config, the step count, the accountant history, the noise kind of
each row, the data it trained on (a keyed dataset hash and a keyed commitment to the training ids) and the
scheduler state. Because tables, optimizer state, step count and accountant history are one file written
by one atomic rename (:meth:`dpaudit.rundir.RunDir.write`), no crash can leave released parameters that
saw more steps than are recorded and accounted. Nothing is unpickled; no noise state is stored (resume
draws fresh entropy, see :mod:`trainers.randomness`).

``accountant_history`` is the list of ``[σ, q, steps]`` segments the accounting covers (one segment: every
step of a run uses the same σ and q; empty for a non-private run). It is the checkpoint's self-description
for a reader outside dpaudit; dpaudit itself rebuilds a claim from the flat ``noise_multiplier``,
``sample_rate`` and ``steps`` keys written in the same atomic file, so the two cannot disagree.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from dpaudit.errors import CheckpointError, ConfigError
from dpaudit.rundir import RunDir, members_commitment

CHECKPOINT_FORMAT = "dpaudit-bitfit-1"
MODELS_FILE = "models.safetensors"
STATE_PREFIX = "train_state."


def checkpoint_bytes(tables: dict[str, torch.Tensor], state: dict[str, torch.Tensor], meta: dict) -> bytes:
    """The file contents: ``tables`` by slot name, ``state`` under :data:`STATE_PREFIX`, ``meta`` as JSON."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tables.items()}
    tensors.update({STATE_PREFIX + k: torch.as_tensor(v).detach().contiguous().cpu() for k, v in state.items()})
    return safetensors_bytes(tensors, metadata={"format": CHECKPOINT_FORMAT, "meta": json.dumps(meta, sort_keys=True)})


def save_checkpoint(run: RunDir, tables: dict[str, torch.Tensor], state: dict[str, torch.Tensor],
                    meta: dict) -> Path:
    """Commit tables + optimizer state + ``meta`` (must hold ``steps`` and ``accountant_history``) at once."""
    return run.write(MODELS_FILE, checkpoint_bytes(tables, state, meta), steps=int(meta["steps"]))


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; train first or point at a models.safetensors file.")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint '{path}' is corrupt or truncated ({err}); retrain or restore it.") from err
    if header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"'{path}' is not a dpaudit checkpoint (format {str(header.get('format'))[:40]!r}).")
    try:
        meta = json.loads(header["meta"])
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"checkpoint '{path}' has unreadable metadata; retrain or restore it.") from err
    return tensors, meta


def parse_checkpoint(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """:func:`read_checkpoint` of the bytes :func:`checkpoint_bytes` made (a checkpoint sent between ranks)."""
    from safetensors.torch import load

    try:
        tensors = load(data)
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")]).get("__metadata__") or {}
        meta = json.loads(header["meta"])
    except (SafetensorError, ValueError, KeyError) as err:
        raise CheckpointError(f"the checkpoint sent by rank 0 is unreadable ({err}); rerun the job.") from err
    tables = {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}
    state = {k[len(STATE_PREFIX):]: v for k, v in tensors.items() if k.startswith(STATE_PREFIX)}
    return tables, state, meta


def read_models(path: Path, *, backbone_sha256: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Read ``(tables, meta)``; checks the format and, if given, the backbone hash.

    Raises:
        CheckpointError: missing, corrupt, not a dpaudit checkpoint, or trained on another backbone.
    """
    path = Path(path)
    tensors, meta = _read(path)
    if backbone_sha256 is not None and meta.get("backbone_sha256") != backbone_sha256:
        raise CheckpointError(
            f"checkpoint '{path}' was trained on backbone {str(meta.get('backbone_sha256'))[:12]}…, but the model "
            f"given has hash {backbone_sha256[:12]}…; use the backbone it was trained with "
            f"({str(meta.get('backbone_source', 'unknown'))[:200]})."
        )
    return {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}, meta


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """``(tables, optimizer state, meta)`` of a checkpoint written by :func:`save_checkpoint`."""
    tensors, meta = _read(Path(path))
    tables = {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}
    state = {k[len(STATE_PREFIX):]: v for k, v in tensors.items() if k.startswith(STATE_PREFIX)}
    return tables, state, meta


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state as flat tensors named ``opt.<param id>.<key>``."""
    return {f"opt.{pid}.{key}": torch.as_tensor(val)
            for pid, st in optimizer.state_dict()["state"].items() for key, val in st.items()}


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, torch.Tensor], param_groups: list,
                      device: torch.device) -> None:
    """Load what :func:`optimizer_tensors` flattened (plus the JSON ``param_groups``) back into ``optimizer``."""
    opt_state: dict = {}
    for name, val in state.items():
        _, pid, key = name.split(".", 2)
        opt_state.setdefault(int(pid), {})[key] = val.to(device) if key != "step" else val
    optimizer.load_state_dict({"state": opt_state, "param_groups": param_groups})


def check_resumable(meta: dict, *, settings: dict, seeds: list, backbone_sha256: str | None, where: Path) -> None:
    """Refuse to resume a checkpoint written with other settings, seeds or backbone.

    Raises:
        ConfigError: the run directory ``where`` holds a different run.
    """
    if meta.get("settings") != settings or meta.get("seeds") != seeds:
        raise ConfigError(f"run directory '{where}' holds a run with other settings; use a new "
                          f"--run-dir, or the same config to resume it.")
    if meta.get("backbone_sha256") != backbone_sha256:
        raise ConfigError(f"run directory '{where}' holds a run on another backbone; use a new --run-dir.")


#: The run directory's private (0600) key of the membership commitments; never inside a checkpoint.
MEMBERSHIP_KEY_FILE = "membership_key.json"


def membership_commitments(run: RunDir, members: Sequence[np.ndarray], *, create: bool) -> list[str] | None:
    """Keyed commitment (:func:`dpaudit.rundir.members_commitment`) to each row's training ids.

    The key (256 random bits) is the run directory's private ``membership_key.json``, made on the first call
    with ``create``: the commitments in a checkpoint say nothing about who trained it without the key, and
    with it a resume proves it continues the same training sets. ``None`` when there is no key and not
    ``create``.
    """
    path = run.verified(MEMBERSHIP_KEY_FILE)
    if path is None:
        if not create:
            return None
        salt = secrets.token_hex(32)
        run.write_json(MEMBERSHIP_KEY_FILE, {"salt": salt})
    else:
        try:
            salt = str(json.loads(path.read_text(encoding="utf-8"))["salt"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"'{path}' is unreadable; use a new --run-dir.") from None
    return [members_commitment(salt, ids) for ids in members]


def check_membership(meta: dict, commitments: list[str] | None, *, where: Path) -> None:
    """Refuse to resume a checkpoint whose rows trained on other examples than ``commitments`` commit to.

    Raises:
        ConfigError: another membership, or a checkpoint (or run directory) without the commitments.
    """
    if commitments is None or meta.get("membership_commitments") != commitments:
        raise ConfigError(f"run directory '{where}' holds a checkpoint trained on other examples (another "
                          f"membership, or one it cannot show); use a new --run-dir, or the same training sets "
                          f"to resume it.")

