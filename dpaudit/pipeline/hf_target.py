"""A target that is a local Hugging Face sequence-classification directory, whatever trained it.

Loaded with ``AutoModelForSequenceClassification.from_pretrained(dir, trust_remote_code=False)`` and its own
tokenizer; a directory that declares custom code (``auto_map``) is refused (:func:`dpaudit.models.resolve_model_dir`).
Scoring needs no bias rule: the model's logits on the population are its outputs. The label count must equal
the dataset's classes; when the model's ``id2label`` names are exactly the dataset's labels, its columns are
put in the dataset's class order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from dpaudit.errors import CheckpointError


def dir_sha256(path: Path) -> str:
    """Content hash of a directory: sha256 over (relative name, file sha256) of every regular file, sorted."""
    from dpaudit.rundir import sha256_file

    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
        h.update(f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\n".encode("utf-8"))
    return h.hexdigest()


def _column_order(config, label_names: list[str]) -> list[int]:
    """Model column of each dataset class (identity unless the model names the same labels in another order)."""
    names = [str(config.id2label.get(i, "")) for i in range(config.num_labels)] if config.id2label else []
    if sorted(names) == sorted(label_names) and len(set(names)) == len(names):
        return [names.index(label) for label in label_names]
    return list(range(config.num_labels))


def check_labels(path: Path, num_classes: int, *, images: bool = False) -> None:
    """Refuse a directory that is not a sequence classifier (``architectures`` in its config.json names no
    ``*ForSequenceClassification``: a bare encoder would be audited with a randomly initialised head) — with
    ``images``, no ``*ForImageClassification`` — or whose label count differs from the data's classes (reads
    config.json only)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    names = [a for a in (config.architectures or []) if isinstance(a, str)]
    kind, auto = ("an image", "AutoModelForImageClassification") if images else \
        ("a sequence", "AutoModelForSequenceClassification")
    if not any(a.endswith("ForImageClassification" if images else "ForSequenceClassification") for a in names):
        raise CheckpointError(f"target model '{path}' is not {kind} classifier (architectures: "
                              f"{', '.join(names)[:120] or 'none stated'}); give a directory saved from an "
                              f"{auto}, with its trained classification head.")
    if int(config.num_labels) != num_classes:
        raise CheckpointError(f"target model '{path}' has {config.num_labels} labels; the dataset has {num_classes} "
                              f"classes; audit it on the data it was trained for.")


def hf_logits(path: Path, ds, *, max_length: int, batch_size: int, device) -> np.ndarray:
    """The classifier's logits (N, C) float32 on the population ``ds`` (texts or text pairs, tokenised with the
    directory's own tokenizer under the same character budget as training), columns in the dataset's class order."""
    from dpaudit.models import quiet_hf_loading, resolve_model_dir
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.full import classifier_logits

    if hasattr(ds, "pixels"):  # an ImageDataset: the directory is an image classifier
        return _image_logits(path, ds, batch_size=batch_size, device=device)
    resolve_model_dir(path, max_length=max_length)  # refuses auto_map; max_length must fit its positions
    label_names = list(ds.label_names)
    check_labels(path, len(label_names))
    with quiet_hf_loading(path, "the target classifier", "with its tokenizer"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            path, local_files_only=True, trust_remote_code=False, output_loading_info=True)
    _refuse_missing(path, loading)
    model.to(device).eval()
    encoded = EncodedTexts.from_dataset(ds, tokenizer, max_length=max_length)
    logits = classifier_logits(model, encoded, device=device, batch_size=batch_size)
    if logits is None:
        logits = np.zeros((0, len(label_names)), dtype=np.float32)
    return logits[:, _column_order(model.config, label_names)].astype(np.float32)


def _refuse_missing(path: Path, loading: dict) -> None:
    missing = list(loading.get("missing_keys") or [])
    if missing:  # a head transformers had to initialise at random: the audit would score noise
        raise CheckpointError(f"target model '{path}' lacks trained weights for {len(missing)} parameter(s) (e.g. "
                              f"{str(missing[0])[:80]}) that would be initialised at random; give the classifier's "
                              f"complete checkpoint.")


def _image_logits(path: Path, ds, *, batch_size: int, device) -> np.ndarray:
    """An ``AutoModelForImageClassification`` directory's logits (N, C) on an ImageDataset, preprocessed by the
    directory's own image processor (or the stated default, :mod:`trainers.image_batching`)."""
    from dpaudit.models import quiet_hf_loading, resolve_model_dir
    from dpaudit.trainers.full import classifier_logits
    from dpaudit.vision_models import image_preprocessor

    resolve_model_dir(path)  # refuses auto_map
    label_names = list(ds.label_names)
    check_labels(path, len(label_names), images=True)
    with quiet_hf_loading(path, "the target image classifier"):
        from transformers import AutoModelForImageClassification

        model, loading = AutoModelForImageClassification.from_pretrained(
            path, local_files_only=True, trust_remote_code=False, output_loading_info=True)
    _refuse_missing(path, loading)
    model.to(device).eval()
    encoded = image_preprocessor(Path(path), model.config).encode(ds)
    logits = classifier_logits(model, encoded, device=device, batch_size=batch_size)
    if logits is None:
        logits = np.zeros((0, len(label_names)), dtype=np.float32)
    return logits[:, _column_order(model.config, label_names)].astype(np.float32)
