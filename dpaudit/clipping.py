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

from dpaudit.errors import ConfigError

__all__ = ["CLIPPING_MODES", "CLIPPING_STYLES", "ClippingConfig"]

#: ``all_layer``: one group, threshold C; ``layer_wise``: one group per table, C/√G each; ``groups``: named
#: groups of tables with their own thresholds.
CLIPPING_MODES = ("all_layer", "layer_wise", "groups")
#: ``abadi``: factor ``min(1, C/n)``; ``automatic``: ``C/(n + 0.01)`` (Bu et al. 2022, arXiv 2206.07136 v3, Eq. 4.3).
CLIPPING_STYLES = ("abadi", "automatic")

_GROUPS_NEEDED = "clipping.mode = 'groups' needs clipping.groups = {name = [regex, C_g], ...}."


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
        ConfigError: an unknown style or mode, C outside (0, inf), or ``mode="groups"`` without groups.
    """

    max_grad_norm: float = 1.0
    style: str = "abadi"
    mode: str = "all_layer"
    groups: dict[str, Sequence[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.style not in CLIPPING_STYLES:
            raise ConfigError(f"clipping.style must be one of {set(CLIPPING_STYLES)}, got style={self.style!r}.")
        if self.mode not in CLIPPING_MODES:
            raise ConfigError(f"clipping.mode must be one of {set(CLIPPING_MODES)}, got mode={self.mode!r}.")
        if not (self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm)):
            raise ConfigError(f"max_grad_norm must be in (0, inf), got max_grad_norm={self.max_grad_norm!r}.")
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
