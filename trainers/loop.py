"""The DP-BiTFiT training loop for a BiasBank of K models (K=1: the ordinary trainer).

Per step (one logical batch per model):

1. Poisson sampling: model k draws each of its N_k training examples with probability q from its own
   :class:`~trainers.randomness.RandomSource` — the OS CSPRNG (``seeds[k] = None``, every model that can be
   released) or a stream keyed by ``(seeds[k], step)`` (tests, benchmarks, shadows), under which row k of a
   bank reproduces a single-model run with that seed and a resume replays the uninterrupted run.
2. The (example, model) pairs of all K models are split into micro-batches (sorted by length); each is
   one forward/backward on the shared backbone; :class:`~trainers.dp.DPAggregator` clips per example and
   sums per model row.
3. Noise once per logical batch, division by ``q · N_k``, optimizer and learning-rate schedule step
   (:mod:`trainers.optim`).

Accounting: every model takes the same ``steps`` at the same ``(q, σ)``; the accountant history is
``[(σ, q, steps)]``. With a target ε, a budget guard stops training before any step that would take ε
above the target. A checkpoint (tables + optimizer state + step + accountant history, one atomic file,
:mod:`trainers.checkpoint`) is committed at every epoch boundary; a rerun resumes from the last one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from dpaudit.config import FALLBACKS, OptimConfig, PrivacyConfig, TrainConfig
from dpaudit.errors import ConfigError, TrainingDivergedError
from dpaudit.distributed import SINGLE, Collective, shard_rows
from dpaudit.rundir import RunDir
from dpaudit.trainers import checkpoint
from dpaudit.trainers.batching import EncodedTexts, micro_batches
from dpaudit.trainers.causal_lm import example_losses
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.dp import ClippingConfig, DPAggregator
from dpaudit.trainers.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_scheduler
from dpaudit.trainers.randomness import RandomSource, make_sources


_OPTIM, _PRIVACY, _TRAIN = OptimConfig(), PrivacyConfig(), TrainConfig()


@dataclass(frozen=True)
class TrainSettings:
    """Resolved hyper-parameters shared by every model of the bank.

    ``batch_size`` is the expected logical batch per model (``q = batch_size / N`` with N the mean
    training-set size); ``noise_multiplier`` is σ = noise std / C_tot; ``epochs`` converts to
    ``steps = round(epochs / q)``.
    """

    # Defaults are the config's (dpaudit.config), so a trainer built directly trains like `dpaudit train`.
    epochs: float = FALLBACKS["train"]["epochs"]
    batch_size: int = FALLBACKS["train"]["batch_size"]
    micro_batch_size: int = _TRAIN.micro_batch_size
    lr: float = FALLBACKS["optim"]["lr"]
    # The task head's learning rate; None: lr. Unlike the fields above, not the config's fallback (5e-2): a
    # trainer built directly steps every tensor at lr unless told otherwise.
    head_lr: float | None = None
    optimizer: str = _OPTIM.optimizer
    momentum: float = _OPTIM.momentum
    weight_decay: float = _OPTIM.weight_decay
    schedule: str = _OPTIM.schedule
    warmup_fraction: float = _OPTIM.warmup_fraction
    noise_multiplier: float = 1.0  # resolved σ; the config leaves it to calibration from ε
    # C = 1, not the config's 0.1: a trainer built directly clips at the unit norm, as it always has
    clipping: ClippingConfig = field(default_factory=lambda: ClippingConfig(max_grad_norm=1.0))
    non_private: bool = _PRIVACY.non_private
    target_epsilon: float | None = None
    delta: float = 1e-5  # resolved δ; the config's default is 1/(10·N), known only with the data
    accountant: str = _PRIVACY.accountant
    neighbouring: str = _PRIVACY.neighbouring  # the relation ε is stated for (replace_one / add_remove)
    autocast: bool = _TRAIN.autocast
    dropout: bool = _TRAIN.dropout
    sample_rate: float | None = None  # fixed q instead of batch_size / N (shadows copying a target)
    steps: int | None = None  # fixed step count instead of round(epochs / q)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optim.optimizer must be one of {set(OPTIMIZERS)}, got optimizer={self.optimizer!r}.")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule must be one of {set(SCHEDULES)}, got schedule={self.schedule!r}.")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["clipping"] = self.clipping.to_dict()
        return d


@dataclass
class TrainOutcome:
    """What a training run did: steps taken, ε history, wall time, why it stopped."""

    steps: int
    planned_steps: int
    sample_rate: float
    epsilon_history: dict = field(default_factory=lambda: {"steps": [], "epsilons": []})
    wall_time_s: float = 0.0
    stopped_by_budget: bool = False
    resumed_from_step: int = 0
    clip_fraction: float = 0.0
    mean_grad_norm: float = 0.0


def sample_rate_and_steps(settings: TrainSettings, train_sizes: Sequence[int]) -> tuple[float, int]:
    """``(q, steps)``: ``q = batch_size / mean(N_k)`` and ``steps = round(epochs / q)``, unless fixed."""
    if settings.sample_rate is not None and settings.steps is not None:
        return float(settings.sample_rate), int(settings.steps)
    n = float(np.mean(train_sizes))
    if settings.batch_size > min(train_sizes):
        raise ConfigError(
            f"batch_size={settings.batch_size} is larger than the training set ({min(train_sizes)} examples); "
            f"lower train.batch_size (--batch-size) to at most {min(train_sizes)}, or use more data."
        )
    q = settings.batch_size / n
    return q, max(1, int(round(settings.epochs / q)))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively (AVX512-BF16 or AMX, as oneDNN reports it)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_autocast(requested: bool, device: torch.device) -> bool:
    """Whether ``train.autocast`` runs the backbone's forward in bf16 on ``device``.

    On CUDA always; on a CPU only with native bf16 (there ≈ 1.2–1.5× faster per step; elsewhere slower).
    Per-sample sums, norms, clipping and noise stay float32 either way (:mod:`trainers.bias_sums`), so the
    clipped contribution of an example is bounded by C whatever the forward's precision.

    Raises:
        ConfigError: requested on a CPU without native bf16.
    """
    if not requested:
        return False
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return True
    raise ConfigError(f"train.autocast=true needs CUDA or a CPU with native bf16 (AVX512-BF16/AMX); "
                      f"device {device} has neither — set train.autocast=false.")


class Trainer:
    """Trains the K models of ``classifier`` on ``membership`` (K, N) over ``encoded``/``labels``.

    Args:
        classifier: the banked classifier (its ``num_models`` rows = membership rows).
        encoded, labels: the population, tokenised, and its labels (N,).
        membership: bool (K, N); row k = model k's training set.
        settings: hyper-parameters.
        seeds: per model, ``None`` for secret randomness (OS CSPRNG; the default for anything released) or
            an int for a reproducible, seeded stream (never for a release).
        run: the run directory that receives ``models.safetensors``; None: no files.
        meta: extra checkpoint metadata (backbone hash and source, labels, …).
        epsilon_fn: ``(steps) -> ε`` for the progress bar and the ε history (None for non-private).
        max_steps: the budget guard's last allowed step count (None: no guard).
        comm: the ranks of a data-parallel run (default: this process alone): every rank holds the same
            model; each draws the Poisson batch of its own shard of each training set, clips and sums it
            locally; :class:`~trainers.dp.DPAggregator` all-reduces the sums and rank 0 adds the noise; rank
            0 alone writes checkpoints (``run`` is ignored elsewhere) and a resume starts from rank 0's.
    """

    def __init__(self, classifier: BankedClassifier, encoded: EncodedTexts, labels: np.ndarray,
                 membership: np.ndarray, settings: TrainSettings, *, seeds: Sequence[int | None],
                 run: RunDir | None = None, meta: dict | None = None,
                 epsilon_fn: Callable[[int], float] | None = None, max_steps: int | None = None,
                 progress: bool = True, comm: Collective = SINGLE) -> None:
        self.clf, self.encoded, self.settings = classifier, encoded, settings
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.members = [np.flatnonzero(row) for row in np.asarray(membership, dtype=bool)]
        self.seeds = [None if s is None else int(s) for s in seeds]
        self.sources = make_sources(self.seeds)
        self.comm = comm
        self.rundir, self.meta = (run if comm.is_main else None), dict(meta or {})
        self.epsilon_fn, self.max_steps, self.progress = epsilon_fn, max_steps, progress and comm.is_main
        self.device = next(classifier.parameters()).device
        self.q, self.planned_steps = sample_rate_and_steps(settings, [len(m) for m in self.members])
        self.lengths = encoded.lengths
        self.agg = DPAggregator(classifier, clipping=settings.clipping, noise_multiplier=settings.noise_multiplier,
                                sources=self.sources, non_private=settings.non_private, comm=comm)
        head = [s.param for s in classifier.slots if s.name.startswith("head.")]
        self.opt = make_optimizer([s.param for s in classifier.slots if not s.name.startswith("head.")],
                                  head_params=head, head_lr=settings.head_lr, name=settings.optimizer,
                                  lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
        self.sched = make_scheduler(self.opt, schedule=settings.schedule, warmup_fraction=settings.warmup_fraction,
                                    steps=self.planned_steps)
        self.autocast = bf16_autocast(settings.autocast, self.device)
        self.step = 0
        self.history = {"steps": [0], "epsilons": [0.0]}
        self._commitments: list[str] | None = None

    # --- checkpoints -----------------------------------------------------------------------------
    def _checkpoint_meta(self) -> dict:
        return {**self.meta, "num_models": self.clf.num_models, "steps": self.step, "sample_rate": self.q,
                "noise_multiplier": self.agg.noise_multiplier, "non_private": self.settings.non_private,
                "accountant_history": [] if self.settings.non_private else
                [[self.agg.noise_multiplier, self.q, self.step]],
                "noise": [src.kind for src in self.sources], "seeds": self.seeds,
                **({"world_size": self.comm.world_size} if self.comm.world_size > 1 else {}),
                "settings": self.settings.to_dict(), "epsilon_history": self.history,
                "membership_commitments": self._membership(create=True),
                "optimizer": {"param_groups": self.opt.state_dict()["param_groups"],
                              "scheduler": self.sched.state_dict()}}

    def _membership(self, *, create: bool) -> list[str] | None:
        """The keyed commitments to every row's training set (cached; ``None`` without a run directory)."""
        if self.rundir is None:
            return None
        if self._commitments is None:
            self._commitments = checkpoint.membership_commitments(self.rundir, self.members, create=create)
        return self._commitments

    def save(self) -> None:
        """Commit tables, optimizer moments, step count and accountant history in one atomic write."""
        if self.rundir is None:
            return
        checkpoint.save_checkpoint(self.rundir, self.clf.trainable_state(), checkpoint.optimizer_tensors(self.opt),
                                   self._checkpoint_meta())

    def try_resume(self) -> bool:
        """Restore the last committed checkpoint of an interrupted run with the same settings, seeds and
        training sets (keyed commitments, :func:`~trainers.checkpoint.check_membership`).

        Randomness is not restored: secure rows draw fresh entropy, seeded rows are keyed by the step.
        Data-parallel: rank 0 reads and checks the checkpoint and broadcasts it (safetensors bytes), so every
        rank resumes from the same step and state whatever the world size (the training does not depend
        on it: sampling is per example and the noise is rank 0's).
        """
        if self.comm.world_size > 1:
            resumed = self._resume_from_file()
            blob = self.comm.broadcast_bytes(self._state_bytes() if resumed else None)
            if blob and not self.comm.is_main:
                tables, state, meta = checkpoint.parse_checkpoint(blob)
                self._load(tables, state, meta)
            return bool(blob)
        return self._resume_from_file()

    def _state_bytes(self) -> bytes:
        return checkpoint.checkpoint_bytes(self.clf.trainable_state(), checkpoint.optimizer_tensors(self.opt),
                                           self._checkpoint_meta())

    def _load(self, tables: dict, state: dict, meta: dict) -> None:
        self.clf.load_trainable_state({k: v.to(self.device) for k, v in tables.items()})
        checkpoint.restore_optimizer(self.opt, state, meta["optimizer"]["param_groups"], self.device)
        self.sched.load_state_dict(meta["optimizer"]["scheduler"])
        self.step, self.history = int(meta["steps"]), meta["epsilon_history"]

    def _resume_from_file(self) -> bool:
        if self.rundir is None:
            return False
        path = self.rundir.verified(checkpoint.MODELS_FILE)
        if path is None:
            return False
        tables, state, meta = checkpoint.read_checkpoint(path)
        checkpoint.check_resumable(meta, settings=self.settings.to_dict(), seeds=self.seeds,
                                   backbone_sha256=self.meta.get("backbone_sha256"), where=self.rundir.path)
        checkpoint.check_membership(meta, self._membership(create=False), where=self.rundir.path)
        self._load(tables, state, meta)
        return True

    # --- training --------------------------------------------------------------------------------
    def _draw(self, src: RandomSource, n: int) -> np.ndarray:
        """This rank's Poisson mask over its shard of a training set of ``n`` examples.

        Each example is drawn once, at rate q, by the one rank that holds it, so the union over ranks is an
        exact Poisson sample of the whole set. A secure row draws only its shard from this rank's own CSPRNG
        (nothing about the batch crosses the wire; a seed broadcast from rank 0 would); a seeded row draws
        the whole set's mask from the shared stream and keeps its shard, as one process would draw it.
        """
        lo, hi = shard_rows(n, self.comm.rank, self.comm.world_size)
        if self.comm.world_size == 1 or src.kind != "seeded":
            return src.bernoulli(hi - lo, self.q, step=self.step)
        return src.bernoulli(n, self.q, step=self.step)[lo:hi]

    def _logical_batch(self) -> tuple[np.ndarray, np.ndarray]:
        ex, mo = [], []
        for k, (src, members) in enumerate(zip(self.sources, self.members)):
            lo, hi = shard_rows(len(members), self.comm.rank, self.comm.world_size)
            picked = members[lo:hi][self._draw(src, len(members))]
            ex.append(picked)
            mo.append(np.full(len(picked), k, dtype=np.int64))
        return np.concatenate(ex), np.concatenate(mo)

    def _loss_sum(self, logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, ex: np.ndarray) -> torch.Tensor:
        """``Σ_i ℓ_i`` over a micro-batch: cross-entropy on the labels, or (a causal LM) each example's mean
        next-token NLL over its targets (:func:`trainers.causal_lm.example_losses`)."""
        if getattr(self.clf, "task", None) == "causal_lm":
            return example_losses(logits, ids, mask, self.encoded.collate_loss_mask(ex, self.device)).sum()
        return F.cross_entropy(logits.float(), self.labels[ex].to(self.device), reduction="sum")

    def _train_step(self) -> float:
        examples, models = self._logical_batch()
        total_loss = 0.0
        for ex, mo in micro_batches(examples, models, self.lengths, self.settings.micro_batch_size):
            ids, mask = self.encoded.collate(ex, self.device)
            m = torch.from_numpy(mo).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.clf(ids, mask, m)
            loss = self._loss_sum(logits, ids, mask, ex)
            if not torch.isfinite(loss):
                self.clf.bank.release()
                raise TrainingDivergedError(
                    f"loss became {float(loss.detach())} at step {self.step + 1}; the last good checkpoint is kept in "
                    f"'{self.rundir.path if self.rundir else None}' — lower optim.lr or max_grad_norm and retrain."
                )
            loss.backward()
            self.agg.accumulate()
            total_loss += float(loss.detach())
        expected = [self.q * len(m) for m in self.members]
        self.agg.finalize(expected_batch_size=expected, step=self.step)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()
        return total_loss / max(1, len(examples))

    def run(self, *, resume: bool = True) -> TrainOutcome:
        from tqdm.auto import tqdm

        start_time = time.perf_counter()
        resumed = self.try_resume() if resume else False
        outcome = TrainOutcome(steps=self.step, planned_steps=self.planned_steps, sample_rate=self.q,
                               resumed_from_step=self.step if resumed else 0)
        self.clf.backbone.train(self.settings.dropout)
        steps_per_epoch = max(1, int(round(1.0 / self.q)))
        marks = set(np.linspace(0, self.planned_steps, 21).round().astype(int).tolist())
        bar = tqdm(total=self.planned_steps, initial=self.step, disable=not self.progress,
                   desc=f"train ×{self.clf.num_models}" if self.clf.num_models > 1 else "train", unit="step",
                   dynamic_ncols=True)
        eps_now = self.history["epsilons"][-1]
        try:
            while self.step < self.planned_steps:
                if self.max_steps is not None and self.step >= self.max_steps:
                    outcome.stopped_by_budget = True
                    break
                self._train_step()  # its mean loss is an un-noised statistic of the secret batch: never shown
                self.step += 1
                if self.epsilon_fn is not None and (self.step in marks or self.step % steps_per_epoch == 0):
                    eps_now = self.epsilon_fn(self.step)
                    self.history["steps"].append(self.step)
                    self.history["epsilons"].append(eps_now)
                # ε only: a function of σ, q and the step count (public under replace-one). The batch loss
                # and clip fraction are un-noised statistics of the secret batches (docs/design.md,
                # "Release boundary") and never reach a screen a CI log keeps.
                bar.set_postfix(eps="inf" if self.settings.non_private else f"{eps_now:.2f}", refresh=False)
                bar.update(1)
                if self.step % steps_per_epoch == 0 or self.step == self.planned_steps:
                    self.save()
        finally:
            bar.close()
        if outcome.stopped_by_budget:
            self.save()
        stats = self.agg.reduced_stats() if self.comm.world_size > 1 else self.agg.stats
        outcome.steps = self.step
        outcome.epsilon_history = self.history
        outcome.wall_time_s = time.perf_counter() - start_time
        outcome.clip_fraction = stats["clipped"] / max(1, stats["examples"])
        outcome.mean_grad_norm = stats["norm_sum"] / max(1, stats["examples"])
        return outcome
