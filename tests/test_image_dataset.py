"""The image population's content hash: pixels, labels and shape all count."""

import numpy as np

from dpaudit.image_dataset import ImageDataset, image_content_hash


def _ds(pixels, labels):
    return ImageDataset(pixels, labels, ("a", "b"), "t", "mem", image_content_hash(pixels, labels))


def test_hash_sees_one_pixel_one_label_and_the_shape():
    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, (4, 6, 6, 1), dtype=np.uint8)
    y = np.array([0, 1, 0, 1])
    base = image_content_hash(px, y)
    px2 = px.copy()
    px2[2, 3, 3, 0] ^= 1
    y2 = y.copy()
    y2[0] = 1
    assert image_content_hash(px2, y) != base
    assert image_content_hash(px, y2) != base
    assert image_content_hash(px.reshape(4, 3, 12, 1), y) != base
    ds = _ds(px, y)
    assert len(ds) == 4 and ds.num_classes == 2 and ds.image_shape == (6, 6, 1)
