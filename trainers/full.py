"""The ``full`` shadow recipe: full fine-tuning of a backbone, non-private or DP with Opacus.

LiRA and RMIA are valid only when the reference models train like the target. A target fine-tuned in full
(the Hugging Face Trainer, Opacus on every weight) is poorly imitated by DP-BiTFiT shadows, so this recipe
trains each shadow as an ordinary ``AutoModelForSequenceClassification``: every weight trainable, one model
after another (no BiasBank: full models share nothing), each committed to the run directory before the next.

Per step, for exactly ``steps`` steps:

1. Poisson sampling: each of the model's training examples is drawn with probability q (numpy generator
   seeded per model: shadows are never released, so their batches and noise may be reproducible).
2. Micro-batches of at most ``micro_batch_size`` examples; per-example losses are summed.
3. DP: Opacus' ``GradSampleModule`` computes per-sample gradients of every weight, ``DPOptimizer`` clips each
   to norm C (``min(1, C / (‖g_i‖ + 1e-6))``), sums over the micro-batches of one logical batch and adds
   ``N(0, σ²C² I)`` once; the sum is divided by the expected batch size ``q · N_k`` (Abadi et al. 2016,
   arXiv 1607.00133v2, Algorithm 1). Non-private: the plain sum of gradients divided by ``q · N_k``.

Two traps of per-sample gradients on Hugging Face encoders are avoided here: ``from_pretrained`` returns a
model in eval mode (it is put in train mode, with dropout set to 0 unless asked for, as dpaudit's own
trainer does), and buffered ``position_ids`` / ``token_type_ids`` of batch size 1 would give the embedding
layers a per-sample gradient of the wrong batch size, so both are passed with a batch dimension.

Images (:class:`~trainers.image_batching.EncodedImages`): the model is the directory's
``AutoModelForImageClassification`` with a new head (ViT: on the CLS token; ConvNeXt/ResNet: on the pooled
feature) and its input is ``pixel_values``; every weight trains, BatchNorm in train mode included — which is
fine for the non-private reference, while the DP variant goes through Opacus, which refuses BatchNorm.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dpaudit._validation import check_choice, check_int, check_real
from dpaudit.errors import ConfigError, DataError
from dpaudit.rundir import RunDir
from dpaudit.trainers.batching import EncodedTexts
from dpaudit.trainers.image_batching import EncodedImages

FULL_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
#: ``model_type`` of encoders that number positions from ``pad_token_id + 1`` and compute per-example
#: position ids from ``input_ids`` themselves (so none are passed).
_SELF_POSITIONED = frozenset({"roberta", "xlm-roberta", "camembert", "data2vec-text", "longformer", "mpnet",
                              "roberta-prelayernorm", "xlm-roberta-xl", "ibert", "luke", "xmod", "esm"})


@dataclass(frozen=True)
class FullRecipe:
    """Hyper-parameters of one full fine-tuning run (every shadow of the recipe shares them).

    Attributes:
        non_private: train without clipping or noise (σ and C are then ignored).
        noise_multiplier: σ = noise std / C, dimensionless, ≥ 0.
        sample_rate: Poisson sampling rate q per step, a probability in (0, 1].
        steps: optimizer steps (not epochs); the expected number of epochs is ``q · steps``.
        max_grad_norm: per-example clipping threshold C (L2 norm over all weights), > 0.
        lr: learning rate, > 0.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (plain, no momentum).
        max_length: tokens per example the encoded texts were cut to (checked against the model's positions).
        micro_batch_size: examples per forward/backward pass (memory only; the result does not depend on it).
        dropout: keep the model's dropout during training (default off, like dpaudit's trainer).
    """

    non_private: bool
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    lr: float
    optimizer: str = "adam"
    max_length: int = 64
    micro_batch_size: int = 32
    dropout: bool = False

    def __post_init__(self) -> None:
        check_real("noise_multiplier", self.noise_multiplier, 0, 1_000_000)
        check_real("sample_rate", self.sample_rate, 0, 1, closed="right")
        check_int("steps", self.steps, 1, 10_000_000)
        check_real("max_grad_norm", self.max_grad_norm, 0, 1_000_000, closed="right")
        check_real("lr", self.lr, 0, 100, closed="right")
        check_choice("optimizer", self.optimizer, tuple(FULL_OPTIMIZERS))
        check_int("max_length", self.max_length, 1, 131_072)
        check_int("micro_batch_size", self.micro_batch_size, 1, 65_536)

    def to_dict(self) -> dict:
        return asdict(self)


def _load(model_dir, num_labels: int, max_length: int, seed: int, *, images: bool = False):
    from dpaudit.models import quiet_hf_loading, resolve_model_dir

    path, _ = resolve_model_dir(model_dir, max_length=None if images else max_length)  # auto_map, positions
    # "newly initialized: classifier.*" is expected
    with quiet_hf_loading(path, "an image classifier" if images else "a sequence classifier"), \
            torch.random.fork_rng(devices=[]):
        from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

        torch.manual_seed(seed)  # the new head's initialisation, per model
        auto = AutoModelForImageClassification if images else AutoModelForSequenceClassification
        return auto.from_pretrained(
            path, num_labels=num_labels, trust_remote_code=False, local_files_only=True, ignore_mismatched_sizes=True)


def _no_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "attention_dropout", "dropout"):
        if isinstance(getattr(model.config, key, None), float):
            setattr(model.config, key, 0.0)


class _Inputs:
    """Builds forward kwargs with batch-shaped ``position_ids`` / ``token_type_ids`` where the model takes them."""

    def __init__(self, model: torch.nn.Module, encoded: EncodedTexts, device: torch.device) -> None:
        self.images = isinstance(encoded, EncodedImages)
        accepted = inspect.signature(model.forward).parameters
        self.positions = "position_ids" in accepted and model.config.model_type not in _SELF_POSITIONED
        self.types = "token_type_ids" in accepted and getattr(model.config, "type_vocab_size", 0) > 0
        self.encoded, self.device = encoded, device

    def __call__(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        ids, mask = self.encoded.collate(indices, self.device)
        if self.images:
            return {"pixel_values": ids}
        kwargs = {"input_ids": ids, "attention_mask": mask}
        if self.positions:
            kwargs["position_ids"] = torch.arange(ids.shape[1], device=self.device).expand_as(ids).contiguous()
        if self.types:
            kwargs["token_type_ids"] = self.encoded.collate_types(indices, self.device)
        return kwargs


def train_full(model_dir, encoded: EncodedTexts, labels: np.ndarray, member_mask: np.ndarray, num_labels: int,
               recipe: FullRecipe, *, seed: int, device, progress: bool = False) -> torch.nn.Module:
    """Fine-tune every weight of ``model_dir``'s encoder plus a new head on the examples in ``member_mask``.

    Args:
        model_dir: a local Hugging Face checkpoint directory, or ``"embedded"`` / None for the default.
        encoded: the tokenised population (N examples).
        labels: int array of shape (N,), values in ``range(num_labels)``.
        member_mask: bool array of shape (N,): the training set.
        num_labels: classes of the new head.
        recipe: the hyper-parameters.
        seed: seeds the head, the Poisson batches and the noise (reproducible: shadows only).
        device: torch device.
        progress: show a progress bar over steps.

    Returns:
        The trained ``AutoModelForSequenceClassification`` in eval mode, hooks removed.
    """
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    device = torch.device(device)
    members = np.flatnonzero(np.asarray(member_mask, dtype=bool))
    if len(members) == 0:
        raise ConfigError("member_mask selects no example; a model needs a training set.")
    model = _load(model_dir, num_labels, recipe.max_length, seed,
                  images=isinstance(encoded, EncodedImages)).to(device)
    model.train()  # from_pretrained returns eval mode
    if not recipe.dropout:
        _no_dropout(model)
    inputs = _Inputs(model, encoded, device)
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    params = [p for p in model.parameters() if p.requires_grad]
    base = FULL_OPTIMIZERS[recipe.optimizer](params, lr=recipe.lr)
    if recipe.non_private:
        net, optimizer = model, base
    else:
        net = GradSampleModule(model, loss_reduction="sum")
        generator = torch.Generator(device=device).manual_seed(seed)
        optimizer = DPOptimizer(base, noise_multiplier=recipe.noise_multiplier, max_grad_norm=recipe.max_grad_norm,
                                expected_batch_size=None, loss_reduction="sum", generator=generator)
    with warnings.catch_warnings():  # opacus' hooks on a first layer whose input needs no gradient: expected
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        _steps(net, optimizer, base, params, inputs, labels_t, members, recipe, seed=seed, progress=progress)
    if not recipe.non_private:
        net._close()  # removes the hooks and per-sample attributes
    return model.eval()


def _steps(net, optimizer, base, params, inputs: _Inputs, labels_t: torch.Tensor, members: np.ndarray,
           recipe: FullRecipe, *, seed: int, progress: bool) -> None:
    """Exactly ``recipe.steps`` Poisson-sampled steps (see the module docstring)."""
    from tqdm.auto import tqdm

    encoded, device = inputs.encoded, inputs.device
    scale = 1.0 / (recipe.sample_rate * len(members))  # expected logical batch q·N_k, as in the accountant
    rng = np.random.default_rng(seed)
    for _ in tqdm(range(recipe.steps), disable=not progress, desc="full", unit="step", dynamic_ncols=True):
        batch = members[rng.random(len(members)) < recipe.sample_rate]
        batch = batch[np.argsort(encoded.lengths[batch], kind="stable")]
        optimizer.zero_grad(set_to_none=True)
        chunks = [batch[i : i + recipe.micro_batch_size] for i in range(0, len(batch), recipe.micro_batch_size)]
        if not chunks and not recipe.non_private:  # an empty Poisson batch: the step is noise alone
            for p in params:
                p.grad_sample = torch.zeros((0, *p.shape), device=device, dtype=p.dtype)
        for j, chunk in enumerate(chunks):
            logits = net(**inputs(chunk)).logits
            F.cross_entropy(logits.float(), labels_t[chunk].to(device), reduction="sum").backward()
            if not recipe.non_private and j < len(chunks) - 1:
                optimizer.signal_skip_step(do_skip=True)  # clip and accumulate; noise once per logical batch
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        if recipe.non_private:
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(scale)
            optimizer.step()
        else:
            if not optimizer.pre_step():  # clip the last micro-batch, add noise once (never skipped here)
                raise RuntimeError("opacus skipped the last micro-batch of a logical batch")
            for p in params:
                p.grad.mul_(scale)
            base.step()


@torch.no_grad()
def classifier_logits(model: torch.nn.Module, encoded: EncodedTexts, *, device, batch_size: int) -> np.ndarray:
    """Logits (N, C) float32 of a sequence-classification model on every example of ``encoded`` (length-sorted
    batches of ``batch_size``; batch-shaped position and segment ids as in training)."""
    device = torch.device(device)
    inputs = _Inputs(model, encoded, device)
    order = np.argsort(encoded.lengths, kind="stable")
    out = None
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        logits = model(**inputs(idx)).logits.float().cpu().numpy()
        if out is None:
            out = np.zeros((len(encoded), logits.shape[1]), dtype=np.float32)
        out[idx] = logits
    return out


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _inputs_sha256(encoded: EncodedTexts, labels: np.ndarray, model_dir) -> str:
    """Hash of what every shadow of a run sees: tokens, segments (or preprocessed pixels), labels and the
    backbone directory's path."""
    h = hashlib.sha256(str(Path(model_dir) if model_dir not in (None, "") else "embedded").encode() + b"\x00")
    if isinstance(encoded, EncodedImages):
        h.update(b"pixels" + str(tuple(encoded.pixel_values.shape)).encode() + b"\x00")
        h.update(encoded.pixel_values.contiguous().numpy().tobytes())
        h.update(np.asarray(labels, dtype=np.int64).tobytes())
        return h.hexdigest()
    for i, ids in enumerate(encoded.ids):
        h.update(np.asarray(ids, dtype=np.int64).tobytes() + b"\x00")
        if encoded.type_ids is not None:
            h.update(np.asarray(encoded.type_ids[i], dtype=np.int64).tobytes())
        h.update(b"\x01")
    h.update(np.asarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def shadow_file(k: int) -> str:
    return f"shadow-full-{k:03d}.npy"


def full_shadow_logits(model_dir, encoded: EncodedTexts, labels: np.ndarray, membership: np.ndarray,
                       num_labels: int, recipe: FullRecipe, *, seeds: list[int], run: RunDir, device,
                       progress: bool = False, score_batch_size: int = 256) -> np.ndarray:
    """Train K full fine-tuned shadows one after another; return their logits on the population.

    Model k trains on ``membership[k]`` with ``seeds[k]``; its logits on all N examples are committed to
    ``run`` as ``shadow-full-{k:03d}.npy`` (0600) with the recipe, the hash of its membership row, its seed and
    the inputs' hash recorded, before model k+1 starts. A rerun reuses a file only when it is verified (bytes
    as committed: a changed file is refused by :meth:`RunDir.verified`) and its record matches all of these;
    a file for another row, seed or recipe is recomputed. A kill loses at most the model in progress.

    Args:
        membership: bool array of shape (K, N).
        seeds: K integer seeds.
        run: the claimed, bound run directory.
        score_batch_size: examples per scoring pass.

    Returns:
        float32 array of shape (K, N, C).
    """
    membership = np.asarray(membership, dtype=bool)
    if membership.ndim != 2 or membership.shape[1] != len(encoded) or len(seeds) != membership.shape[0]:
        raise DataError(f"membership must have shape (K, {len(encoded)}) with K = len(seeds) = {len(seeds)}, "
                          f"got membership.shape={membership.shape}.")
    inputs_sha = _inputs_sha256(encoded, labels, model_dir)
    recipe_json = json.loads(json.dumps(recipe.to_dict()))
    out = np.zeros((membership.shape[0], len(encoded), num_labels), dtype=np.float32)
    for k, (row, seed) in enumerate(zip(membership, seeds)):
        name = shadow_file(k)
        expected = {"recipe": "full", "hyper_parameters": recipe_json, "seed": int(seed), "inputs_sha256": inputs_sha,
                    "membership_sha256": hashlib.sha256(np.packbits(row).tobytes()).hexdigest()}
        path = run.verified(name)  # raises on a file changed after it was committed
        entry = run.entry(name) or {}
        if path is not None and all(entry.get(key) == value for key, value in expected.items()):
            logits = np.load(path, allow_pickle=False)
            if logits.shape == out.shape[1:]:
                out[k] = logits
                continue
        run.forget(name)  # another row, seed, recipe or population: nothing stale is reused
        model = train_full(model_dir, encoded, labels, row, num_labels, recipe, seed=int(seed), device=device,
                           progress=progress)
        out[k] = classifier_logits(model, encoded, device=device, batch_size=score_batch_size)
        del model
        run.write(name, _npy_bytes(out[k]), **expected)
    return out
