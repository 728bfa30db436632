"""dpaudit.canaries: what a canary is, and that the population keeps them apart."""

from __future__ import annotations

import numpy as np
import pytest

from dpaudit.canaries import UNIQUE_WORDS, make_canaries, with_canaries
from dpaudit.data import TextDataset, _content_hash
from dpaudit.errors import DataError


def _ds(n: int = 60, classes: int = 3, pairs: bool = False) -> TextDataset:
    words = "good bad fine dull bright long short loud quiet warm cold odd".split()
    texts = tuple(f"review {i} says the film was {words[i % 12]} overall" for i in range(n))
    labels = np.arange(n, dtype=np.int64) % classes
    pair = tuple(f"second text {i}" for i in range(n)) if pairs else None
    return TextDataset(texts, labels, tuple(f"c{k}" for k in range(classes)), "toy", "mem",
                       _content_hash(texts, labels, pair), pair)


def test_mislabeled_canaries_leave_the_natural_population_with_another_label():
    ds = _ds()
    natural, c = make_canaries(ds, 10, "mislabeled", seed=0)
    assert len(natural) == 50 and len(c) == 10 and c.kind == "mislabeled"
    assert not set(c.texts) & set(natural.texts)
    assert [ds.texts[i] for i in c.source_index] == list(c.texts)
    assert np.array_equal(ds.labels[c.source_index], c.original_labels)
    assert (c.labels != c.original_labels).all() and c.labels.max() < 3


def test_new_label_is_uniform_over_the_other_classes():
    ds = _ds(n=3000, classes=3)
    _, c = make_canaries(ds, 1500, "mislabeled", seed=1)
    shift = (c.labels - c.original_labels) % 3
    counts = np.bincount(shift, minlength=3)
    assert counts[0] == 0 and abs(counts[1] - counts[2]) < 5 * np.sqrt(1500 / 2)


def test_unique_canaries_are_made_up_from_the_vocabulary():
    ds = _ds(pairs=True)
    natural, c = make_canaries(ds, 8, "unique", seed=0)
    assert natural is ds and (c.source_index == -1).all() and len(c.pairs) == 8
    vocab = {w.lower() for t in ds.texts for w in t.split()}
    for t in c.texts:
        assert len(t.split()) == UNIQUE_WORDS and set(t.split()) <= vocab and t not in ds.texts


def test_seeded_and_population_order():
    ds = _ds()
    a = make_canaries(ds, 5, "mislabeled", seed=3)[1]
    b = make_canaries(ds, 5, "mislabeled", seed=3)[1]
    assert a.texts == b.texts and np.array_equal(a.labels, b.labels)
    natural, c = make_canaries(ds, 5, "mislabeled", seed=3)
    pop = with_canaries(natural, c)
    assert len(pop) == 60 and pop.texts[-5:] == c.texts and np.array_equal(pop.labels[-5:], c.labels)
    assert pop.sha256 != ds.sha256


@pytest.mark.parametrize("kwargs, match", [
    (dict(count=31, kind="mislabeled"), "more than half"),
    (dict(count=0, kind="mislabeled"), "count must be"),
    (dict(count=3, kind="bogus"), "unknown canary kind"),
])
def test_refusals(kwargs, match):
    with pytest.raises(DataError, match=match):
        make_canaries(_ds(), seed=0, **kwargs)


def test_pairs_must_agree():
    _, c = make_canaries(_ds(pairs=True), 3, "unique", seed=0)
    with pytest.raises(DataError, match="text pairs"):
        with_canaries(_ds(), c)
