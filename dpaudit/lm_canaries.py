"""Secret canaries for causal LMs, and the Secret Sharer's exposure (Carlini et al. 2019, arXiv 1802.08232v3).

A canary is the template ``"the secret number is "`` followed by ``digits`` random decimal digits (the
randomness space R, ``|R| = 10^digits``), each secret drawn from the OS CSPRNG (``secrets``), all distinct.
Whether the target trains on a canary is a fair coin from the OS CSPRNG (row 0 of the audit's membership
matrix, as for the classifier canaries): the secrets and the coins never reach a public file.

Exposure (§4.1, Definition 3): ``exposure(s) = log2 |R| − log2 rank(s)``, with ``rank(s)`` the rank of the
secret's log-perplexity (its total NLL, nats) among all ``r ∈ R`` under the target. R is too large to
enumerate, so rank is estimated by sampling (§4.3): with S candidates drawn uniformly from R (the secrets
themselves excluded), ``rank ≈ 1 + (|R| − 1) · #{r : NLL(r) < NLL(s)} / S``. Its resolution is ``|R| / S``: an
exposure above ``log2 S`` means no sampled candidate beat the secret, i.e. ``exposure ≥ log2 S`` roughly,
reported as ``log2 |R|`` (the estimate), flagged by ``resolution_bits = log2 S``.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import numpy as np

TEMPLATE = "the secret number is "


@dataclass(frozen=True)
class LMCanaries:
    """``texts`` (template + secret), ``secrets`` (the digit strings), ``digits`` and the candidates' texts."""

    texts: tuple[str, ...]
    secrets: tuple[str, ...]
    digits: int
    candidates: tuple[str, ...]

    @property
    def space_bits(self) -> float:
        """log2 |R|."""
        return self.digits * math.log2(10)

    def __len__(self) -> int:
        return len(self.texts)


def _secret(digits: int) -> str:
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


def make_lm_canaries(count: int, *, digits: int = 6, candidates: int = 200) -> LMCanaries:
    """``count`` distinct CSPRNG secrets and ``candidates`` CSPRNG candidates from R outside them."""
    if count > 10 ** digits // 2:
        raise ValueError(f"{count} canaries do not fit a space of 10^{digits} secrets.")
    chosen: set[str] = set()
    while len(chosen) < count:
        chosen.add(_secret(digits))
    picked = tuple(sorted(chosen, key=lambda _: secrets.randbits(32)))
    pool = []
    while len(pool) < candidates:
        c = _secret(digits)
        if c not in chosen:
            pool.append(c)
    return LMCanaries(tuple(TEMPLATE + s for s in picked), picked, digits, tuple(TEMPLATE + c for c in pool))


def exposure(secret_nll: np.ndarray, candidate_nll: np.ndarray, space_bits: float) -> np.ndarray:
    """(m,) estimated exposure in bits of each secret (module docstring): ``log2|R| − log2 rank``."""
    s = np.asarray(secret_nll, dtype=np.float64)
    c = np.sort(np.asarray(candidate_nll, dtype=np.float64))
    beaten = np.searchsorted(c, s, side="left")  # candidates with NLL strictly below the secret's
    rank = 1.0 + (2.0 ** space_bits - 1.0) * beaten / max(1, c.size)
    return space_bits - np.log2(rank)


def exposure_section(exp: np.ndarray, included: np.ndarray, *, space_bits: float, n_candidates: int) -> dict:
    """Summary for ``audit.json``: mean and max exposure of included and excluded canaries (bits)."""
    inc = np.asarray(included, dtype=bool)

    def stats(mask):
        return {"n": int(mask.sum()), "mean": float(exp[mask].mean()) if mask.any() else None,
                "max": float(exp[mask].max()) if mask.any() else None}

    return {"space_bits": float(space_bits), "n_candidates": int(n_candidates),
            "resolution_bits": float(math.log2(max(1, n_candidates))), "included": stats(inc), "excluded": stats(~inc)}
