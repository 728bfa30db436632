"""Accountant backends: a name-keyed registry over opacus's accountants.

A backend turns an accountant *history* — opacus's list ``[(noise_multiplier, sample_rate, steps), ...]``
— into ε at a given δ, and into the privacy profile δ(ε) over a grid of ε. Opacus is imported inside each
method, never at module import: ``opacus.accountants`` imports torch (through ``opacus.optimizers``), and
``dpaudit.privacy`` must stay importable without it (docs/design.md, "Data flow": privacy math never imports torch).

Registered: ``"pld"`` (default; Google's ``dp_accounting`` privacy-loss distributions, the only one that
analyses replace-one neighbours), ``"prv"`` (Gopi et al., arXiv 2106.02848) and ``"rdp"`` (Mironov et al.,
arXiv 1908.10530, with the RDP→(ε, δ) conversion of Balle et al., arXiv 1905.09982, Theorem 21); the last
two analyse add/remove neighbours only (:attr:`AccountantBackend.relations`).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from dpaudit._validation import check_int, check_real
from dpaudit.errors import ConfigError
from dpaudit.registry import Registry

History = Sequence[tuple[float, float, int]]
"""Opacus accountant history: ``(noise_multiplier, sample_rate, steps)`` per homogeneous phase."""

#: ε discretisation error of the PRV profile, in nats (opacus's ``get_epsilon`` default).
PRV_EPS_ERROR = 0.01
#: δ discretisation error of the PRV profile; no profile δ is reported below this value.
PRV_DELTA_ERROR = 1e-10
#: Discretisation interval of the PLD accountant's privacy loss, in nats (rounded pessimistically).
PLD_INTERVAL = 1e-3


#: The neighbouring relations an (ε, δ) statement can be made for (``NeighbouringRelation`` values).
RELATIONS = ("replace_one", "add_remove")


class AccountantBackend(Protocol):
    """What a registered accountant provides. All methods take a non-empty, fully private history
    (every σ > 0, q > 0, steps > 0) and a relation from :attr:`relations` (checked once in :mod:`accounting`,
    with the other edge cases)."""

    #: the neighbouring relations this accountant analyses (values of :data:`RELATIONS`).
    relations: frozenset[str]

    def create(self) -> Any:
        """Return a fresh accountant object of this kind."""

    def epsilon(self, history: History, delta: float, neighbouring: str) -> float:
        """ε (nats) at ``delta``, an upper bound."""

    def deltas(self, history: History, epsilons: np.ndarray, neighbouring: str) -> np.ndarray:
        """δ(ε) for each ε of ``epsilons`` (sorted ascending), each an upper bound."""


def check_relation(name: str, neighbouring: str) -> AccountantBackend:
    """The backend ``name`` after checking that it analyses ``neighbouring``.

    Raises:
        ConfigError: ``neighbouring`` is not a relation, or the accountant does not analyse it.
    """
    backend = get_backend(name)
    if neighbouring not in RELATIONS:
        raise ConfigError(f"neighbouring must be one of {{{', '.join(RELATIONS)}}}, got neighbouring={neighbouring!r}.")
    if neighbouring not in backend.relations:
        raise ConfigError(f"accountant '{name}' analyses {', '.join(sorted(backend.relations))} neighbours only, not "
                          f"{neighbouring}; use accountant='pld' for replace_one.")
    return backend


def check_history(history: History) -> list[tuple[float, float, int]]:
    """Validate a history (ConfigError naming the bad entry) and return it as plain tuples."""
    out = []
    for i, entry in enumerate(history):
        if len(entry) != 3:
            raise ConfigError(
                f"history[{i}] must be (noise_multiplier, sample_rate, steps), got {entry!r}."
            )
        s, q, n = entry
        out.append((
            check_real(f"history[{i}].noise_multiplier", s, 0.0, math.inf),
            check_real(f"history[{i}].sample_rate", q, 0.0, 1.0),
            check_int(f"history[{i}].steps", n, 0),
        ))
    return out


def private_phases(history: list[tuple[float, float, int]]) -> list[tuple[float, float, int]] | None:
    """Drop phases that release nothing (steps = 0 or q = 0); ``None`` if some phase has σ = 0."""
    live = [(s, q, n) for s, q, n in history if n > 0 and q > 0.0]
    if any(s == 0.0 for s, _, _ in live):
        return None
    return live


#: Backend instances by name; ``accountant=`` options and the config's choices come from its names.
ACCOUNTANTS: Registry[str, AccountantBackend] = Registry("accountant")


def register_accountant(
    name: str, *, force: bool = False
) -> Callable[[type[AccountantBackend]], type[AccountantBackend]]:
    """Class decorator: register an instance of an :class:`AccountantBackend` class under ``name``.

    Args:
        name: the key users pass as ``accountant=`` (and the CLI offers as a choice).
        force: overwrite an existing registration instead of raising.

    Raises:
        DuplicateNameError: ``name`` is already registered and ``force`` is False (a ConfigError).
    """

    def decorator(cls: type[AccountantBackend]) -> type[AccountantBackend]:
        ACCOUNTANTS.register(name, cls(), force=force)
        return cls

    return decorator


def get_backend(name: str) -> AccountantBackend:
    """Return the backend registered as ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (a ConfigError naming the known ones).
    """
    return ACCOUNTANTS.get(name)


def create_accountant(name: str) -> Any:
    """Return a fresh opacus accountant for ``name`` (e.g. for the trainer to ``step()``).

    Raises:
        UnknownNameError: ``name`` is not registered (a ConfigError listing the registered names).
    """
    return get_backend(name).create()


@contextlib.contextmanager
def _quiet_rdp_domain():
    """opacus' PRV accountant sizes its discretisation domain with an RDP bound and warns when that
    bound's optimal order is the largest α. The warning concerns only the domain's size (the PRV ε is
    computed separately, with its own error bound), so it is silenced here rather than shown to users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        yield


