"""Mutants of the causal-LM per-example loss that the per-example reference must catch: padding counted as
targets, and one normaliser shared by the micro-batch (example j's token count leaks into example i's gradient)."""

from __future__ import annotations

from dpaudit.trainers.causal_lm import token_nll

from tests.trainers._tiny_lm import banked, banked_per_sample, loop_per_sample, max_error, tiny_gpt2, token_data

EXAMPLES, MODELS = [0, 1, 2, 3, 4, 5], [0, 1, 1, 0, 1, 0]


def _padding_counted(logits, ids, mask, lmask):
    return token_nll(logits, ids).mean(1)  # every position, padding included


def _batch_normaliser(logits, ids, mask, lmask):
    w = (mask[:, 1:] * lmask[:, 1:]).to(logits.dtype)
    return (token_nll(logits, ids) * w).sum(1) / w.sum() * len(w)  # mean over the micro-batch's tokens


def _error(loss_fn) -> float:
    base, data = tiny_gpt2(), token_data(seed=2)
    lm = banked(base)
    got = banked_per_sample(lm, data, EXAMPLES, MODELS, loss_fn=loss_fn)
    return max_error(got, loop_per_sample(base, data, EXAMPLES, [s.name for s in lm.slots]))


def test_padding_in_the_loss_is_caught():
    assert _error(_padding_counted) > 1e-4


def test_a_shared_normaliser_is_caught():
    assert _error(_batch_normaliser) > 1e-4
