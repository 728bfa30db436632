"""Synthetic signals with known per-example IN/OUT Gaussians of φ (no models needed).

φ[m, n] ~ N(μ_in(n), σ²) if model m trained on n else N(μ_out(n), σ²). Logits are built so that
``Signals.phi`` equals φ exactly: the true class gets φ + log(C − 1), every other class 0, hence
z_y − logsumexp_{c≠y} z_c = φ.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import norm

from dpaudit.attacks.membership import make_membership
from dpaudit.attacks.signals import Signals


@dataclasses.dataclass(frozen=True, eq=False)
class Synthetic:
    signals: Signals
    membership: np.ndarray
    phi: np.ndarray
    mu_in: np.ndarray
    mu_out: np.ndarray
    sigma: float

    def oracle(self, target: int = 0) -> np.ndarray:
        """Neyman–Pearson log likelihood ratio with the TRUE parameters (higher = member)."""
        obs = self.phi[target]
        return norm.logpdf(obs, self.mu_in, self.sigma) - norm.logpdf(obs, self.mu_out, self.sigma)


def logits_from_phi(phi: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    m, n = phi.shape
    logits = np.zeros((m, n, n_classes))
    logits[:, np.arange(n), labels] = phi + np.log(n_classes - 1)
    return logits


def build_synthetic(*, n: int = 2000, n_models: int = 65, n_classes: int = 3, effect: float = 1.0,
                    sigma: float = 0.5, difficulty: tuple[float, float] = (-4.0, 0.0),
                    vary_effect: bool = False, seed: int = 0) -> Synthetic:
    membership = make_membership(n, n_models, seed=seed)
    rng = np.random.default_rng([seed, 7919])  # independent of the membership stream
    mu_out = rng.uniform(*difficulty, size=n)
    shift = rng.uniform(0.0, 2.0 * effect, size=n) if vary_effect else np.full(n, effect)
    mu_in = mu_out + shift
    phi = np.where(membership, mu_in, mu_out) + sigma * rng.standard_normal((n_models, n))
    labels = rng.integers(0, n_classes, size=n)
    signals = Signals(logits_from_phi(phi, labels, n_classes), labels)
    return Synthetic(signals, membership, phi, mu_in, mu_out, sigma)


@pytest.fixture(scope="session")
def strong_signal() -> Synthetic:
    """Per-example difficulty varies (μ_out ~ U(−4, 0)), constant membership effect 1.0, σ = 0.5."""
    return build_synthetic()


@pytest.fixture(scope="session")
def no_signal() -> Synthetic:
    """μ_in = μ_out: membership has no effect on any signal."""
    return build_synthetic(effect=0.0, n_models=17, seed=3)


@pytest.fixture(scope="session")
def small() -> Synthetic:
    """Small, fast data for conformance checks."""
    return build_synthetic(n=300, n_models=9, n_classes=4, seed=5)


@pytest.fixture(scope="session")
def synth():
    """The :func:`build_synthetic` factory, for tests that need their own parameters."""
    return build_synthetic
