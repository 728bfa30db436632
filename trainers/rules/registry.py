"""Registry of bias rules keyed by module type (the opacus ``GRAD_SAMPLERS`` pattern).

A rule says two things about a module family:

* ``channel_dim`` — where the bias broadcasts in the module's output: ``-1`` for features-last layers
  (Linear, HF ``Conv1D``, LayerNorm: output ``(B, ..., p)``) or ``1`` for channels-first layers
  (Conv, GroupNorm: output ``(B, p, ...)``);
* ``strip`` — how to take the bias out of the module so its forward computes ``y = f(x)`` without it;
  the BiasBank then adds ``bank[m_i]`` itself;
* ``layout`` (optional) — ``module -> channel_dim`` for a family whose layout is set per instance (ConvNeXt's
  LayerNorm: ``data_format`` channels_first → 1, channels_last → -1); :meth:`BiasRule.dim_for` reads it.

The per-sample bias gradient then follows from the output gradient alone (docs/design.md, "DP-BiTFiT, exactly"):
``g_i = Σ_{t} G_i[t, :]`` — no activation is read, so none is stored. :meth:`BiasRule.per_sample`
is the rule in the shared signature ``(module, grad_output) -> {parameter: (B, *param.shape)}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from dpaudit.errors import UnsupportedModuleError
from dpaudit.registry import Registry


def _set_none(module: nn.Module) -> None:
    module.bias = None


@dataclass(frozen=True)
class BiasRule:
    """How one module family carries its bias. See the module docstring."""

    channel_dim: int
    strip: Callable[[nn.Module], None] = _set_none
    layout: Callable[[nn.Module], int] | None = None

    def dim_for(self, module: nn.Module) -> int:
        """Where ``module``'s bias broadcasts in its output: ``layout(module)`` if set, else ``channel_dim``."""
        return self.channel_dim if self.layout is None else int(self.layout(module))

    def per_sample(self, module: nn.Module, grad_output: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
        """Per-sample bias gradient ``{module.bias: (B, p)}`` from ``grad_output`` (B, …), in float32."""
        from dpaudit.trainers.bias_sums import per_sample_bias_sums

        return {module.bias: per_sample_bias_sums(grad_output, self.dim_for(module))}


#: Rules by exact module type (``type(module)``; a subclass needs its own registration).
BIAS_RULES: Registry[type[nn.Module], BiasRule] = Registry("bias rule", show=lambda t: t.__qualname__)


def register_bias_rule(
    module_types: type[nn.Module] | Iterable[type[nn.Module]],
    *,
    channel_dim: int,
    strip: Callable[[nn.Module], None] = _set_none,
    layout: Callable[[nn.Module], int] | None = None,
    force: bool = False,
) -> BiasRule:
    """Register one rule for one or several module types.

    Raises:
        ValueError: ``channel_dim`` is not 1 or -1.
        DuplicateNameError: a type already has a rule and ``force`` is False (a ValueError too); no
            type of this call is registered then.
    """
    types = [module_types] if isinstance(module_types, type) else list(dict.fromkeys(module_types))
    if channel_dim not in (1, -1):
        raise ValueError(f"channel_dim must be in {{1, -1}}, got channel_dim={channel_dim!r}.")
    rule = BiasRule(channel_dim=channel_dim, strip=strip, layout=layout)
    taken = [t for t in types if t in BIAS_RULES]
    if taken and not force:
        BIAS_RULES.register(taken[0], rule)  # raises DuplicateNameError naming the type
    for t in types:
        BIAS_RULES.register(t, rule, force=force)
    return rule


def rule_for(module: nn.Module, qualified_name: str) -> BiasRule:
    """The rule for ``type(module)``; raises :class:`UnsupportedModuleError` naming the module if none."""
    if type(module) not in BIAS_RULES:
        raise UnsupportedModuleError(
            f"module '{qualified_name}' ({type(module).__name__}) has a trainable bias but no DP-BiTFiT bias "
            f"rule; register one with trainers.rules.register_bias_rule or exclude it via exclude_modules."
        )
    return BIAS_RULES.get(type(module))
