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


#: The secret record of an LM audit's canaries (0600, beside ``membership.npy``; never a public file).
CANARIES_FILE = "lm_canaries.json"
_RECORD_FORMAT = "dpaudit-lm-canaries-1"


def canaries_record(canaries: LMCanaries, first_column: int) -> dict:
    """What ``dpaudit audit --task causal-lm`` saves as :data:`CANARIES_FILE`: the secrets, the exposure
    candidates and the canaries' membership columns (canary i is column ``first_column + i`` of
    ``membership.npy``, whose row 0 holds the target's coins). With the saved models, exposure and the one-run
    bound can be recomputed after the run."""
    return {"format": _RECORD_FORMAT, "template": TEMPLATE, "digits": int(canaries.digits),
            "first_column": int(first_column), "secrets": list(canaries.secrets),
            "candidates": [c[len(TEMPLATE):] for c in canaries.candidates]}


def read_canaries_record(data: object) -> tuple[LMCanaries, int]:
    """``(canaries, first_column)`` from a :func:`canaries_record` dict. Raises DataError if malformed."""
    from dpaudit.errors import DataError

    ok = isinstance(data, dict) and data.get("format") == _RECORD_FORMAT and data.get("template") == TEMPLATE
    digits = data.get("digits") if ok else None
    ok = ok and type(digits) is int and 1 <= digits <= 18 and type(data.get("first_column")) is int \
        and data["first_column"] >= 0
    lists = [data.get(k) for k in ("secrets", "candidates")] if ok else []
    ok = ok and all(isinstance(v, list) and all(isinstance(s, str) and len(s) == digits and s.isascii()
                                                and s.isdigit() for s in v) for v in lists)
    if not ok or len(set(lists[0])) != len(lists[0]) or set(lists[0]) & set(lists[1]):
        raise DataError(f"{CANARIES_FILE} is not a dpaudit LM canary record ({_RECORD_FORMAT}); rerun the audit.")
    secrets_, candidates = lists
    return LMCanaries(tuple(TEMPLATE + s for s in secrets_), tuple(secrets_), digits,
                      tuple(TEMPLATE + c for c in candidates)), data["first_column"]
