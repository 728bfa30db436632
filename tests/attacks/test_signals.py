from __future__ import annotations

import numpy as np
import pytest

from dpaudit.attacks.signals import Signals
from dpaudit.errors import DataError


def _naive(logits: np.ndarray, labels: np.ndarray):
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    p_y = p[:, np.arange(labels.size), labels]
    return np.log(p_y), -np.log(p_y), np.log(p_y) - np.log1p(-p_y)


def test_derived_signals_match_naive_formulas():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 50, 5))
    labels = rng.integers(0, 5, size=50)
    s = Signals(logits, labels)
    log_p, loss, phi = _naive(logits, labels)
    np.testing.assert_allclose(s.log_prob_true, log_p, atol=1e-12)
    np.testing.assert_allclose(s.loss, loss, atol=1e-12)
    np.testing.assert_allclose(s.phi, phi, atol=1e-10)
    assert s.loss.shape == s.phi.shape == (3, 50)
    assert (s.n_models, s.n_examples, s.n_classes) == (3, 50, 5)


def test_phi_is_finite_where_probability_rounds_to_one():
    logits = np.array([[[60.0, 0.0, -3.0], [-40.0, 0.0, 0.0]]], dtype=np.float32)
    s = Signals(logits, np.array([0, 0]))
    other = np.log(1.0 + np.exp(-3.0))
    np.testing.assert_allclose(s.phi[0], [60.0 - other, -40.0 - np.log(2.0)], rtol=1e-6)
    assert np.isfinite(s.phi).all() and np.isfinite(s.loss).all()


def test_derived_arrays_are_read_only():
    s = Signals(np.zeros((1, 2, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="read-only"):
        s.phi[0, 0] = 1.0


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    s = Signals(rng.normal(size=(2, 7, 3)).astype(np.float32), rng.integers(0, 3, size=7))
    path = s.save(tmp_path / "signals.npz")
    back = Signals.load(path)
    np.testing.assert_array_equal(back.logits, s.logits)
    np.testing.assert_array_equal(back.labels, s.labels)
    assert back.logits.dtype == np.float32


def test_load_errors_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="signals file not found"):
        Signals.load(tmp_path / "missing.npz")
    np.savez_compressed(tmp_path / "partial.npz", logits=np.zeros((1, 2, 2)))
    with pytest.raises(DataError, match=r"lacks \['labels'\]"):
        Signals.load(tmp_path / "partial.npz")
    np.savez(tmp_path / "objects.npz", logits=np.array([object()], dtype=object), labels=np.zeros(1, int))
    with pytest.raises(DataError, match="cannot read signals file"):
        Signals.load(tmp_path / "objects.npz")


@pytest.mark.parametrize(
    ("logits", "labels", "error", "match"),
    [
        (np.zeros((2, 3)), np.zeros(2, int), DataError, "shape \\(models, examples, classes\\)"),
        (np.zeros((1, 3, 1)), np.zeros(3, int), DataError, "≥2 classes"),
        (np.zeros((1, 3, 2)), np.zeros(2, int), DataError, "labels must have shape \\(3,\\)"),
        (np.zeros((1, 3, 2)), np.array([0, 1, 2]), DataError, "labels must be in \\[0, 1\\]"),
        (np.full((1, 3, 2), np.nan), np.zeros(3, int), DataError, "logits must be finite"),
        (np.zeros((1, 3, 2), int), np.zeros(3, int), TypeError, "logits must be a float array"),
        (np.zeros((1, 3, 2)), np.zeros(3), TypeError, "labels must be an integer array"),
    ],
)
def test_invalid_signals(logits, labels, error, match):
    with pytest.raises(error, match=match):
        Signals(logits, labels)
