"""Banked causal language models: K DP-BiTFiT(-Add) next-token models on one frozen backbone.

``forward(input_ids, attention_mask, model_index) -> logits (B, T, V)``: example i runs with bank row
``model_index[i]``. Built from any Hugging Face ``*ForCausalLM`` (Llama, Qwen2, Mistral, GPT-2, …).

What is trained (docs/causal-lm.md):

* every bias of the backbone, banked by :class:`~trainers.bank.BiasBank` — GPT-2's ``Conv1D`` and
  LayerNorm biases as they are; with DP-BiTFiT-Add (``add_missing_biases``) every bias-free ``nn.Linear``
  (Llama's q/k/v/o and gate/up/down projections) first gets a zero bias, so the untrained model computes
  exactly the pretrained function. The per-sample gradient of a bias is its output gradient summed over
  tokens, ``g_i = Σ_t G_i[t, :]``, as for classifiers (Bu et al. 2022, arXiv 2210.00036v2, §3);
* nothing else: the (tied) token embeddings and ``lm_head`` are frozen and excluded — no new head.
  RMSNorm has no bias and none is added: its output feeds only Linear layers that now carry biases
  (q/k/v, gate/up), whose biases already span any shift of that output (``W(x + b) = Wx + Wb``), except the
  final norm, whose consumer is the frozen tied ``lm_head``.

Per-example loss (:func:`example_losses`): the **mean** next-token negative log-likelihood over that
example's predicted tokens — token ``t ≥ 1`` is predicted from ``t' < t`` when ``loss_mask[i, t] = 1`` and
``attention_mask[i, t] = 1`` (all real tokens, or only a completion's). Padding never enters. The training
loss is ``Σ_i ℓ_i``, so each example's gradient is clipped as one unit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dpaudit.trainers.bank import BankedModel, BiasBank

#: Modules never trained: the output projection (tied to the embeddings in Llama/SmolLM2/GPT-2).
LM_HEAD_MODULES = ("lm_head",)


def token_nll(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``-log p(x_t | x_<t)`` (B, T-1) for ``t = 1..T-1`` from ``logits`` (B, T, V); float32 at least."""
    logp = F.log_softmax(logits[:, :-1].to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)
    return -logp.gather(2, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def target_weights(attention_mask: torch.Tensor, loss_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T-1): 1 where token t ≥ 1 is a real, counted prediction target."""
    w = attention_mask[:, 1:].double()
    return w if loss_mask is None else w * loss_mask[:, 1:].double()


def example_losses(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   loss_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``ℓ_i = Σ_t w_it · nll_it / max(1, Σ_t w_it)`` (B,): the mean NLL over example i's predicted tokens
    (0 for an example with none)."""
    nll = token_nll(logits, input_ids)
    w = target_weights(attention_mask, loss_mask).to(nll.dtype)
    return (nll * w).sum(1) / w.sum(1).clamp_min(1.0)


class BankedCausalLM(BankedModel):
    """A frozen ``*ForCausalLM`` whose biases are K-row tables (see the module docstring)."""

    task = "causal_lm"

    def __init__(self, backbone: nn.Module, bank: BiasBank) -> None:
        super().__init__()
        self.backbone = backbone
        self.bank = bank

    @classmethod
    def from_backbone(cls, backbone: nn.Module, *, num_models: int, exclude_modules: Sequence[str] = (),
                      add_missing_biases: bool = False) -> "BankedCausalLM":
        """Freeze ``backbone`` and bank its biases (each row the pretrained bias, or zero when added);
        ``lm_head`` is always excluded."""
        excluded = tuple(dict.fromkeys(tuple(exclude_modules) + LM_HEAD_MODULES))
        bank = BiasBank(backbone, num_models=num_models, exclude_modules=excluded,
                        add_missing_biases=add_missing_biases)
        device = next(backbone.parameters()).device
        return cls(backbone, bank).to(device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                model_index: torch.Tensor) -> torch.Tensor:
        with self.bank.use(model_index):
            return self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    def loss_sum(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, model_index: torch.Tensor,
                 loss_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``Σ_i ℓ_i`` (a scalar) over the micro-batch; its backward records the per-sample bias sums."""
        return example_losses(self(input_ids, attention_mask, model_index), input_ids, attention_mask,
                              loss_mask).sum()
