"""Which modality a config audits: the model decides (a vision model reads images, a text model texts).

``"image"`` when ``model.path`` names a vision model (``"embedded-vision"``, or a directory whose
config.json describes an image model, :func:`dpaudit.vision_models.is_vision_config`); else ``"text"``.
``data.path = "embedded-images"`` with a text model is refused with one line. Reads only config.json, so
it is cheap to call before any data is loaded.
"""

from __future__ import annotations

from dpaudit.errors import ConfigError

EMBEDDED_IMAGES = "embedded-images"


def modality(cfg) -> str:
    """``"image"`` or ``"text"`` for a resolved config (see the module docstring)."""
    from dpaudit.vision_models import is_vision_model

    vision = is_vision_model(cfg.model.path)
    if cfg.data.path == EMBEDDED_IMAGES and not vision:
        raise ConfigError("data.path = 'embedded-images' needs a vision model: add --model embedded-vision (or "
                          "model.path = a local Hugging Face vision model directory).")
    return "image" if vision else "text"
