"""Batched inference of every model of a BiasBank on a population: the logits every attack scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dpaudit.trainers.batching import EncodedTexts
from dpaudit.trainers.classifier import BankedClassifier


@torch.no_grad()
def predict_logits(classifier: BankedClassifier, encoded: EncodedTexts, *, models: Sequence[int] | None = None,
                   examples: np.ndarray | None = None, batch_size: int = 256, progress: bool = False,
                   bf16: bool = False) -> np.ndarray:
    """Logits of every listed model on every listed example: float32 array (M, N, C).

    All (example, model) pairs go through the shared backbone in batched passes. ``bf16``: the forward under
    ``torch.autocast(bfloat16)``, as the bank trains with ``train.autocast`` (resolve it with
    :func:`trainers.loop.bf16_autocast`); on the demo's bank 0.44× the CPU time of float32, logits within
    0.07, 19 of 9,000 argmax flips (benchmarks/RESULTS.md §11c).
    """
    from tqdm.auto import tqdm

    models = list(range(classifier.num_models)) if models is None else list(models)
    examples = np.arange(len(encoded)) if examples is None else np.asarray(examples)
    was_training = classifier.backbone.training
    classifier.backbone.eval()
    device = next(classifier.parameters()).device
    n, c = len(examples), classifier.head.weight.shape[1]
    out = np.zeros((len(models), n, c), dtype=np.float32)
    pos = np.tile(np.arange(n), len(models))
    mod = np.repeat(np.arange(len(models)), n)
    lengths = encoded.lengths[examples]
    order = np.argsort(lengths[pos], kind="stable")
    pos, mod = pos[order], mod[order]
    model_ids = np.asarray(models, dtype=np.int64)
    for start in tqdm(range(0, len(pos), batch_size), disable=not progress, desc="score", unit="batch",
                      dynamic_ncols=True):
        p, mm = pos[start : start + batch_size], mod[start : start + batch_size]
        ids, mask = encoded.collate(examples[p], device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = classifier(ids, mask, torch.from_numpy(model_ids[mm]).to(device))
        classifier.bank.release()
        out[mm, p] = logits.float().cpu().numpy()
    classifier.backbone.train(was_training)
    return out
