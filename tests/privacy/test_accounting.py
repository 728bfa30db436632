"""Tests for dpaudit.privacy.accounting and dpaudit.privacy.profile (theoretical accounting)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import dpaudit.privacy as privacy
from dpaudit.errors import ConfigError, PrivacyError
from dpaudit.privacy import (
    ACCOUNTANTS,
    AccountingResult,
    NeighbouringRelation,
    PrivacyProfile,
    account,
    calibrate_noise,
    check_delta,
    compute_epsilon,
    create_accountant,
    default_delta,
    default_epsilon_grid,
    epsilon_from_history,
    max_steps,
    privacy_profile,
    register_accountant,
    roc_ceiling,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Optimal order is the:UserWarning"),
    pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning"),  # opacus PRV, q=1
]


def _opacus_epsilon(name: str, sigma: float, q: float, steps: int, delta: float) -> float:
    """ε from opacus's own accountant, stepped one step at a time like the trainer does."""
    from opacus.accountants import PRVAccountant, RDPAccountant

    acc = {"prv": PRVAccountant, "rdp": RDPAccountant}[name]()
    for _ in range(steps):
        acc.step(noise_multiplier=sigma, sample_rate=q)
    return acc.get_epsilon(delta=delta)


@pytest.mark.parametrize("name", ["prv", "rdp"])
@pytest.mark.parametrize(
    ("q", "sigma", "steps"), [(0.01, 1.0, 100), (0.05, 0.8, 30), (0.2, 2.0, 50), (1.0, 5.0, 10)]
)
def test_compute_epsilon_equals_opacus(name, q, sigma, steps):
    got = compute_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=1e-5,
                          accountant=name, neighbouring="add_remove")
    assert got == pytest.approx(_opacus_epsilon(name, sigma, q, steps, 1e-5), rel=1e-12)


def test_compute_epsilon_pinned_literature_value():
    # opacus tests/accountants_test.py::test_rdp_accountant: σ=1.5, q=0.04, 90 epochs = int(90/0.04)
    # = 2250 steps, δ=1e-5 → ε = 7.32911117143 (RDP).
    eps = compute_epsilon(noise_multiplier=1.5, sample_rate=0.04, steps=2250, delta=1e-5,
                          accountant="rdp", neighbouring="add_remove")
    assert eps == pytest.approx(7.32911117143, abs=1e-9)


@pytest.mark.parametrize("name", sorted(ACCOUNTANTS))
def test_compute_epsilon_edge_cases_are_exact(name):
    """Conformance for every registered accountant: no release → 0.0, non-private → inf."""
    kw = dict(delta=1e-5, accountant=name, neighbouring="add_remove")
    assert compute_epsilon(noise_multiplier=1.0, sample_rate=0.1, steps=0, **kw) == 0.0
    assert compute_epsilon(noise_multiplier=0.0, sample_rate=0.1, steps=0, **kw) == 0.0
    assert compute_epsilon(noise_multiplier=1.0, sample_rate=0.0, steps=10, **kw) == 0.0
    assert compute_epsilon(noise_multiplier=0.0, sample_rate=0.1, steps=10, **kw) == math.inf
    assert isinstance(compute_epsilon(noise_multiplier=1.0, sample_rate=0.0, steps=10, **kw), float)


def test_compute_epsilon_validates_arguments():
    with pytest.raises(ConfigError, match=r"delta must be in \(0.0, 1.0\), got delta=0"):
        compute_epsilon(noise_multiplier=1.0, sample_rate=0.1, steps=1, delta=0)
    with pytest.raises(ConfigError, match="sample_rate must be in"):
        compute_epsilon(noise_multiplier=1.0, sample_rate=1.5, steps=1, delta=1e-5)
    with pytest.raises(TypeError, match="steps must be an integer"):
        compute_epsilon(noise_multiplier=1.0, sample_rate=0.1, steps=1.5, delta=1e-5)


