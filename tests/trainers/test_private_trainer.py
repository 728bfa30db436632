"""``dpaudit.PrivateTrainer``: DP-BiTFiT through ``transformers.Trainer`` on a tiny random BERT (a few steps, CPU).

ε in ``state.log_history`` equals the accountant's ε for the steps taken, only biases and the head move, the
model card states the claim, σ calibrated from a target ε fits ``max_steps``; settings that break the
accounting are refused with one line each."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from transformers import Trainer, TrainingArguments

import dpaudit
from dpaudit.errors import ConfigError, UnsupportedModuleError
from dpaudit.privacy import compute_epsilon
from dpaudit.private_trainer import check_training_args
from tests.trainers._hf_tiny import tiny_classifier, token_data


class Examples(torch.utils.data.Dataset):
    def __init__(self, n=40):
        self.ds = token_data(n)

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        ids, mask, label = self.ds[i]
        return {"input_ids": ids, "attention_mask": mask, "labels": label}


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_train_epochs=1,
                learning_rate=5e-3, logging_steps=2, report_to=[], save_strategy="no", use_cpu=True,
                disable_tqdm=True)
    return TrainingArguments(**{**base, **kw})


def test_trains_logs_epsilon_and_writes_a_card(tmp_path):
    model = tiny_classifier(dtype=torch.float32)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = dpaudit.PrivateTrainer(model=model, args=_args(tmp_path), train_dataset=Examples(),
                                     noise_multiplier=1.0, max_grad_norm=0.1)
    trainer.train()
    assert trainer.state.global_step == trainer.privacy_engine.steps == 10  # 40 examples, batch 4: q = 0.1
    train_logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(train_logs) == 5 and all("grad_norm" not in h for h in train_logs)
    for h in train_logs:
        assert h["epsilon"] == pytest.approx(compute_epsilon(noise_multiplier=1.0, sample_rate=0.1,
                                                             steps=h["dp_steps"], delta=1e-5, accountant="prv",
                                                             neighbouring="add_remove"))
    for n, p in model.named_parameters():
        moved = not torch.equal(start[n], p.detach())
        assert moved == ("bias" in n or n.startswith("classifier")), n
    trainer.save_model()
    out = tmp_path / "out"
    card = (out / "README.md").read_text()
    record = json.loads((out / "dpaudit-privacy.json").read_text())
    assert record["steps"] == 10 and record["noise_multiplier"] == 1.0 and record["sample_rate"] == 0.1
    assert record["epsilon"] == pytest.approx(train_logs[-1]["epsilon"])
    assert f"{record['epsilon']:.4g}" in card and "| optimizer steps | 10 |" in card and "OS CSPRNG" in card
    with pytest.raises(ConfigError, match="already called"):
        trainer.train()


def test_sigma_is_calibrated_for_max_steps(tmp_path):
    trainer = dpaudit.PrivateTrainer(model=tiny_classifier(dtype=torch.float32), args=_args(tmp_path, max_steps=3),
                                     train_dataset=Examples(), target_epsilon=2.0, target_delta=1e-5,
                                     max_grad_norm=0.1, seed=0)
    trainer.train()
    assert trainer.privacy_engine.steps == 3
    assert 1.8 < trainer.epsilon() <= 2.0


@pytest.mark.parametrize("setting, fragment", [
    ({"gradient_accumulation_steps": 2}, "gradient_accumulation_steps=2"),
    ({"train_sampling_strategy": "group_by_length"}, "train_sampling_strategy='group_by_length'"),
    ({"auto_find_batch_size": True}, "auto_find_batch_size"),
    ({"gradient_checkpointing": True}, "gradient_checkpointing"),
])
def test_settings_that_break_the_accounting_are_refused(tmp_path, setting, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        dpaudit.PrivateTrainer(model=tiny_classifier(dtype=torch.float32), args=_args(tmp_path, **setting),
                               train_dataset=Examples(), noise_multiplier=1.0, max_grad_norm=0.1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("field, value, fragment", [("world_size", 2, "processes/GPUs"), ("n_gpu", 2, "processes/GPUs"),
                                                    ("fp16", True, "fp16")])
def test_multi_device_and_fp16_are_refused(field, value, fragment):
    args = SimpleNamespace(gradient_accumulation_steps=1, world_size=1, n_gpu=1, fp16=False,
                           train_sampling_strategy="random", auto_find_batch_size=False, gradient_checkpointing=False)
    setattr(args, field, value)
    with pytest.raises(ConfigError, match=fragment):
        check_training_args(args, dpaudit.PrivateTrainer)


def test_a_custom_sampler_and_a_resume_are_refused(tmp_path):
    class Custom(dpaudit.PrivateTrainer):
        def _get_train_sampler(self, train_dataset=None):
            return torch.utils.data.SequentialSampler(self.train_dataset)

    with pytest.raises(ConfigError, match="custom _get_train_sampler"):
        Custom(model=tiny_classifier(), args=_args(tmp_path), train_dataset=Examples(), noise_multiplier=1.0,
               max_grad_norm=0.1)
    trainer = dpaudit.PrivateTrainer(model=tiny_classifier(dtype=torch.float32), args=_args(tmp_path),
                                     train_dataset=Examples(), noise_multiplier=1.0, max_grad_norm=0.1)
    with pytest.raises(ConfigError, match="resume_from_checkpoint"):
        trainer.train(resume_from_checkpoint=str(tmp_path))
    assert issubclass(dpaudit.PrivateTrainer, Trainer)


def test_an_unsupported_trainable_weight_is_refused_at_train(tmp_path):
    model = tiny_classifier(dtype=torch.float32)
    model.bert.encoder.layer[0].intermediate.dense.weight.requires_grad = True
    trainer = dpaudit.PrivateTrainer(model=model, args=_args(tmp_path), train_dataset=Examples(),
                                     noise_multiplier=1.0, max_grad_norm=0.1)
    with pytest.raises(UnsupportedModuleError, match=r"bert\.encoder\.layer\.0\.intermediate\.dense\.weight"):
        trainer.train()
