from __future__ import annotations

import numpy as np
import pytest

from dpaudit.attacks.membership import (
    check_population,
    make_membership,
    required_nonmembers,
    required_population,
)
from dpaudit.errors import ConfigError, DataError


def test_shadows_come_in_complementary_pairs():
    m = make_membership(1000, 9, seed=4)
    assert m.shape == (9, 1000) and m.dtype == bool
    for j in range(4):
        assert np.array_equal(m[2 * j + 2], ~m[2 * j + 1])
    assert (m[1:].sum(axis=0) == 4).all()  # every example IN for exactly half of the 8 shadows


def test_target_row_is_independent_bernoulli_half():
    m = make_membership(20_000, 3, seed=1)
    frac = m[0].mean()
    assert abs(frac - 0.5) < 4 * np.sqrt(0.25 / 20_000)
    # the target is not tied to any shadow pair
    assert abs((m[0] == m[1]).mean() - 0.5) < 0.02


def test_membership_is_deterministic_in_seed():
    assert np.array_equal(make_membership(50, 5, seed=2), make_membership(50, 5, seed=2))
    assert not np.array_equal(make_membership(50, 5, seed=2), make_membership(50, 5, seed=3))


@pytest.mark.parametrize(("n_models", "suggested"), [(4, 4), (2, 2), (1, 2), (6, 6)])
def test_odd_or_missing_shadows_are_rejected(n_models, suggested):
    with pytest.raises(ConfigError, match=f"complementary pairs: set num_shadows to an even number, "
                                          f"e.g. {suggested} "):
        make_membership(10, n_models, seed=0)


def test_membership_argument_types():
    with pytest.raises(TypeError, match="n_population must be an integer"):
        make_membership(10.0, 3, seed=0)
    with pytest.raises(ConfigError, match="n_population must be in"):
        make_membership(0, 3, seed=0)


@pytest.mark.parametrize(("fpr", "n_out"), [(1e-3, 1000), (1e-2, 100), (1e-1, 10), (0.3, 4), (1.0, 1)])
def test_required_nonmembers_and_population(fpr, n_out):
    assert required_nonmembers(fpr) == n_out
    assert required_population(fpr) == 2 * n_out


def test_required_nonmembers_rejects_zero():
    with pytest.raises(ConfigError, match=r"fpr must be in \(0.0, 1.0\]"):
        required_nonmembers(0.0)


def test_check_population_names_the_needed_size():
    check_population(2000, (1e-3, 1e-2))
    with pytest.raises(DataError, match=r"FPR=0.001: need N ≥ 2000 examples .* got N=1999"):
        check_population(1999, (1e-1, 1e-3))
