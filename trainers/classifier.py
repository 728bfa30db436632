"""Backbone + BiasBank + pooling + banked head: K text classifiers in one module.

``forward(input_ids, attention_mask, model_index) -> logits (B, C)``: example i is scored by model
``model_index[i]``. Built from any Hugging Face encoder (``AutoModel``). Pooling ``"mean"`` (the default):
the mean of the last hidden states over real tokens; the backbone's own pooler is then unused and left out
of the trainable set (it was never trained for all-MiniLM-L6-v2). Pooling ``"pooler"``: the backbone's
``pooler_output`` (BERT: ``tanh(W h_CLS + b)``), the input of ``BertForSequenceClassification``'s classifier —
the head ``dpaudit export`` can write as a plain Hugging Face model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dpaudit.errors import ModelError
from dpaudit.trainers.bank import BankedModel, BiasBank
from dpaudit.trainers.head import BankedHead, mean_pool


class BankedClassifier(BankedModel):
    def __init__(self, backbone: nn.Module, bank: BiasBank, head: BankedHead, pooling: str = "mean") -> None:
        super().__init__()
        self.backbone = backbone
        self.bank = bank
        self.head = head
        self.pooling = pooling

    @classmethod
    def from_backbone(
        cls,
        backbone: nn.Module,
        *,
        num_models: int,
        num_labels: int,
        exclude_modules: Sequence[str] = ("pooler",),
        add_missing_biases: bool = False,
        pooling: str = "mean",
    ) -> "BankedClassifier":
        """Freeze ``backbone``, bank its biases (K rows, each the pretrained bias) and add K zero heads.

        A vision backbone (main input ``pixel_values``) builds a
        :class:`~trainers.vision.BankedVisionClassifier` instead (same signature and slots).

        Raises:
            ModelError: ``pooling="pooler"`` on a backbone without a pooler.
        """
        if cls is BankedClassifier and getattr(backbone, "main_input_name", None) == "pixel_values":
            from dpaudit.trainers.vision import BankedVisionClassifier

            return BankedVisionClassifier.from_backbone(
                backbone, num_models=num_models, num_labels=num_labels, exclude_modules=exclude_modules,
                add_missing_biases=add_missing_biases, pooling=pooling)
        if pooling not in ("mean", "pooler"):
            raise ValueError(f"pooling must be 'mean' or 'pooler', got {pooling!r}.")
        if pooling == "pooler" and getattr(backbone, "pooler", None) is None:
            raise ModelError(f"model.pooling = 'pooler' needs a backbone with a pooler (BERT-style); "
                             f"{type(backbone).__name__} has none — use model.pooling = 'mean'.")
        bank = BiasBank(backbone, num_models=num_models, exclude_modules=exclude_modules,
                        add_missing_biases=add_missing_biases)
        hidden = int(getattr(backbone.config, "hidden_size"))
        head = BankedHead(bank, hidden, num_labels)
        device = next(backbone.parameters()).device
        return cls(backbone, bank, head, pooling).to(device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, model_index: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        with self.bank.use(model_index):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            out = self.backbone(**kwargs)
            if self.pooling == "pooler":
                return self.head(out.pooler_output)
            return self.head(mean_pool(out.last_hidden_state, attention_mask))
