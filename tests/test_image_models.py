"""Vision model directories and the image pipeline's small parts: loading (AutoModel + AutoImageProcessor,
custom code refused), the modality decision, image canaries (the readers: tests/test_image_data.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dpaudit.canaries import make_canaries, with_canaries
from dpaudit.errors import ConfigError, ModelError
from dpaudit.image_dataset import ImageDataset, image_content_hash
from dpaudit.modality import modality
from dpaudit.models import load_backbone
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.image_batching import EncodedImages
from dpaudit.vision_models import is_vision_model

from tests.trainers._vision_tiny import random_pixels, save_tiny_vit, tiny_config


def _cfg(data="x", model="embedded", modality="auto"):
    return SimpleNamespace(data=SimpleNamespace(path=data, split="train", max_examples=None, modality=modality,
                                                image_column="image", text_column="text"),
                           model=SimpleNamespace(path=model), train=SimpleNamespace(seed=0))


def _images(n=30, classes=3, size=8, channels=1, seed=0) -> ImageDataset:
    pixels = random_pixels(n, size, channels, seed)
    labels = np.arange(n, dtype=np.int64) % classes
    return ImageDataset(pixels, labels, tuple(f"c{i}" for i in range(classes)), "synthetic", "memory",
                        image_content_hash(pixels, labels))


def test_a_classifier_checkpoint_loads_as_backbone_with_its_processor(tmp_path):
    save_tiny_vit(tmp_path / "vit", image_size=16)
    backbone, prep, info = load_backbone(tmp_path / "vit")
    assert type(backbone).__name__ == "ViTModel" and prep.processor is not None and len(info.sha256) == 64
    enc = prep.encode(_images(size=12))  # 12×12 grey → the processor resizes to 16×16
    assert isinstance(enc, EncodedImages) and enc.pixel_values.shape == (30, 1, 16, 16)
    assert float(enc.pixel_values.min()) >= -1.0 and float(enc.pixel_values.max()) <= 1.0
    clf = BankedClassifier.from_backbone(backbone, num_models=2, num_labels=3)
    x, _ = enc.collate(np.array([0, 1]), torch.device("cpu"))
    assert clf(x, None, torch.tensor([0, 1])).shape == (2, 3)


def test_without_a_processor_the_stated_default_is_used(tmp_path):
    save_tiny_vit(tmp_path / "vit", image_size=16, with_processor=False)
    _, prep, _ = load_backbone(tmp_path / "vit")
    assert prep.processor is None and prep.image_size == 16 and "(x-0.5)/0.5" in prep.description


@pytest.mark.parametrize("file", ["config.json", "preprocessor_config.json"])
def test_custom_code_in_a_vision_directory_is_refused(tmp_path, file):
    d = save_tiny_vit(tmp_path / "vit")
    data = json.loads((d / file).read_text())
    data["auto_map"] = {"AutoModel": "evil.Model"}
    (d / file).write_text(json.dumps(data))
    with pytest.raises(ModelError, match=f"auto_map in {file}"):
        load_backbone(d)


def test_the_model_decides_the_modality(tmp_path):
    d = save_tiny_vit(tmp_path / "vit")
    assert is_vision_model(d) and is_vision_model("embedded-vision") and not is_vision_model("embedded")
    assert modality(_cfg(model=str(d))) == "image" and modality(_cfg()) == "text"
    with pytest.raises(ConfigError, match="--model embedded-vision"):
        modality(_cfg(data="embedded-images"))
    with pytest.raises(ConfigError, match="--data embedded-images"):  # the default text data, a vision model
        modality(_cfg(data="embedded", model="embedded-vision"))
    assert modality(_cfg(data="embedded-images", model="embedded-vision")) == "image"
    assert modality(_cfg(data="table.csv", model="embedded-vision")) == "image"  # ambiguous: the model decides
    with pytest.raises(ConfigError, match="data.modality = 'image'.*--model embedded-vision"):
        modality(_cfg(data="table.csv", modality="image"))
    tiny_config("resnet").save_pretrained(tmp_path / "resnet")
    assert is_vision_model(tmp_path / "resnet")


@pytest.mark.parametrize("kind", ["mislabeled", "unique"])
def test_image_canaries(kind):
    ds = _images()
    natural, canaries = make_canaries(ds, 6, kind, seed=1)
    assert len(canaries) == 6 and canaries.pixels.shape == (6, 8, 8, 1) and canaries.texts == ()
    pop = with_canaries(natural, canaries)
    assert len(pop) == len(natural) + 6 and np.array_equal(pop.pixels[-6:], canaries.pixels)
    assert pop.sha256 == image_content_hash(pop.pixels, pop.labels)
    if kind == "mislabeled":
        assert len(natural) == 24 and np.all(canaries.labels != canaries.original_labels)
        assert np.array_equal(canaries.pixels, ds.pixels[canaries.source_index])
    else:
        assert len(natural) == 30 and np.all(canaries.source_index == -1)
    again = make_canaries(ds, 6, kind, seed=1)[1]
    assert np.array_equal(again.pixels, canaries.pixels)  # fixed before training, from the seed
