"""Which modality a config audits: images or texts, decided once, in the same way for every command.

1. ``data.modality = "image"`` or ``"text"`` says what the data is.
2. ``"auto"`` (the default): the data decides when it says so — ``embedded-images``, an IDX file, an image
   folder, a saved dataset with an ``Image`` column or a table with ``data.image_column`` and no
   ``data.text_column`` are images; ``embedded`` (Rotten Tomatoes) is text
   (:func:`dpaudit.image_data.is_image_data`).
3. Anything else (a table or saved dataset that could be either): the model decides — a vision model
   (``"embedded-vision"``, or a directory whose config.json states ``num_channels`` and no ``vocab_size``,
   :func:`dpaudit.vision_models.is_vision_model`) reads images, a text model texts.

Images with a text model, or texts with a vision model, is a one-line :class:`ConfigError` naming the fix.
Reads only config.json and a table's header, so it is cheap to call before any data is loaded.
"""

from __future__ import annotations

from dpaudit.errors import ConfigError



def data_modality(data) -> str | None:
    """``"image"``/``"text"`` when ``data`` (a :class:`~dpaudit.config.DataConfig`) says what it is, else None."""
    from dpaudit.image_data import is_image_data

    if data.modality != "auto":
        return data.modality
    if is_image_data(data.path, image_column=data.image_column, text_column=data.text_column):
        return "image"
    return "text" if data.path in (None, "", "embedded") else None


def modality(cfg) -> str:
    """``"image"`` or ``"text"`` for a resolved config (rules in the module docstring)."""
    from dpaudit.vision_models import is_vision_model

    model = "image" if is_vision_model(cfg.model.path) else "text"
    data = data_modality(cfg.data)
    said = f"data.modality = '{cfg.data.modality}'" if cfg.data.modality != "auto" else "auto-detected"
    if data == "image" and model == "text":
        other = "" if cfg.data.path == "embedded-images" else ", or set data.modality = 'text'"
        raise ConfigError(f"data.path = '{cfg.data.path}' is images ({said}) but model.path = '{cfg.model.path}' "
                          f"is a text model: add --model embedded-vision (or a local Hugging Face vision model "
                          f"directory){other}.")
    if data == "text" and model == "image":
        raise ConfigError(f"model.path = '{cfg.model.path}' is a vision model but data.path = '{cfg.data.path}' "
                          f"is text ({said}): add --data embedded-images (or an image folder, table or IDX "
                          f"file), or use a text model.")
    return data or model
