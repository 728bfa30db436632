from __future__ import annotations

import numpy as np
import pytest

from dpaudit.attacks.canary import canary_audit, guess_counts
from dpaudit.errors import DataError


def _canaries(n, effect, seed=0):
    rng = np.random.default_rng(seed)
    included = rng.random(n) < 0.5
    return rng.normal(size=n) + effect * included, included


def test_strong_signal_gives_large_epsilon():
    scores, included = _canaries(2000, effect=8.0)
    res = canary_audit(scores, included, delta=1e-5, significance=0.05)
    assert res.status == "ok" and res.epsilon_lb > 1.0


def test_no_signal_gives_small_epsilon():
    scores, included = _canaries(2000, effect=0.0)
    res = canary_audit(scores, included, delta=1e-5, significance=0.05)
    assert res.epsilon_lb < 0.5


def test_guess_counts_fixed_in_advance():
    assert guess_counts(1000, 0.1) == 50
    assert guess_counts(20, 0.1) == 1
    with pytest.raises(DataError, match=r"use m ≥ 20 canaries"):
        guess_counts(19, 0.1)


def test_canary_input_errors():
    with pytest.raises(DataError, match="included must be a bool array"):
        canary_audit([0.0, 1.0], [0, 1], delta=1e-5, significance=0.05)
    with pytest.raises(DataError, match="1-D of equal length"):
        canary_audit([0.0, 1.0], np.array([True]), delta=1e-5, significance=0.05)
    with pytest.raises(DataError, match="canary scores are NaN"):
        canary_audit(np.array([np.nan] * 40), np.ones(40, bool), delta=1e-5, significance=0.05)
