"""The BiasBank: K DP-BiTFiT models on one frozen backbone (docs/design.md, "The BiasBank").

Every trainable bias ``b`` (p,) of the backbone becomes a table ``bank`` (K, p); each example ``i`` in a
batch carries a model index ``m_i`` and the layer computes ``y_i = f(x_i) + bank[m_i]``. K=1 is the
ordinary single-model trainer: there is one code path.

Per-sample gradients (no activation is stored): the bias add is the autograd function
:class:`_BankedBiasAdd`. Its backward receives the layer's output gradient ``G`` and hands it to the
kernel backend (``rowsum_sqnorm``), which writes ``g_i = Σ_t G_i[t, :]`` (B, p) and adds ``‖g_i‖²`` to
the example's squared norm in its clipping group. It returns no gradient for the table, so autograd runs
no non-private bias reduction beside it; :class:`trainers.dp.DPAggregator` clips, sums per bank row and
adds the noise. The add itself is done in place on the layer output (nothing is saved for backward).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from dpaudit.errors import ModelError
from dpaudit.trainers.batchnorm import freeze_batchnorm
from dpaudit.trainers.bias_sums import backend as kernel_backend
from dpaudit.trainers.rules import BiasRule, rule_for


@dataclass(eq=False)
class Slot:
    """One trainable (K, …) table: its name, parameter, clipping group and the current per-sample grads."""

    name: str
    param: nn.Parameter
    channel_dim: int = -1
    group: int = 0
    per_sample: torch.Tensor | None = field(default=None, repr=False)


class _BankedBiasAdd(torch.autograd.Function):
    """``y += bank[m]`` broadcast on ``channel_dim``; backward records per-sample bias sums."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, table: torch.Tensor, bank: "BiasBank", slot: Slot) -> torch.Tensor:
        m = bank.model_index
        if y.shape[0] != m.shape[0]:
            raise ModelError(
                f"layer '{slot.name}' produced an output with leading dimension {y.shape[0]} for a batch of "
                f"{m.shape[0]}; DP-BiTFiT needs batch-first layer outputs — exclude this module."
            )
        shape = [m.shape[0]] + [1] * (y.dim() - 1)
        shape[slot.channel_dim] = table.shape[1]
        if table.shape[0] == 1:  # one model: broadcast its row, no gather
            shape[0] = 1
            y.add_(table.to(y.dtype).view(shape))
        else:
            y.add_(table.index_select(0, m).to(y.dtype).view(shape))
        ctx.mark_dirty(y)
        ctx.bank, ctx.slot = bank, slot
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.bank.collect_bias(ctx.slot, grad)
        return grad, None, None, None


