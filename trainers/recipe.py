"""From a :class:`~dpaudit.config.Config` to trained models: the one recipe that the target and every
shadow model follow (same backbone, DP hyper-parameters and training-set size).

:func:`resolve_privacy` turns the config into ``TrainSettings`` and the accounting facts (σ calibrated
from a target ε, δ defaulting to 1/(10·N), the budget guard's step limit); :func:`train_bank` builds the
banked classifier on the backbone and runs the trainer.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from dpaudit.config import Config
from dpaudit.distributed import SINGLE, Collective, current
from dpaudit.errors import ConfigError, PrivacyError
from dpaudit.privacy import calibrate_noise, check_delta, compute_epsilon, default_delta, max_steps
from dpaudit.rundir import RunDir
from dpaudit.trainers.batching import EncodedTexts
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.dp import ClippingConfig
from dpaudit.trainers.loop import Trainer, TrainOutcome, TrainSettings, sample_rate_and_steps
from dpaudit.trainers.randomness import secure_permutation


@dataclass(frozen=True)
class PrivacyPlan:
    """Resolved accounting inputs: σ, q, planned steps, δ, the target ε and the guard's step limit.

    Stage 2 of 4 (see ``dpaudit.config.PrivacyConfig``): what the trainer resolved from the user's request.
    """

    non_private: bool
    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float
    target_epsilon: float | None
    max_steps: int | None
    accountant: str
    neighbouring: str = "replace_one"  # the relation σ is calibrated and ε stated for

    def epsilon(self, steps: int) -> float:
        if self.non_private:
            return math.inf
        return compute_epsilon(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate,
                               steps=steps, delta=self.delta, accountant=self.accountant,
                               neighbouring=self.neighbouring)


#: Fewer optimizer steps than this and :func:`few_steps_warning` warns (DP-SGD's noise averages out over steps;
#: 1–9 steps barely move the model, and an audit of it says little). Shared with the audit's power checks.
FEW_STEPS = 10


def few_steps_warning(plan: PrivacyPlan, settings: TrainSettings) -> str | None:
    """A one-line warning when the plan trains fewer than :data:`FEW_STEPS` optimizer steps, naming the
    ``--batch-size`` (at the same epochs) or ``--epochs`` (at the same batch) that gives ≥ FEW_STEPS steps;
    ``None`` otherwise. Steps = round(epochs / q), q = batch / N (:func:`trainers.loop.sample_rate_and_steps`).
    """
    if plan.steps >= FEW_STEPS:
        return None
    n = settings.batch_size / plan.sample_rate  # mean training-set size
    batch = max(1, int(math.floor(settings.epochs * n / FEW_STEPS)))
    epochs = int(math.ceil(FEW_STEPS * plan.sample_rate))
    return (f"warning: training takes only {plan.steps} optimizer step{'s' if plan.steps != 1 else ''} (batch "
            f"{settings.batch_size} of ~{n:,.0f} training examples, epochs {settings.epochs:g}; fewer than {FEW_STEPS} "
            f"steps barely train the model and give the audit little to measure); use --batch-size {batch} or "
            f"--epochs {epochs} for ≥ {FEW_STEPS} steps")


def released_seed(cfg: Config, seed: int) -> int | None:
    """The seed of a model that can be released: ``None`` (secret CSPRNG randomness) unless the user asked
    for seeded noise by name (``train.noise = "seeded"`` / ``--seeded-noise``)."""
    return seed if cfg.train.noise == "seeded" else None


def permutation(cfg: Config, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` for a released model's data split: secret unless noise is seeded."""
    if cfg.train.noise == "seeded":
        return np.random.default_rng(cfg.train.seed).permutation(n)
    return secure_permutation(n)


def train_holdout_split(cfg: Config, n: int, *, name: str = "dataset") -> tuple[np.ndarray, np.ndarray]:
    """``(train ids, held-out ids)``, each sorted int64, of a released model's split of ``n`` examples:
    ``round(data.holdout_fraction · n)`` held out, drawn by :func:`permutation` (secret unless seeded).

    The one split of ``dpaudit train`` (and of ``dpaudit verify``, which needs the same N, hence q and ε).

    Raises:
        DataError: fewer than 2 training or 1 held-out example.
    """
    from dpaudit.errors import DataError

    order = permutation(cfg, n)
    n_hold = int(round(cfg.data.holdout_fraction * n))
    holdout, train_ids = np.sort(order[:n_hold]).astype(np.int64), np.sort(order[n_hold:]).astype(np.int64)
    if len(train_ids) < 2 or n_hold < 1:
        raise DataError(f"dataset '{name}' has {n} examples: too few to split into training and "
                        f"held-out data (holdout_fraction={cfg.data.holdout_fraction}); use more data.")
    return train_ids, holdout


def checkpoint_meta(cfg: Config, ds, info) -> dict:
    """The checkpoint metadata every dpaudit-trained model carries (``dpaudit train``, the audit's bank):
    backbone (hash, source), labels, tokenisation length, which biases are trained, the head's pooling and
    the dataset (hash, size). ``ds``: a :class:`~dpaudit.data.TextDataset`; ``info``: the backbone's info."""
    return {"backbone_sha256": info.sha256, "backbone_source": info.name, "model_name": info.name,
            "label_names": list(ds.label_names), "max_length": cfg.data.max_length,
            "exclude_modules": list(cfg.model.exclude_modules), "add_biases": cfg.model.add_biases,
            "pooling": cfg.model.pooling, "dataset_sha256": ds.sha256, "dataset_size": len(ds),
            **({"modality": "image", "image_shape": list(ds.image_shape)} if hasattr(ds, "pixels") else {})}


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA if present, else CPU; under torchrun ``auto``/``cuda`` is this rank's GPU."""
    if name in ("auto", "cuda") and torch.cuda.is_available() and current().world_size > 1:
        return torch.device(f"cuda:{torch.cuda.current_device()}")  # set from LOCAL_RANK by the session
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not (name == "cuda" or name.startswith("cuda:")):
        raise ConfigError(f"train.device must be one of {{auto, cpu, cuda, cuda:N}}, got device={name!r}.")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available; use device = 'cpu' or 'auto'.")
    return torch.device(name)


