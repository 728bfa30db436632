"""Tiny random causal LMs (Llama: bias-free, RMSNorm; GPT-2: Conv1D + LayerNorm biases) and token data, and the
independent per-example reference for their per-sample bias gradients."""

from __future__ import annotations

import copy

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from dpaudit.trainers.batching import EncodedTexts
from dpaudit.trainers.causal_lm import BankedCausalLM, example_losses

VOCAB = 100


def llama_config(**extra) -> LlamaConfig:
    return LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=64,
                       tie_word_embeddings=True, pad_token_id=0, **extra)


def tiny_llama(seed: int = 0, dtype=torch.float64) -> LlamaForCausalLM:
    """Bias-free (the DP-BiTFiT-Add case), tied embeddings."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(llama_config()).to(dtype).eval()


def tiny_gpt2(seed: int = 0, dtype=torch.float64) -> GPT2LMHeadModel:
    """Conv1D and LayerNorm biases, no dropout; biases made non-zero so a wrong rule shows."""
    torch.manual_seed(seed)
    cfg = GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=VOCAB, n_positions=64, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=0)
    model = GPT2LMHeadModel(cfg).to(dtype).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.1)
    return model


def with_config_biases(llama: LlamaForCausalLM) -> LlamaForCausalLM:
    """The independent reference for DP-BiTFiT-Add: the same weights in a Llama built with
    ``attention_bias=True, mlp_bias=True`` (transformers' own biased layers), biases set to zero."""
    ref = LlamaForCausalLM(llama_config(attention_bias=True, mlp_bias=True)).to(llama.dtype).eval()
    missing, unexpected = ref.load_state_dict(llama.state_dict(), strict=False)
    assert not unexpected and all(k.endswith(".bias") for k in missing)
    with torch.no_grad():
        for k in missing:
            ref.get_parameter(k).zero_()
    return ref


def token_data(n: int = 6, seed: int = 0) -> EncodedTexts:
    """Ragged ids of lengths 3..10; odd examples learn only their tail (a completion)."""
    rng = np.random.default_rng(seed)
    ids = tuple(rng.integers(1, VOCAB, size=int(rng.integers(3, 11))).astype(np.int64) for _ in range(n))
    starts = tuple(1 if i % 2 == 0 else max(1, len(x) - 2) for i, x in enumerate(ids))
    return EncodedTexts(ids, 0, None, starts)


def banked(model, *, k: int = 2, add: bool = False) -> BankedCausalLM:
    return BankedCausalLM.from_backbone(copy.deepcopy(model), num_models=k, add_missing_biases=add)


def banked_per_sample(lm: BankedCausalLM, data: EncodedTexts, examples, models, loss_fn=example_losses):
    """``{slot name: (B, p)}`` from one micro-batch's backward through the bank."""
    ids, mask = data.collate(np.asarray(examples), torch.device("cpu"))
    lmask = data.collate_loss_mask(np.asarray(examples), torch.device("cpu"))
    logits = lm(ids, mask, torch.as_tensor(models, dtype=torch.long))
    loss_fn(logits, ids, mask, lmask).sum().backward()
    out = {s.name: s.per_sample.clone() for s in lm.slots}
    lm.bank.release()
    return out


def loop_per_sample(ref, data: EncodedTexts, examples, names) -> dict[str, torch.Tensor]:
    """Per-example autograd on the plain model: example i alone, unpadded, loss = mean NLL of its targets."""
    for p in ref.parameters():
        p.requires_grad_(False)
    params = {n: ref.get_parameter(f"{n}.bias") for n in names}
    for p in params.values():
        p.requires_grad_(True)
    rows = {n: [] for n in names}
    for i in examples:
        x = torch.as_tensor(data.ids[i]).view(1, -1)
        logp = torch.log_softmax(ref(input_ids=x).logits[0, :-1], -1)
        nll = -logp.gather(1, x[0, 1:].view(-1, 1)).squeeze(1)
        tgt = nll[data.loss_from[i] - 1:]
        loss = tgt.mean() if len(tgt) else nll.sum() * 0.0
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for n, g in zip(names, grads):
            rows[n].append(torch.zeros_like(params[n]) if g is None else g)
    return {n: torch.stack(v) for n, v in rows.items()}


def max_error(got: dict, want: dict) -> float:
    return max(float((got[n] - want[n]).abs().max()) for n in want)