def test_epsilon_from_history_heterogeneous_matches_opacus():
    from opacus.accountants import PRVAccountant

    history = [(1.0, 0.02, 20), (2.0, 0.05, 30)]
    acc = PRVAccountant()
    for sigma, q, n in history:
        for _ in range(n):
            acc.step(noise_multiplier=sigma, sample_rate=q)
    assert acc.history == history
    # JSON round trip: a checkpoint stores lists, not tuples
    stored = json.loads(json.dumps(history))
    assert epsilon_from_history(stored, delta=1e-5, accountant="prv", neighbouring="add_remove") == pytest.approx(acc.get_epsilon(1e-5), rel=1e-12)
    assert epsilon_from_history([], delta=1e-5) == 0.0


def test_registry_names_and_errors():
    from opacus.accountants import PRVAccountant, RDPAccountant

    assert {"prv", "rdp"} <= set(ACCOUNTANTS)
    assert isinstance(create_accountant("prv"), PRVAccountant)
    assert isinstance(create_accountant("rdp"), RDPAccountant)
    with pytest.raises(ConfigError, match=r"accountant must be one of \{pld, prv, rdp.*got accountant='gdpx'"):
        create_accountant("gdpx")
    with pytest.raises(ConfigError, match="already registered"):
        register_accountant("prv")(type(ACCOUNTANTS["prv"]))
    original = ACCOUNTANTS["rdp"]
    try:
        register_accountant("rdp", force=True)(type(original))
        assert isinstance(ACCOUNTANTS["rdp"], type(original))
    finally:
        ACCOUNTANTS.register("rdp", original, force=True)


@pytest.mark.parametrize(("name", "target"), [("prv", 2.0), ("rdp", 2.0)])
def test_calibrate_noise_round_trip(name, target):
    kw = dict(delta=1e-5, sample_rate=0.02, steps=50, accountant=name, neighbouring="add_remove")
    tol = 0.01
    sigma = calibrate_noise(target_epsilon=target, tol=tol, **kw)
    eps = compute_epsilon(noise_multiplier=sigma, **kw)
    assert eps <= target  # pessimistic rounding
    assert compute_epsilon(noise_multiplier=sigma - tol, **kw) > target  # within tol of the smallest σ


def test_calibrate_noise_no_release_needs_no_noise():
    assert calibrate_noise(target_epsilon=1.0, delta=1e-5, sample_rate=0.0, steps=10) == 0.0
    assert calibrate_noise(target_epsilon=1.0, delta=1e-5, sample_rate=0.1, steps=0) == 0.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_calibrate_noise_rejects_bad_target(bad):
    with pytest.raises(PrivacyError, match="target_epsilon must be in"):
        calibrate_noise(target_epsilon=bad, delta=1e-5, sample_rate=0.01, steps=10)


def test_calibrate_noise_unreachable_says_fix():
    # PRV cannot report ε below its 0.01 discretisation error, whatever σ.
    with pytest.raises(PrivacyError, match="unreachable.*increase epsilon, lower the sampling rate"):
        calibrate_noise(target_epsilon=0.005, delta=1e-5, sample_rate=0.01, steps=10, accountant="prv",
                        neighbouring="add_remove")


@pytest.mark.parametrize("name", ["prv", "rdp"])
def test_max_steps_is_the_largest_within_budget(name):
    kw = dict(noise_multiplier=2.0, sample_rate=0.05, delta=1e-5, accountant=name, neighbouring="add_remove")
    n = max_steps(target_epsilon=1.0, **kw)
    assert n > 0
    assert compute_epsilon(steps=n, **kw) <= 1.0 < compute_epsilon(steps=n + 1, **kw)


def test_max_steps_edge_cases():
    assert max_steps(noise_multiplier=0.0, sample_rate=0.1, target_epsilon=1.0, delta=1e-5) == 0
    with pytest.raises(PrivacyError, match="unbounded"):
        max_steps(noise_multiplier=1.0, sample_rate=0.0, target_epsilon=1.0, delta=1e-5)


def test_default_and_checked_delta():
    assert default_delta(1000) == pytest.approx(1e-4)
    assert check_delta(1e-4, 1000) == 1e-4
    with pytest.raises(PrivacyError, match=r"1/N.*releasing a whole record.*1/\(10·N\)=0.0001.*--force"):
        check_delta(1e-3, 1000)
    with pytest.warns(UserWarning, match="releasing a whole record"):
        assert check_delta(1e-3, 1000, force=True) == 1e-3
    with pytest.raises(ConfigError, match=r"delta must be in \(0.0, 1.0\)"):
        check_delta(0.0, 1000)
    with pytest.raises(ConfigError, match="n_examples must be in"):
        default_delta(0)


