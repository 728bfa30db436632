"""Per-sample gradients of the DP-BiTFiT trainable set of an ordinary module, e.g. a Hugging Face
``*ForSequenceClassification`` — no BiasBank; the user's model keeps its own parameters and structure.

What may be trainable (docs/design.md, "DP-BiTFiT, exactly"; docs/library.md):

* the ``bias`` of every module whose type has a bias rule (:mod:`trainers.rules`: Linear, HF ``Conv1D``,
  LayerNorm, GroupNorm, Conv). Its per-sample gradient is ``g_i = Σ_t G_i[t, :]`` with ``G`` the module's
  output gradient, read by a tensor hook on the output (:func:`trainers.bias_sums.per_sample_bias_sums`).
  The bias stays in the module (``y = f(x) + b``, so ``∂L/∂b`` summed over positions *is* that sum); the
  hook saves nothing, so no activation is kept;
* the ``weight`` of an ``nn.Linear`` of the task head — a module outside the model's base model
  (``model.base_model_prefix``, e.g. ``classifier`` beside ``bert``) — whose input is one vector per example
  ``x`` (B, H): ``∂W_i = G_i x_iᵀ``. That pooled input (B×H floats) is the only activation kept; a head
  weight that sees a sequence (B, T, H) is refused at its first forward.

Any other trainable tensor (an embedding, a LayerNorm weight, an attention weight) is refused with one
line naming it. With ``loss_reduction="mean"`` the per-sample gradients are multiplied by the batch size
B (the loss was ``(1/B) Σ_i ℓ_i``), as opacus does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from dpaudit.errors import ConfigError, UnsupportedModuleError
from dpaudit.trainers.batchnorm import check_batchnorm_eval
from dpaudit.trainers.bias_sums import per_sample_bias_sums
from dpaudit.trainers.rules import BIAS_RULES


@dataclass(eq=False)
class Tracked:
    """One trainable tensor: its qualified name, parameter, kind (``bias`` or ``weight``), the bias layout
    (``channel_dim``) and the per-sample gradient of the current backward, (B, *param.shape) float32."""

    name: str
    param: nn.Parameter
    kind: str
    channel_dim: int = -1
    per_sample: torch.Tensor | None = field(default=None, repr=False)
    forward_id: int = -1


def _head_prefix(module: nn.Module) -> str | None:
    """``"bert."`` for a model whose base model is ``module.bert``; None when the module names no base model."""
    prefix = getattr(module, "base_model_prefix", None)
    if isinstance(prefix, str) and prefix and isinstance(getattr(module, prefix, None), nn.Module):
        return prefix + "."
    return None


def _refusal(name: str, module: nn.Module, pname: str, why: str) -> UnsupportedModuleError:
    return UnsupportedModuleError(
        f"trainable parameter '{name}' ({type(module).__name__}.{pname}) {why}; DP-BiTFiT trains biases and the "
        f"task head's Linear weights only — freeze it (p.requires_grad = False) or register a bias rule "
        f"(trainers.rules.register_bias_rule)."
    )


def plan_trainable(module: nn.Module) -> list[tuple[str, nn.Module, list[Tracked]]]:
    """``[(module name, module, tracked tensors)]`` for every module holding a trainable parameter.

    Raises:
        UnsupportedModuleError: a trainable parameter outside the set above (the message names it).
        ConfigError: nothing is trainable.
    """
    base = _head_prefix(module)
    plan = []
    for mname, mod in module.named_modules():
        tracked = []
        for pname, p in mod.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            full = f"{mname}.{pname}" if mname else pname
            if pname == "bias" and type(mod) in BIAS_RULES:
                tracked.append(Tracked(full, p, "bias", BIAS_RULES.get(type(mod)).dim_for(mod)))
            elif pname == "weight" and type(mod) is nn.Linear and (base is None or not mname.startswith(base)):
                tracked.append(Tracked(full, p, "weight"))
            elif pname == "weight" and type(mod) is nn.Linear:
                raise _refusal(full, mod, pname, "is a weight inside the base model, not of the task head")
            else:
                raise _refusal(full, mod, pname, "has no per-sample rule")
        if tracked:
            plan.append((mname, mod, tracked))
    if not plan:
        raise ConfigError("the module has no trainable parameter; leave the biases (and the head) trainable, e.g. "
                          "p.requires_grad = ('bias' in name) or name.startswith('classifier').")
    return plan


def _batch_size(args: tuple, kwargs: dict) -> int | None:
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return None


class PerSampleHooks:
    """Hooks on ``module`` that record, at every backward, each tracked tensor's per-sample gradient.

    Args:
        module: the model; its trainable parameters must pass :func:`plan_trainable`.
        loss_reduction: ``"mean"`` (the loss averaged over the batch; gradients are rescaled by B) or ``"sum"``.

    A BatchNorm in train mode (or without running statistics) is refused at its forward: it mixes the
    examples of a batch (:mod:`trainers.batchnorm`; ``freeze_batchnorm(model)`` pins them in eval mode).

    A logical batch is one forward and one backward: a second backward before :meth:`release` (the
    optimizer's ``step``/``zero_grad``) would mix two batches' examples and is refused.
    """

    def __init__(self, module: nn.Module, *, loss_reduction: str = "mean") -> None:
        if loss_reduction not in ("mean", "sum"):
            raise ConfigError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}.")
        self.loss_reduction = loss_reduction
        self.plan = plan_trainable(module)
        self.tracked = [t for _, _, ts in self.plan for t in ts]
        self.batch_size: int | None = None
        self._forward = 0
        self._handles = [module.register_forward_pre_hook(self._root_pre_hook, with_kwargs=True)]
        for name, mod, tracked in self.plan:
            self._handles.append(mod.register_forward_hook(self._module_hook(name, tracked)))
        for name, mod in module.named_modules():  # trainable or not, a train-mode BatchNorm mixes the batch
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                self._handles.append(mod.register_forward_pre_hook(
                    lambda m, _a, n=name: check_batchnorm_eval(n, m) if torch.is_grad_enabled() else None))

    def _root_pre_hook(self, _module, args, kwargs):
        if torch.is_grad_enabled():
            self._forward += 1
            self.batch_size = _batch_size(args, kwargs)

    def _module_hook(self, name: str, tracked: list[Tracked]):
        wants_input = any(t.kind == "weight" for t in tracked)

        def hook(_mod, inputs, output):
            if not (torch.is_grad_enabled() and isinstance(output, torch.Tensor) and output.requires_grad):
                return
            b = output.shape[0] if self.batch_size is None else self.batch_size
            if output.shape[0] != b:
                raise UnsupportedModuleError(
                    f"module '{name}' produced an output with leading dimension {output.shape[0]} for a batch of {b}; "
                    f"per-sample gradients need batch-first outputs — freeze its parameters.")
            x = None
            if wants_input:
                x = inputs[0]
                if x.dim() != 2:
                    raise UnsupportedModuleError(
                        f"the trainable weight of '{name}' sees an input of shape {tuple(x.shape)}, not one vector per "
                        f"example (B, H): its per-sample gradient would keep every token's activation — freeze it.")
                x = x.detach()
            fid = self._forward
            output.register_hook(lambda g: self._record(tracked, g, x, b, fid))

        return hook

    def _record(self, tracked: list[Tracked], grad: torch.Tensor, x: torch.Tensor | None, b: int, fid: int) -> None:
        scale = float(b) if self.loss_reduction == "mean" else 1.0
        for t in tracked:
            if t.kind == "bias":
                ps = per_sample_bias_sums(grad, t.channel_dim)
            else:
                acc = torch.promote_types(grad.dtype, torch.float32)
                ps = torch.einsum("bo,bi->boi", grad.to(acc), x.to(acc))
            ps = ps * scale if scale != 1.0 else ps
            if t.per_sample is None:
                t.per_sample, t.forward_id = ps, fid
            elif t.forward_id != fid:
                raise ConfigError(
                    "a second backward pass before optimizer.step(): with Poisson sampling one logical batch is one "
                    "forward and one backward (no gradient accumulation) — call optimizer.step() after every "
                    "backward, or use a larger batch.")
            else:  # a module called several times in one forward: g_i sums over the calls
                t.per_sample = t.per_sample + ps

    def release(self) -> None:
        """Drop the recorded per-sample gradients (after the optimizer step, or at ``zero_grad``)."""
        for t in self.tracked:
            t.per_sample = None

    def remove(self) -> None:
        """Take every hook off the module (it trains like an ordinary model again)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self.release()