@register_accountant("prv")
class PRVBackend:
    """Privacy-loss random variables composed by FFT (Gopi et al., arXiv 2106.02848).

    ``deltas`` reads δ(ε) off the composed, discretised PRV that opacus builds for ``get_epsilon``:
    ``δ̃(ε) = Σ_{t ≥ ε} p(t)·(1 − e^{ε−t})`` (the hockey-stick divergence of the discrete PRV). The
    discretisation error bound of arXiv 2106.02848 Section 5 — the same one opacus relies on when it
    reports ``ε̃(δ − δ_err) + ε_err`` — gives ``δ(ε) ≤ δ̃(ε − ε_err) + δ_err``, which is what is
    returned: each value errs upward (pessimistic) by at most ``δ_err`` plus an ε shift of ``ε_err``
    (:data:`PRV_EPS_ERROR`, :data:`PRV_DELTA_ERROR`).
    """

    relations = frozenset({"add_remove"})

    def create(self) -> Any:
        from opacus.accountants import PRVAccountant

        return PRVAccountant()

    def epsilon(self, history: History, delta: float, neighbouring: str = "add_remove") -> float:
        acc = self.create()
        acc.history = [tuple(h) for h in history]
        with _quiet_rdp_domain():
            return float(acc.get_epsilon(delta=delta))

    def deltas(self, history: History, epsilons: np.ndarray, neighbouring: str = "add_remove") -> np.ndarray:
        acc = self.create()
        acc.history = [tuple(h) for h in history]
        # opacus exposes the composed discrete PRV only through this private helper (opacus 1.5/1.6).
        with _quiet_rdp_domain():
            dprv = acc._get_dprv(eps_error=PRV_EPS_ERROR, delta_error=PRV_DELTA_ERROR)
        t = np.asarray(dprv.domain.ts, dtype=np.float64)
        p = np.asarray(dprv.pmf, dtype=np.float64)
        # Tail sums d1[i] = Σ_{j≥i} p_j and d2[i] = Σ_{j≥i} p_j e^{−t_j}, with a zero sentinel at the end.
        d1 = np.append(np.cumsum(p[::-1])[::-1], 0.0)
        d2 = np.append(np.cumsum((p * np.exp(-t))[::-1])[::-1], 0.0)
        shifted = epsilons - PRV_EPS_ERROR
        i = np.searchsorted(t, shifted, side="left")
        estimate = d1[i] - np.exp(shifted) * d2[i]
        return np.clip(estimate + PRV_DELTA_ERROR, 0.0, 1.0)


