"""Clipping settings: the one class the config section, the trainer and the run metadata share.

``[clipping]`` in the config file is loaded into :class:`ClippingConfig` (``dpaudit.config``), the trainer
clips with it (``trainers.dp.DPAggregator``), and ``audit.json`` states it as
:class:`dpaudit.report_schema.ClippingSummary` (each group reduced to its threshold; regexes left out).

Units: thresholds are L2 norms of one example's gradient (the ``C`` of Abadi et al. 2016, arXiv 1607.00133
v2, Alg. 1); the noise multiplier σ is relative to ``C_tot = sqrt(Σ_g C_g²)`` (see ``trainers/dp.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dpaudit.config_check import validate
from dpaudit.errors import ConfigError

__all__ = ["CLIPPING_MODES", "CLIPPING_STYLES", "ClippingConfig"]

#: ``all_layer``: one group, threshold C; ``layer_wise``: one group per table, C/√G each; ``groups``: named
#: groups of tables with their own thresholds.
CLIPPING_MODES = ("all_layer", "layer_wise", "groups")
#: ``abadi``: factor ``min(1, C/n)``; ``automatic``: ``C/(n + 0.01)`` (Bu et al. 2022, arXiv 2206.07136 v3, Eq. 4.3).
CLIPPING_STYLES = ("abadi", "automatic")

_GROUPS_NEEDED = "clipping.mode = 'groups' needs clipping.groups = {name = [regex, C_g], ...}."
#: Allowed C (and each C_g): a generous sanity cap, not tuning advice.
_C_RANGE = (0, 1_000_000, "right")


@dataclass(frozen=True)
class ClippingConfig:
    """How per-sample gradients are clipped (the ``[clipping]`` config section).

    Args:
        max_grad_norm: C, the total L2 bound of one example's clipped gradient (all-layer and layer-wise).
        style: one of :data:`CLIPPING_STYLES`.
        mode: one of :data:`CLIPPING_MODES`.
        groups: for ``mode="groups"``: ``{name: (regex on table names, C_g)}`` (a TOML list
            ``[regex, C_g]`` is kept as loaded); every table must match exactly one group.

    Raises:
        ConfigError: a wrong type, an unknown style or mode, C outside (0, 1e6], or ``mode="groups"`` without
            groups (the checks and messages of the ``[clipping]`` loader, :mod:`dpaudit.config_check`).
    """

    #: 0.1: every high-loss example is clipped (its norm is 10–30 once the head has grown) and the easy ones
    #: (norm < 0.1) pass whole; the best single lever of issue 13's full-recipe sweep (ε = 8, seed 0: 0.788 vs
    #: 0.783 at C = 1) and the C of its 3-seed grid (benchmarks/RESULTS.md §2d).
    max_grad_norm: float = field(default=0.1, metadata={
        "range": _C_RANGE, "help": "C, the L2 bound of one example's clipped gradient (all groups together)"})
    style: str = field(default="abadi", metadata={
        "choices": CLIPPING_STYLES, "help": "abadi: factor min(1, C/n); automatic: C/(n + 0.01)"})
    mode: str = field(default="all_layer", metadata={
        "choices": CLIPPING_MODES, "help": "all_layer: one C; layer_wise: C/√G per table; groups: named groups"})
    groups: dict[str, Sequence[Any]] = field(default_factory=dict, metadata={
        "threshold_range": _C_RANGE, "help": "for mode = 'groups': {name = [regex on table names, C_g]}"})

    def __post_init__(self) -> None:
        validate(self, "clipping")
        if self.mode == "groups" and not self.groups:
            raise ConfigError(_GROUPS_NEEDED)

    def assign(self, names: Sequence[str]) -> tuple[list[int], list[float], list[str]]:
        """Group id of each table, the thresholds ``C_g`` and group names.

        Raises:
            ConfigError: a table matches no group or several, or a threshold is outside (0, inf).
        """
        if self.mode == "all_layer":
            return [0] * len(names), [self.max_grad_norm], ["all"]
        if self.mode == "layer_wise":
            c = self.max_grad_norm / math.sqrt(len(names))
            return list(range(len(names))), [c] * len(names), list(names)
        group_names = list(self.groups)
        ids = []
        for n in names:
            hits = [i for i, g in enumerate(group_names) if re.search(self.groups[g][0], n)]
            if len(hits) != 1:
                raise ConfigError(
                    f"trainable tensor '{n}' matches {len(hits)} clipping groups; every tensor must match exactly "
                    f"one of {group_names} (add a catch-all group such as rest = ['.*', 1.0] last)."
                    if hits else
                    f"trainable tensor '{n}' matches no clipping group; add a catch-all group, e.g. rest = ['.*', 1.0]."
                )
            ids.append(hits[0])
        thresholds = [float(self.groups[g][1]) for g in group_names]
        for g, c in zip(group_names, thresholds):
            if not (c > 0 and math.isfinite(c)):
                raise ConfigError(f"clipping.groups.{g} threshold must be in (0, inf), got {c!r}.")
        return ids, thresholds, group_names

    def to_dict(self) -> dict:
        """A fresh JSON-ready dict; each group as ``[regex, C_g]``."""
        return {"max_grad_norm": self.max_grad_norm, "style": self.style, "mode": self.mode,
                "groups": {k: [v[0], v[1]] for k, v in self.groups.items()}}