class BiasBank(nn.Module):
    """Replaces every trainable bias of ``backbone`` with a (K, p) table and records per-sample gradients.

    Args:
        backbone: the pretrained model; all its parameters are frozen.
        num_models: K, the number of models sharing the backbone.
        exclude_modules: qualified-name prefixes whose biases stay frozen (e.g. ``"pooler"``, never trained).
        add_missing_biases: DP-BiTFiT-Add — give every bias-free ``nn.Linear`` a zero bias first.

    Raises:
        ModelError: no trainable bias found (hint: DP-BiTFiT-Add).
        UnsupportedModuleError: a module with a bias has no registered rule; a BatchNorm without running
            statistics. Every BatchNorm is pinned in eval mode (:func:`trainers.batchnorm.freeze_batchnorm`).
    """

    def __init__(self, backbone: nn.Module, *, num_models: int, exclude_modules: Sequence[str] = ("pooler",),
                 add_missing_biases: bool = False) -> None:
        super().__init__()
        if num_models < 1:
            raise ValueError(f"num_models must be in [1, inf), got num_models={num_models!r}.")
        self.num_models = num_models
        self.tables = nn.ParameterDict()
        self.slots: list[Slot] = []
        self.extra_slots: list[Slot] = []  # the head registers its tables here
        self._model_index: torch.Tensor | None = None
        self.sqnorm: torch.Tensor | None = None  # (num_groups, B) float32 per micro-batch
        self.num_groups = 1
        for p in backbone.parameters():
            p.requires_grad_(False)
        freeze_batchnorm(backbone)  # train-mode BatchNorm mixes a batch's examples: running statistics frozen
        excluded = tuple(exclude_modules)
        for name, module in backbone.named_modules():
            if name.startswith(excluded) and any(name == e or name.startswith(e + ".") for e in excluded):
                continue
            if add_missing_biases and isinstance(module, nn.Linear) and module.bias is None:
                module.bias = nn.Parameter(torch.zeros(module.out_features, dtype=module.weight.dtype,
                                                       device=module.weight.device))
            bias = getattr(module, "bias", None)
            if not isinstance(bias, torch.Tensor) or isinstance(module, BiasBank):
                continue
            rule = rule_for(module, name)
            self._bank_module(name, module, rule, bias.detach())
        if not self.slots:
            raise ModelError(
                "the model has no bias terms to train (LLaMA-style); DP-BiTFiT needs biases — rerun with "
                "--add-biases (DP-BiTFiT-Add: zero-initialised biases on every linear layer)."
            )

    def _bank_module(self, name: str, module: nn.Module, rule: BiasRule, bias: torch.Tensor) -> None:
        key = name.replace(".", "__")
        table = nn.Parameter(bias.to(torch.promote_types(bias.dtype, torch.float32)).reshape(1, -1).repeat(self.num_models, 1).contiguous())
        self.tables[key] = table
        slot = Slot(name=name, param=table, channel_dim=rule.dim_for(module))
        self.slots.append(slot)
        rule.strip(module)
        bank = self

        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            return _BankedBiasAdd.apply(output, table, bank, slot)

        module.register_forward_hook(hook)

    # --- per-micro-batch state -------------------------------------------------------------------
    @property
    def model_index(self) -> torch.Tensor:
        if self._model_index is None:
            raise RuntimeError("BiasBank used outside `with bank.use(model_index):`.")
        return self._model_index

    @contextmanager
    def use(self, model_index: torch.Tensor) -> Iterator[None]:
        """Run a forward pass where example i uses bank row ``model_index[i]`` (B,) int64."""
        if model_index.dtype != torch.long or model_index.dim() != 1:
            raise TypeError(f"model_index must be a 1-D int64 tensor, got {model_index.dtype} {tuple(model_index.shape)}.")
        self._model_index = model_index
        acc = torch.promote_types(self.slots[0].param.dtype, torch.float32)
        self.sqnorm = torch.zeros(self.num_groups, model_index.shape[0], dtype=acc, device=model_index.device)
        for slot in self.all_slots:
            slot.per_sample = None
        self._kernels = kernel_backend(model_index.device)
        yield

    @property
    def all_slots(self) -> list[Slot]:
        return self.slots + self.extra_slots

    def collect_bias(self, slot: Slot, grad_output: torch.Tensor) -> None:
        """Add one call's per-sample sums to ``slot.per_sample`` and keep the squared norm exact.

        A module called several times in one forward (shared layers, e.g. ALBERT) contributes
        ``g_i = Σ_calls g_i^(call)``; the kernel adds ``‖g^(call)‖²`` per call, so the cross terms
        ``2⟨g^(earlier), g^(call)⟩`` are added here to make the accumulator ``‖Σ_calls g^(call)‖²``.
        """
        sqnorm = self.sqnorm[slot.group]
        g = self._kernels.rowsum_sqnorm(grad_output, slot.channel_dim, sqnorm)
        if slot.per_sample is None:
            slot.per_sample = g
        else:
            sqnorm.add_(2.0 * (slot.per_sample * g).sum(dim=1))
            slot.per_sample = slot.per_sample + g

    def set_groups(self, groups: Sequence[int], num_groups: int) -> None:
        """Assign each slot (in :attr:`all_slots` order) to a clipping group."""
        for slot, g in zip(self.all_slots, groups, strict=True):
            slot.group = int(g)
        self.num_groups = num_groups

    def release(self) -> None:
        """Drop the micro-batch's per-sample gradients and norms."""
        for slot in self.all_slots:
            slot.per_sample = None
        self.sqnorm = None
        self._model_index = None

    def num_trainable(self) -> int:
        """Trainable parameters of ONE model (one row of every table)."""
        return sum(s.param[0].numel() for s in self.all_slots)


class BankedModel(nn.Module):
    """A frozen backbone whose trainable numbers all live in ``self.bank`` (a :class:`BiasBank`): the K-model
    state every banked model (classifier, causal LM) shares — its slots, and saving/loading them."""

    bank: BiasBank

    @property
    def num_models(self) -> int:
        return self.bank.num_models

    @property
    def slots(self) -> list[Slot]:
        """Every trainable (K, …) table, in the bank's fixed order (backbone biases, then any head)."""
        return self.bank.all_slots

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """``{slot name: (K, …) tensor}`` — everything that distinguishes the K models."""
        return {s.name: s.param.detach() for s in self.slots}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        for s in self.slots:
            if s.name not in state:
                raise KeyError(s.name)
            with torch.no_grad():
                s.param.copy_(state[s.name].to(s.param.dtype))
