"""Where a model's DP randomness comes from: Poisson sampling and Gaussian noise (docs/design.md, "Security model").

Two sources, one interface (:class:`RandomSource`):

* :class:`SecureRandom` (the default for every model that can be released): every bit comes from the
  operating system's CSPRNG (``os.urandom``: the kernel's ChaCha20 DRBG, keyed from OS entropy). Nothing
  is seeded, no state is kept, so no file dpaudit writes lets anyone regenerate the draws, and a resumed
  run simply draws fresh entropy.
* :class:`SeededRandom` (tests, benchmarks and never-released shadows, only when asked for by name):
  the draws of step ``s`` come from ``numpy.random.Generator(PCG64(SeedSequence([seed, s])))``, so a run
  is reproducible, row k of a bank equals a single-model run with the same seed, and a resume replays
  exactly the draws an uninterrupted run would have made — with no stored generator state.

Gaussian sampling and the floating-point attacks (Mironov 2012, CCS, "On significance of the least
significant bits for differential privacy"; Holohan & Braghin 2021, arXiv 2107.10138 v1; Jin et al. 2022,
arXiv 2112.05307 v1): a textbook sampler's outputs land on a sparse, input-dependent set of doubles,
which can reveal the noiseless value. :class:`SecureRandom` does what opacus' ``secure_mode`` does and a
little more: (1) 53-bit uniforms straight from the CSPRNG; (2) Box–Muller in float64; (3) every noise
coordinate is the sum of four independent N(0, σ²) draws divided by 2 (Holohan & Braghin's mitigation,
the one opacus implements: the sum has the same N(0, σ²) law but no sparse support); (4) the noise is
rounded to float32 only after that sum, when it is added to the float32 clipped sum.
"""

from __future__ import annotations

import math
import os
from typing import Protocol

import numpy as np

_TWO_POW_53 = float(2**53)


class RandomSource(Protocol):
    """Per-model randomness. ``step`` is the 0-based index of the optimizer step being computed."""

    kind: str

    def bernoulli(self, n: int, p: float, *, step: int) -> np.ndarray:
        """Bool (n,): each entry True independently with probability ``p`` (Poisson sampling)."""

    def gaussian(self, n: int, std: float, *, step: int) -> np.ndarray:
        """Float64 (n,): i.i.d. N(0, std²) noise."""


def _os_uniform(n: int) -> np.ndarray:
    """(n,) float64 uniforms on the open interval (0, 1) at 53-bit resolution, from ``os.urandom``."""
    words = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
    return ((words >> np.uint64(11)).astype(np.float64) + 0.5) / _TWO_POW_53


def _box_muller(u: np.ndarray) -> np.ndarray:
    """Standard normals from an even number of (0, 1) uniforms (float64): ``√(−2 ln u₁)·(cos, sin)(2π u₂)``."""
    u1, u2 = u[0::2], u[1::2]
    r = np.sqrt(-2.0 * np.log(u1))
    theta = 2.0 * math.pi * u2
    return np.concatenate([r * np.cos(theta), r * np.sin(theta)])


class SecureRandom:
    """CSPRNG randomness from ``os.urandom``; holds no state (see the module docstring)."""

    kind = "secure"

    def bernoulli(self, n: int, p: float, *, step: int) -> np.ndarray:
        return _os_uniform(n) < p

    def gaussian(self, n: int, std: float, *, step: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0)
        m = 4 * n + (4 * n) % 2
        z = _box_muller(_os_uniform(m))[: 4 * n].reshape(4, n)
        return std * z.sum(axis=0) / 2.0  # four N(0, 1) summed have variance 4


class SeededRandom:
    """Reproducible randomness: step s draws from ``PCG64(SeedSequence([seed, s]))``. Never for a release."""

    kind = "seeded"

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer in [0, inf), got seed={seed!r}.")
        self.seed = int(seed)

    def _rng(self, step: int, stream: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, int(step), stream])))

    def bernoulli(self, n: int, p: float, *, step: int) -> np.ndarray:
        return self._rng(step, 0).random(n) < p

    def gaussian(self, n: int, std: float, *, step: int) -> np.ndarray:
        return self._rng(step, 1).normal(0.0, std, n)


def make_sources(seeds: list[int | None]) -> list[RandomSource]:
    """One source per bank row: ``None`` → :class:`SecureRandom`, an int → :class:`SeededRandom`."""
    return [SecureRandom() if s is None else SeededRandom(s) for s in seeds]


def secure_permutation(n: int) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` from ``os.urandom`` (argsort of 53-bit uniforms; ties
    have probability below n²/2⁵⁴). Nothing is stored, so it cannot be regenerated (secret data splits)."""
    return np.argsort(_os_uniform(n), kind="stable")
