"""A target trained elsewhere: its member ids, the population check, and its recipe copied to the shadows.

``target.path`` names a dpaudit ``models.safetensors`` (one model), a Hugging Face classifier directory or a
scores file; ``target.members`` names its training-example ids: the run's ``split.json`` (preferred: it holds the key of the checkpoint's
training-set commitment, so the ids are proven to be the ones the model trained on) or a JSON list / one id
per line. The checkpoint's metadata states the dataset it trained on (content hash and size) and its
training recipe (σ, q, steps, clipping, optimizer, δ, accountant, noise kind). Everything read from it is a
claim of the checkpoint — this run did not observe that training — and the report says so
(``privacy.claim_source = "checkpoint"``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpaudit.errors import CheckpointError, DataError
from dpaudit.input_limits import read_capped
from dpaudit.rundir import keyed_dataset_hash, members_commitment, sha256_bytes

_MAX_ID_FILE_BYTES = 64 << 20


@dataclass(frozen=True)
class TargetMembers:
    """The target's training set as a bool (N,) mask, the file's hash, and whether it was proven."""

    mask: np.ndarray
    sha256: str
    salt: str | None


def _strict_ids(values: Any) -> np.ndarray:
    """A JSON list of ids as int64 (N,); a float, bool, string or nested list is refused, never truncated."""
    if not isinstance(values, list):
        raise ValueError(f"expected a list of ids, got {type(values).__name__}")
    for v in values:
        if type(v) is not int:  # bool is an int subclass: true is not id 1
            raise ValueError(f"{json.dumps(v)[:40]} is not an integer id")
    return np.asarray(values, dtype=np.int64)  # OverflowError beyond int64


def _parse_ids(text: str) -> tuple[np.ndarray, Any]:
    """``(ids, salt or None)`` of a split.json, a JSON list, or one integer per line."""
    if text.startswith("{"):
        obj = json.loads(text)
        if not isinstance(obj, dict) or "train" not in obj:
            raise ValueError("a JSON object without a 'train' list")
        return _strict_ids(obj["train"]), obj.get("salt")
    if text.startswith("["):
        return _strict_ids(json.loads(text)), None
    words = text.split()
    bad = next((w for w in words if not re.fullmatch(r"-?[0-9]+", w)), None)
    if bad is not None:
        raise ValueError(f"{bad[:40]!r} is not an integer id")
    return np.asarray([int(w) for w in words], dtype=np.int64), None


def check_member_file(path: str) -> Path:
    """``path`` as a Path if it is a file (checked before any data or model is read).

    Raises:
        DataError: it does not exist or is not a file.
    """
    p = Path(path)
    if p.exists() and not p.is_file():
        raise DataError(f"member id file '{p}' is not a regular file (a FIFO, device or directory); give the "
                        f"target's split.json (or its training-example ids as a JSON list or one per line).")
    if not p.is_file():
        raise DataError(f"member id file '{p}' does not exist; give the target's split.json (or its training-example "
                        f"ids, indices into the dataset, as a JSON list or one per line).")
    return p


def read_member_ids(path: str, n: int) -> TargetMembers:
    """Read the target's training ids from ``split.json`` (``{"train": [...], "salt": ...}``), a JSON list,
    or one integer per line. Ids are parsed strictly: ``0.5``, ``1.9``, ``true`` or ``"3"`` are refused.

    Raises:
        DataError: missing, not a regular file, unreadable, not integers, or ids outside ``[0, n)``.
    """
    p = check_member_file(path)
    try:
        raw = read_capped(p, _MAX_ID_FILE_BYTES, what="member id file", error=DataError)
    except OSError:
        raise DataError(f"member id file '{p}' does not exist or cannot be read; give the target's split.json (or "
                        f"its training-example ids, indices into the dataset, as a JSON list or one per line).") from None
    try:
        ids, salt = _parse_ids(raw.decode("utf-8").strip())
    except (ValueError, TypeError, OverflowError, RecursionError, UnicodeDecodeError) as err:
        raise DataError(f"member id file '{p}' is not a list of integer ids ({' '.join(str(err).split())[:200]}); "
                        f"give the target's split.json.") from None
    if ids.size == 0 or ids.min() < 0 or ids.max() >= n:
        raise DataError(f"member ids in '{p}' do not match the dataset: ids must be in [0, {n}), got range "
                        f"[{ids.min() if ids.size else '-'}, {ids.max() if ids.size else '-'}]; check data.path "
                        f"and data.max_examples match the target's training data.")
    mask = np.zeros(n, dtype=bool)
    mask[ids] = True
    return TargetMembers(mask=mask, sha256=sha256_bytes(raw), salt=salt if isinstance(salt, str) else None)


def check_target_population(meta: dict[str, Any], members: TargetMembers, *, dataset_sha256: str, n: int,
                            where: str) -> None:
    """Refuse a target that was not trained on this population, or on other ids than ``members``.

    Raises:
        CheckpointError: the checkpoint's dataset hash or size differs from the audit's population, or its
            training-set commitment does not match the ids (or cannot be checked because no key was given).
    """
    if "dataset_sha256" in meta and meta["dataset_sha256"] != dataset_sha256:
        raise CheckpointError(f"target checkpoint '{where}' was trained on dataset {str(meta['dataset_sha256'])[:12]}…, "
                              f"but the audit population is {dataset_sha256[:12]}… (N={n}); use the target's data, "
                              f"data.max_examples and train.seed.")
    keyed = meta.get("dataset_hmac_sha256")
    mine = None if members.salt is None else keyed_dataset_hash(members.salt, dataset_sha256)
    if keyed is not None and mine is not None and mine != keyed:
        raise CheckpointError(f"target checkpoint '{where}' was trained on dataset (keyed) {str(keyed)[:12]}…, but the "
                              f"audit population is {mine[:12]}… (N={n}); use the target's data, data.max_examples "
                              f"and train.seed.")
    if "dataset_size" in meta and int(meta["dataset_size"]) != n:
        raise CheckpointError(f"target checkpoint '{where}' was trained on a population of {meta['dataset_size']} "
                              f"examples, the audit has N={n}; use the target's data and data.max_examples.")
    commitment = meta.get("members_commitment")
    if commitment is None:
        return
    if members.salt is None:
        raise CheckpointError(f"target checkpoint '{where}' commits to its training ids; give its split.json as "
                              f"target.members (--target-members) so the ids can be checked.")
    if members_commitment(members.salt, np.flatnonzero(members.mask)) != commitment:
        raise CheckpointError(f"the member ids given do not match the ids target checkpoint '{where}' trained on; "
                              f"give the split.json of the run that wrote it.")


def target_recipe(meta: dict[str, Any], settings, plan):
    """The target's TrainSettings and PrivacyPlan, as far as its metadata states them.

    Shadows copy σ, q, steps, clipping, optimizer, learning rate, schedule, δ and accountant; what the
    metadata lacks stays as configured. Returns ``(settings, plan, copied)`` with the names of the copied
    fields.
    """
    from dpaudit.trainers.dp import ClippingConfig

    stated = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    changes: dict[str, Any] = {}
    for key in ("lr", "optimizer", "momentum", "weight_decay", "schedule", "warmup_fraction", "micro_batch_size",
                "delta", "accountant"):
        if key in stated:
            changes[key] = stated[key]
    # a checkpoint written before replace-one accounting (no "neighbouring") stated add/remove
    changes["neighbouring"] = stated.get("neighbouring", "add_remove" if "accountant" in stated else plan.neighbouring)
    if "lr" in stated:  # a checkpoint written before optim.head_lr existed trained its head at lr
        changes["head_lr"] = stated.get("head_lr")
    if isinstance(stated.get("clipping"), dict):
        c = stated["clipping"]
        changes["clipping"] = ClippingConfig(max_grad_norm=float(c["max_grad_norm"]), style=c["style"], mode=c["mode"],
                                             groups={k: (str(v[0]), float(v[1])) for k, v in c.get("groups", {}).items()})
    non_private = bool(meta.get("non_private", stated.get("non_private", plan.non_private)))
    sigma = 0.0 if non_private else float(meta.get("noise_multiplier", plan.noise_multiplier))
    q = float(meta.get("sample_rate", plan.sample_rate))
    steps = int(meta.get("steps", plan.steps))
    changes.update(noise_multiplier=sigma, sample_rate=q, steps=steps, non_private=non_private,
                   target_epsilon=None)
    new_settings = dataclasses.replace(settings, **changes)
    new_plan = dataclasses.replace(plan, non_private=non_private, noise_multiplier=sigma, sample_rate=q, steps=steps,
                                   delta=float(changes.get("delta", plan.delta)),
                                   accountant=str(changes.get("accountant", plan.accountant)),
                                   neighbouring=str(changes["neighbouring"]),
                                   target_epsilon=None, max_steps=None)
    return new_settings, new_plan, sorted(changes)