@register_accountant("rdp")
class RDPBackend:
    """Rényi DP of the subsampled Gaussian (opacus ``RDPAccountant``, its default orders α).

    ``deltas`` inverts the conversion opacus uses for ``get_epsilon`` (Balle et al., arXiv 1905.09982,
    Theorem 21): ``ε = R(α) + log((α−1)/α) − (log δ + log α)/(α−1)`` solved for δ gives
    ``δ(ε) = min_α exp((α−1)(R(α) − ε + log(1 − 1/α)) − log α)``, capped at 1. Each order gives a valid
    bound, so the minimum is an upper bound on the true δ(ε); it is the exact inverse of opacus's ε(δ).
    """

    relations = frozenset({"add_remove"})

    def create(self) -> Any:
        from opacus.accountants import RDPAccountant

        return RDPAccountant()

    def epsilon(self, history: History, delta: float, neighbouring: str = "add_remove") -> float:
        acc = self.create()
        acc.history = [tuple(h) for h in history]
        return float(acc.get_epsilon(delta=delta))

    def deltas(self, history: History, epsilons: np.ndarray, neighbouring: str = "add_remove") -> np.ndarray:
        from opacus.accountants import RDPAccountant
        from opacus.accountants.analysis.rdp import compute_rdp

        orders = np.asarray(RDPAccountant.DEFAULT_ALPHAS, dtype=np.float64)
        rdp = sum(
            np.asarray(compute_rdp(q=q, noise_multiplier=s, steps=n, orders=orders), dtype=np.float64)
            for s, q, n in history
        )
        log_delta = (orders[None, :] - 1.0) * (
            rdp[None, :] - epsilons[:, None] + np.log1p(-1.0 / orders[None, :])
        ) - np.log(orders[None, :])
        return np.minimum(np.exp(np.min(log_delta, axis=1)), 1.0)


@register_accountant("pld")
class PLDBackend:
    """Privacy-loss distributions of Google's ``dp_accounting`` (0.6), composed by FFT with pessimistic
    "connect the dots" discretisation (Doroshenko et al., arXiv 2207.04380v1, Section 3): every ε and δ
    errs upward, by at most the discretisation interval :data:`PLD_INTERVAL` in ε.

    One step is ``PoissonSampledDpEvent(q, GaussianDpEvent(σ))``. For ``add_remove`` the pair is
    (N(0,σ²), (1−q)N(0,σ²) + qN(1,σ²)) and its reverse; for ``replace_one`` it is
    ((1−q)N(0,σ²) + qN(−1,σ²), (1−q)N(0,σ²) + qN(1,σ²)) — the record present in both neighbours is sampled
    with probability q and its clipped gradient moves from −C to +C: the dominating pair of Poisson
    subsampling under substitution (Zhu, Dong, Wang 2022, arXiv 2106.08567, dominating pairs of subsampled
    mechanisms; Lebeda, Regehr, Kamath, Steinke 2024, arXiv 2405.20769, on accounting Poisson subsampling
    under substitution). At q = 1 it is the Gaussian mechanism with sensitivity 2 (tested against the
    analytic Gaussian, tests/privacy/test_replace_one.py).
    """

    relations = frozenset(RELATIONS)

    def create(self, neighbouring: str = "replace_one") -> Any:
        from dp_accounting import NeighboringRelation
        from dp_accounting.pld.pld_privacy_accountant import PLDAccountant

        rel = NeighboringRelation.REPLACE_ONE if neighbouring == "replace_one" else NeighboringRelation.ADD_OR_REMOVE_ONE
        return PLDAccountant(neighboring_relation=rel, value_discretization_interval=PLD_INTERVAL)

    def _composed(self, history: History, neighbouring: str) -> Any:
        from dp_accounting import GaussianDpEvent, PoissonSampledDpEvent

        acc = self.create(neighbouring)
        for sigma, q, n in history:
            acc.compose(PoissonSampledDpEvent(float(q), GaussianDpEvent(float(sigma))), int(n))
        return acc

    def epsilon(self, history: History, delta: float, neighbouring: str = "replace_one") -> float:
        return float(self._composed(history, neighbouring).get_epsilon(delta))

    def deltas(self, history: History, epsilons: np.ndarray, neighbouring: str = "replace_one") -> np.ndarray:
        pld = self._composed(history, neighbouring)._pld
        return np.clip(np.asarray(pld.get_delta_for_epsilon(np.asarray(epsilons, dtype=np.float64)),
                                  dtype=np.float64), 0.0, 1.0)