def test_accounting_result_round_trip():
    res = account(noise_multiplier=1.0, sample_rate=0.02, steps=50, delta=1e-5, accountant="rdp", neighbouring="add_remove")
    assert res.neighbouring is NeighbouringRelation.ADD_REMOVE
    d = json.loads(json.dumps(res.to_dict()))
    assert d["neighbouring"] == "add_remove"
    assert AccountingResult.from_dict(d) == res


@pytest.mark.parametrize(("name", "rtol"), [("prv", 0.05), ("rdp", 1e-6)])
def test_profile_is_consistent_with_get_epsilon(name, rtol):
    kw = dict(noise_multiplier=1.0, sample_rate=0.02, steps=100, accountant=name, neighbouring="add_remove")
    delta0 = 1e-5
    eps0 = compute_epsilon(delta=delta0, **kw)
    prof = privacy_profile(epsilons=default_epsilon_grid(eps0), **kw)
    d = dict(zip(prof.epsilons, prof.deltas))[eps0]
    assert d == pytest.approx(delta0, rel=rtol)
    assert np.all(np.diff(prof.deltas) <= 0)
    assert len(prof.epsilons) == 60


def test_profile_edge_cases_and_round_trip():
    grid = [0.0, 0.5, 1.0]
    none = privacy_profile(noise_multiplier=1.0, sample_rate=0.0, steps=10, epsilons=grid)
    assert none.deltas == (0.0, 0.0, 0.0)
    leak = privacy_profile(noise_multiplier=0.0, sample_rate=0.5, steps=10, epsilons=grid)
    assert leak.deltas == (1.0, 1.0, 1.0)
    prof = privacy_profile(noise_multiplier=1.0, sample_rate=0.05, steps=10, epsilons=grid,
                           accountant="rdp", neighbouring="add_remove")
    assert PrivacyProfile.from_dict(json.loads(json.dumps(prof.to_dict()))) == prof
    with pytest.raises(ConfigError, match="epsilons must be"):
        privacy_profile(noise_multiplier=1.0, sample_rate=0.05, steps=10, epsilons=[-1.0])


def test_roc_ceiling_bounds():
    prof = privacy_profile(noise_multiplier=1.0, sample_rate=0.05, steps=50,
                           epsilons=default_epsilon_grid(2.0))
    fpr = np.logspace(-5, 0, 50)
    ceil = roc_ceiling(fpr, prof)
    assert ceil.shape == fpr.shape
    assert np.all(ceil >= fpr) and np.all(ceil <= 1.0)
    assert np.all(np.diff(ceil) >= -1e-12)  # non-decreasing in FPR
    assert ceil[0] < 0.01  # a private mechanism really constrains low-FPR attacks


def test_roc_ceiling_non_private_is_one():
    prof = privacy_profile(noise_multiplier=0.0, sample_rate=0.5, steps=10, epsilons=[0.1, 1.0, 10.0])
    assert np.all(roc_ceiling([0.0, 1e-3, 0.5, 1.0], prof) == 1.0)


def test_roc_ceiling_pure_dp_hand_computed():
    # ε = 1, δ = 0: TPR ≤ min{e·FPR, 1 − e^{−1}(1 − FPR)}
    prof = PrivacyProfile(epsilons=(1.0,), deltas=(0.0,), accountant="hand", noise_multiplier=0.0,
                          sample_rate=0.0, steps=0)
    got = roc_ceiling(np.array([0.0, 0.1, 0.5, 1.0]), prof)
    want = [0.0, math.e * 0.1, 1 - math.exp(-1) * 0.5, 1.0]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert roc_ceiling(0.1, prof).shape == ()
    with pytest.raises(ConfigError, match=r"fpr must be in \[0, 1\]"):
        roc_ceiling([1.5], prof)


def test_privacy_package_never_imports_torch():
    code = "import sys, dpaudit.privacy; sys.exit(int('torch' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_all_names_exist():
    for name in privacy.__all__:
        assert hasattr(privacy, name), name
