"""Stage 2: the target — trained here, a dpaudit checkpoint, a Hugging Face classifier dir, or a scores file.

:func:`open_target` reads what must be checked before any work (kind, member ids, the checkpoint's
population and commitment, the classifier's label count, the content hash). :func:`target_stage` gives the
target's logits (N, C) on the population as ``target_logits.npy``, recorded with the hash of the target's
content: a swapped file or directory is scored again, never reused. A target trained here has no file of
its own: it is row 0 of the shadow bank (stage 3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpaudit.config import Config
from dpaudit.errors import CheckpointError, ConfigError
from dpaudit.pipeline.external import TargetMembers, check_target_population, read_member_ids
from dpaudit.pipeline.scores import SCORE_SUFFIXES, read_scores
from dpaudit.pipeline.stage import commit, npy_bytes, reusable
from dpaudit.rundir import RunDir, sha256_file

logger = logging.getLogger(__name__)

#: How the target's outputs were obtained, per kind (``run.target.obtained`` in ``audit.json``).
OBTAINED = {"train": "trained and scored by dpaudit in this run",
            "checkpoint": "computed by dpaudit from the checkpoint",
            "hf": "computed by dpaudit from the Hugging Face classifier",
            "scores": "supplied by the user as {scores_kind}"}


@dataclass(frozen=True)
class TargetSource:
    """The model under audit. ``sha256``: its content hash (file or directory); ``meta``: a checkpoint's."""

    kind: str
    path: Path | None
    members: TargetMembers | None
    sha256: str | None
    meta: dict | None = None

    @property
    def external(self) -> bool:
        return self.kind != "train"


def target_kind(cfg: Config) -> str:
    """``target.kind``, resolved from ``target.path`` when ``auto``.

    Raises:
        ConfigError: a path that is missing or of no known kind, a kind without a path, or no member ids.
    """
    t = cfg.target
    if t.path is None:
        if t.kind not in ("auto", "train"):
            raise ConfigError(f"target.kind = '{t.kind}' needs target.path (--target PATH).")
        if t.members is not None:
            raise ConfigError("target.members is for a target trained elsewhere; give target.path (--target) too.")
        return "train"
    p = Path(t.path)
    if not p.exists():
        raise ConfigError(f"target '{p}' does not exist; give a dpaudit models.safetensors, a Hugging Face "
                          f"classifier directory, or a scores file ({', '.join(SCORE_SUFFIXES)}).")
    kind = t.kind
    if kind == "auto":
        kind = "hf" if p.is_dir() else "checkpoint" if p.suffix == ".safetensors" else (
            "scores" if p.suffix.lower() in SCORE_SUFFIXES else None)
        if kind is None:
            raise ConfigError(f"cannot tell what target '{p}' is; set target.kind (--target-kind) to checkpoint, "
                              f"hf or scores.")
    if kind == "train":
        raise ConfigError("target.kind = 'train' trains the target here; remove target.path.")
    if t.members is None and t.canaries is None:
        raise ConfigError(f"auditing a model trained elsewhere needs target.members (--target-members): its "
                          f"training-example ids, with target.path = '{p.name}' (or the canaries it was trained "
                          f"with: --canaries DIR from `dpaudit canaries make`).")
    return kind


def open_target(cfg: Config, kind: str, ds, backbone_sha256: str) -> TargetSource:
    """Read and check the target before any work (see the module docstring)."""
    if kind == "train":
        return TargetSource("train", None, None, None)
    path, n = Path(cfg.target.path), len(ds)
    members = read_member_ids(cfg.target.members, n)
    if kind == "checkpoint":
        from dpaudit.trainers.checkpoint import read_models

        _, meta = read_models(path, backbone_sha256=backbone_sha256)
        if meta.get("num_models", 1) != 1:
            raise CheckpointError(f"target checkpoint '{path}' holds {meta.get('num_models')} models; give a "
                                  f"single-model checkpoint.")
        check_target_population(meta, members, dataset_sha256=ds.sha256, n=n, where=str(path))
        if meta.get("pooling", "mean") != cfg.model.pooling:
            raise CheckpointError(f"target checkpoint '{path}' was trained with model.pooling = "
                                  f"'{meta.get('pooling', 'mean')}'; set the same model.pooling to audit it.")
        return TargetSource(kind, path, members, sha256_file(path), meta)
    if kind == "hf":
        from dpaudit.models import resolve_model_dir
        from dpaudit.pipeline.hf_target import check_labels, dir_sha256

        resolve_model_dir(path)
        check_labels(path, ds.num_classes, images=hasattr(ds, "pixels"))
        return TargetSource(kind, path, members, dir_sha256(path))
    if path.is_dir():
        raise ConfigError(f"target '{path}' is a directory, not a scores file; use target.kind = 'hf'.")
    if not path.is_file():  # a FIFO or a device would block the hash below forever
        raise ConfigError(f"target '{path}' is not a regular file; give a scores file ({', '.join(SCORE_SUFFIXES)}).")
    return TargetSource(kind, path, members, sha256_file(path))


