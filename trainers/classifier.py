"""Backbone + BiasBank + mean pooling + banked head: K text classifiers in one module.

``forward(input_ids, attention_mask, model_index) -> logits (B, C)``: example i is scored by model
``model_index[i]``. Built from any Hugging Face encoder (``AutoModel``); the backbone's own pooler is left
out of the trainable set (it was never trained for all-MiniLM-L6-v2, and mean pooling replaces it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dpaudit.trainers.bank import BiasBank, Slot
from dpaudit.trainers.head import BankedHead, mean_pool


class BankedClassifier(nn.Module):
    def __init__(self, backbone: nn.Module, bank: BiasBank, head: BankedHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.bank = bank
        self.head = head

    @classmethod
    def from_backbone(
        cls,
        backbone: nn.Module,
        *,
        num_models: int,
        num_labels: int,
        exclude_modules: Sequence[str] = ("pooler",),
        add_missing_biases: bool = False,
    ) -> "BankedClassifier":
        """Freeze ``backbone``, bank its biases (K rows, each the pretrained bias) and add K zero heads."""
        bank = BiasBank(backbone, num_models=num_models, exclude_modules=exclude_modules,
                        add_missing_biases=add_missing_biases)
        hidden = int(getattr(backbone.config, "hidden_size"))
        head = BankedHead(bank, hidden, num_labels)
        device = next(backbone.parameters()).device
        return cls(backbone, bank, head).to(device)

    @property
    def num_models(self) -> int:
        return self.bank.num_models

    @property
    def slots(self) -> list[Slot]:
        """Every trainable (K, …) table in a fixed order: backbone biases, then head weight and bias."""
        return self.bank.all_slots

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, model_index: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        with self.bank.use(model_index):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            hidden = self.backbone(**kwargs).last_hidden_state
            return self.head(mean_pool(hidden, attention_mask))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """``{slot name: (K, …) tensor}`` — everything that distinguishes the K models."""
        return {s.name: s.param.detach() for s in self.slots}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        for s in self.slots:
            if s.name not in state:
                raise KeyError(s.name)
            with torch.no_grad():
                s.param.copy_(state[s.name].to(s.param.dtype))
