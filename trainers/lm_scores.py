"""Per-token statistics of every model of a banked causal LM on a population: what the LM attacks score.

For model m, example i and target position t (token t ≥ 1 predicted from the tokens before it):

* ``logprob[m, i, t-1] = log p_m(x_t | x_<t)``;
* ``mu[m, i, t-1] = Σ_v p(v) log p(v)`` and ``sigma[m, i, t-1] = sqrt(Σ_v p(v) (log p(v))² − mu²)``, the mean
  and standard deviation of ``log p(v)`` under ``v ~ p`` (Min-K%++, Zhang et al. 2024, arXiv 2404.02936v3, Eq. 2);
* ``weight[i, t-1]``: 1 where position t is a real, counted target (:func:`trainers.causal_lm.target_weights`).

Arrays are float32 (M, N, T_max − 1), zero where ``weight`` is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dpaudit.trainers.batching import EncodedTexts
from dpaudit.trainers.causal_lm import BankedCausalLM, target_weights


def _stats(logits: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    logp = torch.log_softmax(logits[:, :-1].float(), -1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    sigma = ((p * logp.square()).sum(-1) - mu.square()).clamp_min(0.0).sqrt()
    return logp.gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1), mu, sigma


@torch.no_grad()
def token_stats(lm: BankedCausalLM, encoded: EncodedTexts, *, models: Sequence[int] | None = None,
                examples: np.ndarray | None = None, batch_size: int = 32) -> dict[str, np.ndarray]:
    """``{"logprob", "mu", "sigma"}`` (M, N, T−1) and ``"weight"`` (N, T−1) — see the module docstring."""
    models = list(range(lm.num_models)) if models is None else list(models)
    examples = np.arange(len(encoded)) if examples is None else np.asarray(examples)
    t = max(2, int(encoded.lengths[examples].max(initial=2))) - 1
    shape = (len(models), len(examples), t)
    out = {k: np.zeros(shape, dtype=np.float32) for k in ("logprob", "mu", "sigma")}
    weight = np.zeros((len(examples), t), dtype=np.float32)
    was_training = lm.backbone.training
    lm.backbone.eval()
    device = next(lm.parameters()).device
    for start in range(0, len(examples), batch_size):
        rows = np.arange(start, min(start + batch_size, len(examples)))
        ids, mask = encoded.collate(examples[rows], device)
        w = target_weights(mask, encoded.collate_loss_mask(examples[rows], device)).float()
        weight[rows, : w.shape[1]] = w.cpu().numpy()
        for j, m in enumerate(models):
            logits = lm(ids, mask, torch.full((len(rows),), m, dtype=torch.long, device=device))
            lm.bank.release()
            for key, value in zip(("logprob", "mu", "sigma"), _stats(logits, ids)):
                out[key][j, rows, : value.shape[1]] = (value * w).cpu().numpy()
    lm.backbone.train(was_training)
    return {**out, "weight": weight}


def mean_nll(stats: dict[str, np.ndarray]) -> np.ndarray:
    """(M, N): each example's mean NLL over its targets (the training loss ℓ_i), per model."""
    w = stats["weight"]
    return -(stats["logprob"] * w).sum(-1) / np.maximum(w.sum(-1), 1.0)


@torch.no_grad()
def generate(lm: BankedCausalLM, tokenizer, prompts: Sequence[str], *, model: int, max_new_tokens: int = 16) -> list[str]:
    """Greedy continuations of ``prompts`` by bank row ``model`` (decoded, prompt excluded)."""
    device = next(lm.parameters()).device
    out = []
    for prompt in prompts:
        ids = torch.as_tensor([tokenizer(prompt)["input_ids"]], device=device)
        start = ids.shape[1]
        for _ in range(max_new_tokens):
            logits = lm(ids, torch.ones_like(ids), torch.tensor([model], device=device))
            lm.bank.release()
            nxt = logits[0, -1].argmax().view(1, 1)
            ids = torch.cat([ids, nxt], 1)
            if tokenizer.eos_token_id is not None and int(nxt) == tokenizer.eos_token_id:
                break
        out.append(tokenizer.decode(ids[0, start:], skip_special_tokens=True))
    return out