def resolve_privacy(cfg: Config, train_sizes: list[int]) -> tuple[TrainSettings, PrivacyPlan]:
    """Hyper-parameters and accounting for models whose training sets have sizes ``train_sizes``."""
    p, c, o, t = cfg.privacy, cfg.clipping, cfg.optim, cfg.train
    clipping = ClippingConfig(max_grad_norm=float(c.max_grad_norm), style=c.style, mode=c.mode,
                              groups={k: (str(v[0]), float(v[1])) for k, v in c.groups.items()})
    base = TrainSettings(epochs=float(t.epochs), batch_size=int(t.batch_size), micro_batch_size=t.micro_batch_size,
                         lr=float(o.lr), head_lr=None if o.head_lr is None else float(o.head_lr),
                         optimizer=o.optimizer, momentum=o.momentum, weight_decay=o.weight_decay,
                         schedule=o.schedule, warmup_fraction=o.warmup_fraction, clipping=clipping,
                         non_private=p.non_private, accountant=p.accountant, neighbouring=p.neighbouring,
                         autocast=t.autocast, dropout=t.dropout)
    q, steps = sample_rate_and_steps(base, train_sizes)
    n = int(min(train_sizes))
    delta = default_delta(n) if p.delta is None else check_delta(p.delta, n, force=p.force)
    if p.non_private:
        plan = PrivacyPlan(True, 0.0, q, steps, delta, None, None, p.accountant, p.neighbouring)
        return dataclasses.replace(base, noise_multiplier=0.0, delta=delta), plan
    if p.epsilon is not None and not (p.epsilon > 0 and math.isfinite(p.epsilon)):
        raise PrivacyError(f"privacy.epsilon must be in (0, inf), got epsilon={p.epsilon!r}; "
                           f"use privacy.non_private = true for an ε = ∞ reference.")
    if p.noise_multiplier is not None:
        sigma = float(p.noise_multiplier)
        if not sigma > 0:
            raise PrivacyError(f"privacy.noise_multiplier must be in (0, inf), got {sigma!r}; "
                               f"use privacy.non_private = true to train without noise.")
        guard = None
        if p.epsilon is not None:
            guard = max_steps(noise_multiplier=sigma, sample_rate=q, target_epsilon=p.epsilon, delta=delta,
                              accountant=p.accountant, neighbouring=p.neighbouring)
            if guard == 0:
                raise PrivacyError(f"not even one step fits in ε={p.epsilon} at σ={sigma}, q={q:.4g}; raise "
                                   f"privacy.epsilon or noise_multiplier.")
    elif p.epsilon is not None:
        sigma = calibrate_noise(target_epsilon=p.epsilon, delta=delta, sample_rate=q, steps=steps,
                                accountant=p.accountant, neighbouring=p.neighbouring)
        guard = max_steps(noise_multiplier=sigma, sample_rate=q, target_epsilon=p.epsilon, delta=delta,
                          accountant=p.accountant, neighbouring=p.neighbouring)
    else:
        raise ConfigError("no privacy level given: set privacy.epsilon, privacy.noise_multiplier or privacy.preset "
                          "(high | balanced | utility), or privacy.non_private = true.")
    plan = PrivacyPlan(False, sigma, q, steps, delta, p.epsilon, guard, p.accountant, p.neighbouring)
    return dataclasses.replace(base, noise_multiplier=sigma, delta=delta, target_epsilon=p.epsilon), plan


def build_classifier(backbone, cfg: Config, *, num_models: int, num_labels: int,
                     device: torch.device) -> BankedClassifier:
    return BankedClassifier.from_backbone(backbone.to(device), num_models=num_models, num_labels=num_labels,
                                          exclude_modules=cfg.model.exclude_modules,
                                          add_missing_biases=cfg.model.add_biases, pooling=cfg.model.pooling)


def train_bank(classifier: BankedClassifier, encoded: EncodedTexts, labels: np.ndarray, membership: np.ndarray,
               settings: TrainSettings, plan: PrivacyPlan, *, seeds: list[int | None], run: RunDir | None,
               meta: dict, progress: bool = True, comm: Collective = SINGLE) -> TrainOutcome:
    """Train every row of ``classifier`` on its membership row; resumes from ``run`` if possible.

    ``seeds[k]`` is ``None`` for secret randomness (a model that can be released) or an int (seeded).
    ``comm``: train data-parallel over its ranks (see :class:`~trainers.loop.Trainer`).
    """
    if plan.max_steps is not None and plan.max_steps < plan.steps:
        warnings.warn(f"budget guard: training stops after {plan.max_steps} of {plan.steps} planned steps, "
                      f"where ε would exceed the target {plan.target_epsilon}.", stacklevel=2)
    trainer = Trainer(classifier, encoded, labels, membership, settings, seeds=seeds, run=run, meta=meta,
                      epsilon_fn=None if plan.non_private else plan.epsilon, max_steps=plan.max_steps,
                      progress=progress, comm=comm)
    return trainer.run()
