"""Family-wise (Bonferroni) statement over several ε lower bounds.

The maximum of m bounds, each valid with probability ≥ 1 − αᵢ, is a valid lower bound with probability
≥ 1 − Σαᵢ (union bound), provided the family — which bounds, at which αᵢ — was fixed before any result
was seen. ``dpaudit audit`` fixes it from the configuration alone: every configured attack plus the
canary audit, each at α / (number of sources) (within a source, the bound estimators share that
significance; estimates such as the f-DP number spend none). The headline "ε ≥ x with 1 − α confidence" is then the family maximum,
stated at the smallest δ of its members (members may differ: the canary bound runs at ``audit.canary_delta``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dpaudit._validation import check_int
from dpaudit.privacy.empirical import THEOREMS, check_significance

__all__ = ["bonferroni_family", "source_significance", "with_family"]


def source_significance(significance: float, n_sources: int) -> float:
    """Significance of each of ``n_sources`` bounds so that their maximum holds at ``significance``."""
    return check_significance(significance) / check_int("n_sources", n_sources, 1)


def _size(bound: Mapping[str, Any]) -> int:
    """Estimator-level bounds behind one entry (estimates spend no significance and are not counted)."""
    return max(1, sum(c.get("kind", "bound") == "bound" for c in bound.get("components") or ()))


def with_family(bound: Mapping[str, Any], *, family_size: int, family_significance: float
                ) -> dict[str, Any]:
    """A copy of ``bound`` (``EmpiricalEpsilon.to_dict()`` form) that names the family it belongs to."""
    return {**bound, "family_size": check_int("family_size", family_size, 1),
            "family_significance": check_significance(family_significance)}


def bonferroni_family(members: Sequence[tuple[str, Mapping[str, Any]]], *,
                      significance: float) -> dict[str, Any]:
    """The family-wise lower bound over ``members`` ((source, bound dict) pairs), fixed in advance.

    Only ``"ok"`` members with ``kind == "bound"`` can be the maximum (an ``"estimate"`` has no theorem).
    The family's significance is the sum of its members' (union bound); it must not exceed
    ``significance``.

    Returns:
        A JSON-ready dict: ``method="bonferroni"``, ``theorem``, ``kind="bound"``, ``significance`` (the
        sum), ``size`` (estimator-level members), ``epsilon_lb`` (the maximum, 0.0 if none is ok),
        ``source`` and ``member_method`` of the maximum, ``status``, ``saturated``, ``delta`` and
        ``members`` (source, method, epsilon_lb, significance, status, kind of each).

    Raises:
        ConfigError: empty family, or member significances summing above ``significance``.
    """
    from dpaudit.errors import ConfigError

    alpha = check_significance(significance)
    if not members:
        raise ConfigError("a Bonferroni family needs at least one member bound.")
    total = float(sum(b["significance"] for _, b in members))
    if total > alpha * (1 + 1e-9):
        raise ConfigError(f"member significances sum to {total:g}, above the family's "
                          f"significance={alpha!r}; compute each member at significance / size.")
    rows = [{"source": src, "method": b.get("method"), "epsilon_lb": b.get("epsilon_lb"),
             "significance": b.get("significance"), "status": b.get("status"), "kind": b.get("kind", "bound")}
            for src, b in members]
    ok = [(src, b) for src, b in members if b.get("status") == "ok" and b.get("kind", "bound") == "bound"
          and b.get("epsilon_lb") is not None]
    best_src, best = max(ok, key=lambda item: item[1]["epsilon_lb"]) if ok else (None, None)
    return {
        "method": "bonferroni", "theorem": THEOREMS["bonferroni"], "kind": "bound", "experiment": "one_run"
        if all(b.get("experiment") == "one_run" for _, b in members) else "mixed",
        "significance": min(total, alpha), "size": sum(_size(b) for _, b in members),
        "epsilon_lb": float(best["epsilon_lb"]) if best else 0.0, "source": best_src,
        "member_method": best.get("method") if best else None,
        "status": "ok" if best else "inconclusive",
        "reason": None if best else "no member bound is ok",
        "saturated": bool(best.get("saturated")) if best else False,
        # "not (x, δ_j)-DP" implies "not (x, δ)-DP" for every δ ≤ δ_j: the family holds at its smallest δ
        "delta": min(float(b["delta"]) for _, b in members), "members": rows,
    }