def _checkpoint_logits(src: TargetSource, cfg: Config, pop, device) -> np.ndarray:
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.checkpoint import read_models
    from dpaudit.trainers.loop import bf16_autocast
    from dpaudit.trainers.predict import predict_logits
    from dpaudit.trainers.recipe import build_classifier

    tables, _ = read_models(src.path, backbone_sha256=pop.info.sha256)
    clf = build_classifier(pop.backbone, cfg, num_models=1, num_labels=pop.ds.num_classes, device=device)
    try:
        clf.load_trainable_state({k: v.to(device) for k, v in tables.items()})
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"target checkpoint '{src.path}' does not fit this backbone and task (missing or "
                              f"mis-shaped table {str(err)[:200]}); was it trained with the same model and "
                              f"labels?") from None
    encoded = EncodedTexts.from_dataset(pop.ds, pop.tokenizer, max_length=cfg.data.max_length)
    # scored like the shadows (dpaudit.pipeline.shadows.bitfit): bf16 under train.autocast
    return predict_logits(clf, encoded, batch_size=cfg.audit.score_batch_size,
                          bf16=bf16_autocast(cfg.train.autocast, device))[0]


def target_stage(run: RunDir, src: TargetSource, cfg: Config, pop, device) -> np.ndarray | None:
    """The target's logits (N, C) float32 (``None`` for a target trained here): reused only if made from
    the same target content, population and scoring settings."""
    if not src.external:
        return None
    inputs = {"kind": src.kind, "target_sha256": src.sha256, "dataset_sha256": pop.ds.sha256,
              "scores_kind": cfg.target.scores_kind if src.kind == "scores" else None,
              "max_length": cfg.data.max_length}
    path = reusable(run, "target_logits.npy", inputs)
    if path is not None:
        return np.load(path, allow_pickle=False)
    ds = pop.ds
    if src.kind == "scores":
        logits = read_scores(src.path, n=len(ds), num_classes=ds.num_classes, kind=cfg.target.scores_kind,
                             texts=list(ds.texts) if hasattr(ds, "texts") else None)
        _warn_if_unordered(logits, ds.labels, src.members.mask, src.path)
    elif src.kind == "hf":
        from dpaudit.pipeline.hf_target import hf_logits

        logits = hf_logits(src.path, ds, max_length=cfg.data.max_length, batch_size=cfg.audit.score_batch_size,
                           device=device)
    else:
        logits = _checkpoint_logits(src, cfg, pop, device)
    commit(run, "target_logits.npy", npy_bytes(np.ascontiguousarray(logits, dtype=np.float32)), inputs)
    return logits


def _warn_if_unordered(logits: np.ndarray, labels: np.ndarray, members: np.ndarray, path: Path) -> None:
    """Say so when a scores file does no better than the majority class on the target's own training
    examples: almost surely scores in another order than the population's (a ``.npy`` has no ids to check)."""
    from dpaudit.protection import majority_baseline

    accuracy = float((logits[members].argmax(1) == labels[members]).mean())
    baseline = majority_baseline(labels[members])
    if accuracy <= baseline:
        logger.warning(f"warning: the target's scores in '{path.name}' are right on {accuracy:.1%} of its own "
                       f"training examples, no better than the majority class ({baseline:.1%}): are they in the "
                       f"population's order (ids as dpaudit loads the data)? A CSV/Parquet with 'id' and 'text' "
                       f"columns is checked.")


def obtained(src: TargetSource, cfg: Config) -> str:
    return OBTAINED[src.kind].format(scores_kind=cfg.target.scores_kind)
