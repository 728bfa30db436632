"""DP-BiTFiT for causal LMs: per-sample bias gradients against a per-example loop (Llama with DP-BiTFiT-Add,
GPT-2's Conv1D), the Add step leaves the untrained model's function unchanged, and a few trainer steps run."""

from __future__ import annotations

import numpy as np
import torch

from dpaudit.trainers.causal_lm import example_losses
from dpaudit.trainers.loop import Trainer, TrainSettings
from dpaudit.trainers.dp import ClippingConfig

from tests.trainers._tiny_lm import (banked, banked_per_sample, loop_per_sample, max_error, tiny_gpt2, tiny_llama,
                                     token_data, with_config_biases)

EXAMPLES, MODELS = [0, 1, 2, 3, 4, 5], [0, 1, 1, 0, 1, 0]


def test_llama_add_biases_per_sample_matches_loop():
    base, data = tiny_llama(), token_data()
    lm = banked(base, add=True)
    names = [s.name for s in lm.slots]
    assert len(names) == 2 * 7 and not any(n.startswith("lm_head") or "norm" in n for n in names)
    got = banked_per_sample(lm, data, EXAMPLES, MODELS)
    want = loop_per_sample(with_config_biases(base), data, EXAMPLES, names)
    assert max_error(got, want) < 1e-10


def test_gpt2_conv1d_per_sample_matches_loop():
    base, data = tiny_gpt2(), token_data(seed=1)
    lm = banked(base)
    names = [s.name for s in lm.slots]
    assert any(n.endswith("c_attn") for n in names) and any(n.endswith("ln_1") for n in names)
    got = banked_per_sample(lm, data, EXAMPLES, MODELS)
    want = loop_per_sample(base, data, EXAMPLES, names)
    assert max_error(got, want) < 1e-10


def test_add_biases_leaves_untrained_outputs_unchanged():
    base = tiny_llama(dtype=torch.float32)
    lm = banked(base, k=3, add=True)
    data = token_data()
    ids, mask = data.collate(np.arange(6), torch.device("cpu"))
    with torch.no_grad():
        want = base(input_ids=ids, attention_mask=mask).logits
        got = lm(ids, mask, torch.tensor([0, 1, 2, 0, 1, 2]))
    lm.bank.release()
    assert float((got - want).abs().max()) < 1e-6
    assert not any(p.requires_grad for p in lm.backbone.parameters())  # tied embeddings frozen


def test_example_loss_is_the_mean_over_targets_only():
    logits = torch.randn(2, 4, 5, dtype=torch.float64)
    ids = torch.tensor([[1, 2, 3, 0], [4, 1, 2, 3]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    lmask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    logp = torch.log_softmax(logits, -1)
    want0 = -(logp[0, 0, 2] + logp[0, 1, 3]) / 2
    want1 = -(logp[1, 1, 2] + logp[1, 2, 3]) / 2
    got = example_losses(logits, ids, mask, lmask)
    assert torch.allclose(got, torch.stack([want0, want1]))


def test_trainer_steps_a_banked_lm():
    lm = banked(tiny_llama(dtype=torch.float32), k=2, add=True)
    data = token_data(n=16)
    membership = np.zeros((2, 16), dtype=bool)
    membership[0, :8], membership[1, 8:] = True, True
    settings = TrainSettings(epochs=1.0, batch_size=4, micro_batch_size=3, lr=1e-2, noise_multiplier=0.5,
                             clipping=ClippingConfig(max_grad_norm=1.0))
    before = {k: v.clone() for k, v in lm.trainable_state().items()}
    out = Trainer(lm, data, np.zeros(16, dtype=np.int64), membership, settings, seeds=[1, 2], progress=False).run()
    after = lm.trainable_state()
    assert out.steps == 2 and all(not torch.equal(before[k], after[k]) for k in before)
    assert all(not torch.equal(after[k][0], after[k][1]) for k in after)  # two models, two trainings
