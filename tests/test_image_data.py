"""Image readers on tiny generated files: ImageFolder, save_to_disk, a table of paths, IDX; sampling, modes,
sizes, and which paths count as images."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from dpaudit.errors import DataError
from dpaudit.image_data import is_image_data, load_image_dataset
from dpaudit.image_dataset import image_content_hash


def _png(path, value, size=(6, 5), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        arr = np.full((size[1], size[0]), value, dtype=np.uint8)
    else:
        arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        arr[..., 0] = value
    Image.fromarray(arr, mode).save(path)


def image_folder(root, per_class=3, classes=("cat", "dog")):
    for c, cls in enumerate(classes):
        for i in range(per_class):
            _png(root / cls / f"{i}.png", 10 * c + i)
    return root


def test_image_folder_labels_are_sorted_subfolders_and_pixels_decode(tmp_path):
    root = image_folder(tmp_path / "imgs", classes=("dog", "cat"))
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / ".hidden.png").write_bytes(b"junk")
    ds = load_image_dataset(root)
    assert ds.label_names == ("cat", "dog") and ds.pixels.shape == (6, 5, 6, 1) and ds.pixels.dtype == np.uint8
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.pixels[:, 0, 0, 0].tolist() == [10, 11, 12, 0, 1, 2]  # cat = the folder made second, value 10 + i
    assert ds.sha256 == image_content_hash(ds.pixels, ds.labels)


def test_max_examples_takes_the_text_loaders_seeded_subset(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=5)
    full = load_image_dataset(root)
    sub = load_image_dataset(root, max_examples=4, seed=3)
    chosen = np.sort(np.random.default_rng(3).choice(10, size=4, replace=False))
    assert np.array_equal(sub.pixels, full.pixels[chosen]) and np.array_equal(sub.labels, full.labels[chosen])
    assert sub.label_names == full.label_names


def test_grey_and_colour_mix_becomes_rgb_and_image_size_resizes(tmp_path):
    root = tmp_path / "imgs"
    _png(root / "a" / "0.png", 50)
    _png(root / "b" / "0.png", 200, mode="RGB", size=(9, 7))
    with pytest.raises(DataError, match=r"differ in size.*data\.image_size") as err:
        load_image_dataset(root)
    assert "\n" not in str(err.value)
    ds = load_image_dataset(root, image_size=4)
    assert ds.pixels.shape == (2, 4, 4, 3)
    assert ds.pixels[0].tolist() == np.full((4, 4, 3), 50).tolist()  # grey repeated over 3 channels
    assert ds.pixels[1, ..., 0].min() == 200 and ds.pixels[1, ..., 1:].max() == 0


def test_save_to_disk_with_image_and_classlabel_columns(tmp_path):
    datasets = pytest.importorskip("datasets")
    imgs = [Image.fromarray(np.full((4, 4), v, dtype=np.uint8), "L") for v in (1, 2, 3, 4)]
    features = datasets.Features({"img": datasets.Image(), "y": datasets.ClassLabel(names=["no", "yes"])})
    datasets.Dataset.from_dict({"img": imgs, "y": [1, 0, 1, 0]}, features=features).save_to_disk(tmp_path / "hf")
    assert is_image_data(str(tmp_path / "hf"), image_column="img")
    assert not is_image_data(str(tmp_path / "hf"), image_column="image")
    ds = load_image_dataset(tmp_path / "hf", image_column="img", label_column="y")
    assert ds.label_names == ("no", "yes") and ds.labels.tolist() == [1, 0, 1, 0]
    assert ds.pixels[:, 0, 0, 0].tolist() == [1, 2, 3, 4] and ds.pixels.shape == (4, 4, 4, 1)
    with pytest.raises(DataError, match="not an Image column"):
        load_image_dataset(tmp_path / "hf", image_column="y", label_column="img")


def test_csv_of_relative_paths_with_numeric_labels(tmp_path):
    image_folder(tmp_path / "pics")
    rows = [f"pics/{c}/{i}.png,{n}" for n, c in enumerate(("cat", "dog")) for i in range(3)]
    (tmp_path / "t.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    assert is_image_data(str(tmp_path / "t.csv"), image_column="file")
    ds = load_image_dataset(tmp_path / "t.csv", image_column="file")
    assert ds.label_names == ("0", "1") and ds.labels.tolist() == [0, 0, 0, 1, 1, 1] and len(ds) == 6


def _idx(path, arr):
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_gz_pair(tmp_path):
    px = np.arange(4 * 3 * 2, dtype=np.uint8).reshape(4, 3, 2)
    _idx(tmp_path / "x-images-idx3-ubyte.gz", px)
    _idx(tmp_path / "x-labels-idx1-ubyte.gz", np.array([3, 7, 3, 7]))
    assert is_image_data(str(tmp_path / "x-images-idx3-ubyte.gz"))
    ds = load_image_dataset(tmp_path / "x-images-idx3-ubyte.gz")
    assert ds.pixels.shape == (4, 3, 2, 1) and np.array_equal(ds.pixels[..., 0], px)
    assert ds.label_names == ("3", "7") and ds.labels.tolist() == [0, 1, 0, 1]


def test_text_sources_stay_text(tmp_path):
    (tmp_path / "t.csv").write_text("text,label,image\nhi,1,x\nyo,0,y\n")
    assert not is_image_data(str(tmp_path / "t.csv"))
    assert not is_image_data("embedded") and is_image_data("embedded-images")
    assert is_image_data(str(tmp_path / "t.csv"), modality="image")
    assert not is_image_data(str(tmp_path), modality="text")
