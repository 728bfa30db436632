"""Vision model loading: a local Hugging Face vision checkpoint directory, or the embedded vision backbone.

The modality follows the model: a directory whose ``config.json`` describes an image model (it states
``num_channels`` and has no ``vocab_size``: ViT/DeiT, ConvNeXt, ResNet, …) or ``model.path =
"embedded-vision"`` makes dpaudit read the data as images (:func:`dpaudit.modality.modality`). Loading is
``AutoModel.from_pretrained`` (an ``*ForImageClassification`` checkpoint loads as its backbone; dpaudit adds
a new head, :mod:`trainers.vision`) and ``AutoImageProcessor.from_pretrained`` when the directory has a
``preprocessor_config.json``, with the hub off and ``trust_remote_code=False``; a directory declaring
``auto_map`` (in config.json, tokenizer_config.json or preprocessor_config.json) is refused
(:func:`dpaudit.models.resolve_model_dir`).
"""

from __future__ import annotations

from pathlib import Path

from dpaudit.errors import ModelError

from dpaudit.embedded_vision import EMBEDDED_VISION  # noqa: F401  (the model.path of the embedded backbone)


def embedded_vision_model_dir() -> Path:
    """The embedded vision backbone's directory, every file checked against its pinned sha256
    (:func:`dpaudit.embedded_vision.embedded_vision_dir`)."""
    from dpaudit.embedded_vision import embedded_vision_dir

    return Path(embedded_vision_dir())


def is_vision_config(config: dict) -> bool:
    """Whether a ``config.json`` (as a dict) describes an image model: ``num_channels`` stated, no vocabulary."""
    channels = config.get("num_channels")
    return isinstance(channels, int) and not isinstance(channels, bool) and "vocab_size" not in config


def is_vision_model(path) -> bool:
    """Whether ``model.path`` names a vision model (reads only ``config.json``; False for anything unreadable,
    which :func:`dpaudit.models.resolve_model_dir` then reports)."""
    if path == EMBEDDED_VISION:
        return True
    if path in (None, "", "embedded"):
        return False
    p = Path(path)
    if not (p / "config.json").is_file():
        return False
    from dpaudit.models import _read_json

    try:
        return is_vision_config(_read_json(p, "config.json"))
    except ModelError:
        return False


def image_preprocessor(model_dir: Path, config):
    """The :class:`~trainers.image_batching.ImagePreprocessor` of a vision model directory: its
    ``AutoImageProcessor`` when it has a ``preprocessor_config.json``, else the stated default; ``config``: the
    model's transformers config (``num_channels``, ``image_size``)."""
    from dpaudit.models import quiet_hf_loading
    from dpaudit.trainers.image_batching import ImagePreprocessor

    processor = None
    if (model_dir / "preprocessor_config.json").is_file():
        with quiet_hf_loading(model_dir, "an image processor"):
            from transformers import AutoImageProcessor

            processor = AutoImageProcessor.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    size = getattr(config, "image_size", None)
    size = size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None
    return ImagePreprocessor(num_channels=int(config.num_channels), image_size=size, processor=processor)


def load_vision_backbone(path):
    """Load ``(backbone, ImagePreprocessor, ModelInfo)`` from a local vision model directory (or
    ``"embedded-vision"``); never touches the network and never runs code from the directory."""
    from dpaudit.models import ModelInfo, backbone_sha256, quiet_hf_loading, resolve_model_dir

    model_dir, name = resolve_model_dir(path)
    with quiet_hf_loading(model_dir, "a vision model", "of a vision architecture"):
        from transformers import AutoModel  # after the offline switches are set

        backbone = AutoModel.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    if getattr(backbone, "main_input_name", None) != "pixel_values":
        raise ModelError(f"model in '{model_dir}' ({type(backbone).__name__}) does not read pixel_values; dpaudit "
                         f"needs an image backbone for image data.")
    prep = image_preprocessor(model_dir, backbone.config)
    return backbone, prep, ModelInfo(name=name, source=str(model_dir), sha256=backbone_sha256(model_dir))
