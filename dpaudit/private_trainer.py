"""``dpaudit.PrivateTrainer``: DP-BiTFiT through the Hugging Face ``Trainer``, from ``TrainingArguments`` as
HF users write them (docs/library.md).

A ``transformers.Trainer`` subclass, not callbacks: the DP step needs three objects the Trainer builds — the
training data loader (its sampler must become Poisson), the optimizer (it must clip and add noise) and the
model's hooks — and callbacks can observe but not replace them. The subclass overrides exactly those
factories (``get_train_dataloader`` calls :meth:`dpaudit.PrivacyEngine.make_private` on the Trainer's model,
optimizer and loader) plus ``log`` (ε in every training log: ``state.log_history`` and the progress bar;
HF's ``grad_norm``, the norm of the non-private gradient, is dropped — the training loss stays, and like any DP-SGD loss log it is not
private) and
``save_model`` (a model card with the claim, :mod:`dpaudit.model_card`, and ``dpaudit-privacy.json``).

Settings that would break the accounting are refused with one line each: gradient accumulation (several
backward passes per step change what one step's sensitivity covers), more than one process or GPU (each would
add noise and draw batches), fp16 loss scaling (the per-sample gradients would carry the loss scale),
a ``train_sampling_strategy`` other than ``"random"`` or a custom sampler (not Poisson), ``auto_find_batch_size`` (q would
change mid-run), gradient checkpointing (recomputed forwards re-run the hooks), and resuming from a
checkpoint (the accountant's history is not in an HF checkpoint). ``max_steps`` > 0 takes precedence over
``num_train_epochs`` as in HF; σ calibrated from ``target_epsilon`` is for exactly the steps the Trainer will
take, and ε reported is always from the steps taken. HF's own ``max_grad_norm`` (global clipping of the
non-private gradient) is switched off: the per-example bound is ``PrivateTrainer(max_grad_norm=C)``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import Trainer

from dpaudit.errors import ConfigError
from dpaudit.private import PrivacyEngine

PRIVACY_FILE = "dpaudit-privacy.json"


def _sampling(args) -> str:
    """The sampler ``args`` asks for (``train_sampling_strategy``; older transformers: ``group_by_length``)."""
    if getattr(args, "group_by_length", False):
        return "group_by_length"
    return str(getattr(args, "train_sampling_strategy", "random"))


def _checkpointing(args) -> bool:
    return bool(getattr(args, "gradient_checkpointing", False) or getattr(args, "activation_checkpointing", False))


def check_training_args(args, trainer_cls) -> None:
    """Raise :class:`ConfigError` (one line) for a ``TrainingArguments`` setting that breaks the accounting."""
    problems = [
        (args.gradient_accumulation_steps != 1, f"gradient_accumulation_steps={args.gradient_accumulation_steps}: "
         "several backward passes per DP step change the sampling the accountant assumes; set it to 1 and raise "
         "per_device_train_batch_size instead"),
        (args.world_size > 1 or args.n_gpu > 1, f"{max(args.world_size, args.n_gpu)} processes/GPUs: each would draw "
         "its own batches and noise; run on one device (CUDA_VISIBLE_DEVICES=0) or use `torchrun -m dpaudit train`"),
        (bool(args.fp16), "fp16=True: loss scaling reaches the per-sample gradients; use bf16=True or float32"),
        (_sampling(args) != "random", f"train_sampling_strategy={_sampling(args)!r}: only Poisson sampling fits "
         "the accountant; leave it at 'random' (PrivateTrainer replaces the random sampler by Poisson sampling)"),
        (bool(getattr(args, "auto_find_batch_size", False)), "auto_find_batch_size=True: a batch size changed "
         "mid-run changes q; set per_device_train_batch_size yourself"),
        (_checkpointing(args), "gradient_checkpointing=True: recomputed forwards re-run the per-sample hooks; DP-BiTFiT keeps no activations anyway, so set it to False"),
    ]
    for bad, why in problems:
        if bad:
            raise ConfigError(f"PrivateTrainer: {why}.")
    if trainer_cls._get_train_sampler is not Trainer._get_train_sampler:
        raise ConfigError("PrivateTrainer: a custom _get_train_sampler is not Poisson sampling; remove the override "
                          "(PrivateTrainer draws every batch by Poisson sampling).")


class PrivateTrainer(Trainer):
    """``Trainer(model, args, train_dataset, …)`` that trains DP-BiTFiT.

    Args:
        noise_multiplier: σ; or give ``target_epsilon`` (with ``target_delta``) to calibrate σ for the steps
            the Trainer will take.
        target_delta: δ for the calibration and for the ε reported (default 1e-5).
        max_grad_norm: the per-example clipping norm C over all trainable tensors (required).
        accountant: ``"prv"`` (default) or ``"rdp"``.
        seed: reproducible Poisson batches and noise — tests only, never a release.
        **kwargs: ``transformers.Trainer``'s arguments (``model``, ``args``, ``train_dataset``, …). The model's
            trainable parameters must be DP-BiTFiT's (biases and the head; see :func:`dpaudit.make_private`).
    """

    def __init__(self, *args, max_grad_norm: float, noise_multiplier: float | None = None,
                 target_epsilon: float | None = None, target_delta: float = 1e-5, accountant: str = "prv",
                 seed: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check_training_args(self.args, type(self))
        self.args.max_grad_norm = 0.0  # HF's global clip of the non-private gradient: replaced by per-example C
        self.privacy_engine = PrivacyEngine(accountant=accountant)
        self._dp = {"max_grad_norm": max_grad_norm, "noise_multiplier": noise_multiplier,
                    "target_epsilon": target_epsilon, "seed": seed}
        self.target_delta = float(target_delta)

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        if resume_from_checkpoint:
            raise ConfigError("PrivateTrainer: resume_from_checkpoint would restart the accountant at 0 steps; "
                              "train in one run (or use `dpaudit train`, whose checkpoints carry the accounting).")
        if self.privacy_engine.hooks is not None:
            raise ConfigError("PrivateTrainer: train() was already called; make a new PrivateTrainer to train again.")
        return super().train(*args, **kwargs)

    def _planned_steps(self, steps_per_epoch: int) -> int:
        if self.args.max_steps > 0:
            return int(self.args.max_steps)
        return int(math.ceil(self.args.num_train_epochs * steps_per_epoch))

    def get_train_dataloader(self):
        base = super().get_train_dataloader()
        if self.optimizer is None:
            self.create_optimizer()
        dp = dict(self._dp)
        if dp["target_epsilon"] is not None:
            dp["target_delta"], dp["steps"] = self.target_delta, self._planned_steps(len(base))
        self.model, self.optimizer, loader = self.privacy_engine.make_private(
            module=self.model, optimizer=self.optimizer, data_loader=base, **dp)
        return loader

    def epsilon(self) -> float:
        """ε (nats) spent so far at ``target_delta``."""
        return self.privacy_engine.get_epsilon(self.target_delta)

    def log(self, logs: dict, *args, **kwargs) -> None:
        if self.privacy_engine.hooks is not None and ("loss" in logs or "train_runtime" in logs):
            # grad_norm is HF's norm of the non-private gradient (before clipping and noise): not logged
            logs = {**{k: v for k, v in logs.items() if k != "grad_norm"}, "epsilon": self.epsilon(),
                    "dp_steps": self.privacy_engine.steps}
        super().log(logs, *args, **kwargs)

    def claim(self):
        """The :class:`~dpaudit.model_card.ReleaseClaim` of the model as trained so far."""
        from dpaudit.model_card import ReleaseClaim

        e = self.privacy_engine
        return ReleaseClaim(epsilon=self.epsilon(), delta=self.target_delta, noise_multiplier=float(e.noise_multiplier),
                     sample_rate=float(e.sample_rate), steps=e.steps, accountant=e.accountant,
                     max_grad_norm=e.max_grad_norm, noise=e.noise, neighbouring=e.neighbouring)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        if self.privacy_engine.hooks is None or not self.is_world_process_zero():
            return
        from dpaudit.model_card import render_card

        out = Path(output_dir or self.args.output_dir)
        claim = self.claim()
        config = getattr(self.model, "config", None)
        labels = [str(v) for _, v in sorted((getattr(config, "id2label", None) or {}).items())]
        base = str(getattr(config, "_name_or_path", "") or getattr(config, "model_type", "unknown"))
        (out / "README.md").write_text(render_card(claim, base_model=base, labels=labels,
                                                   source="dpaudit.PrivateTrainer's accountant, for the steps taken"),
                                       encoding="utf-8")
        (out / PRIVACY_FILE).write_text(json.dumps(claim.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def create_model_card(self, *args, **kwargs) -> None:
        """The DP card is written by :meth:`save_model`; HF's generic card would omit the claim."""
        if self.privacy_engine.hooks is not None:
            self.save_model()
