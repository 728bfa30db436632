"""The full fine-tuning reference (``audit.reference = "full_non_private"``): what teams do without DP.

One model, every weight of the backbone plus a new head, trained non-privately (AdamW, no clipping, no
noise: :mod:`dpaudit.trainers.full`) on the target's training set — row 0 of the membership matrix, the
target's natural members and its included canaries — and attacked only by what needs no shadow models:

* the LOSS attack (Yeom et al. 2018, arXiv 1709.01604) on the natural examples, with the one-run bound
  from its scores (``attacks``; ``canary`` is null: it would repeat that bound);
* the crafted canaries, when the population has them (its last ``m`` rows): their AUC and one-run ε lower
  bound (Steinke, Nasr, Jagielski 2023, arXiv 2305.08846 v1) with the score ``log p(canary's label)``
  (``canaries``).

The two bounds form one Bonferroni family at ``audit.significance`` (fixed from the config before any
score). Hyper-parameters: ``audit.reference_lr`` (5e-5), ``audit.reference_epochs`` (3),
``audit.reference_batch_size`` (32, Poisson batches of that expected size), ``data.max_length``.

Files, in ``<run-dir>/reference/`` (:func:`dpaudit.pipeline.reference.reference_rundir`: a copy of the run's
membership; another run's files are forgotten): ``shadow-full-000.npy`` (the model's logits, kept by the
full trainer with its recipe, seed, row and inputs hashes), ``model_logits.npy`` (the stage file, recorded
with the membership hash, recipe, seed and backbone: a rerun with the same inputs reuses it and trains
nothing), ``signals.npz`` and ``attacks.json`` as in the main run.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from dpaudit.attacks.evaluate import evaluate_attack
from dpaudit.attacks.signals import Signals
from dpaudit.config import Config
from dpaudit.fileio import json_text
from dpaudit.pipeline.attack import as_estimate
from dpaudit.pipeline.canary_audit import canary_section
from dpaudit.pipeline.report import utility
from dpaudit.pipeline.stage import commit, file_sha, forget_from, npy_bytes, reusable
from dpaudit.privacy import bonferroni_family, source_significance, with_family
from dpaudit.report_schema import AttackResult, ReferenceSection, strongest_of
from dpaudit.rundir import RunDir

#: The score of a crafted canary: the log-probability the model gives to the label the canary trains with
#: (the audit's ``"loss"`` rule, ``dpaudit.pipeline.canary_audit``; no shadow model needed).
CANARY_SCORE_RULE = "loss"
#: The reference model's seed offset (never released: a non-private model has nothing to keep secret).
_SEED_OFFSET = 7919

logger = logging.getLogger(__name__)


def full_reference_recipe(n_train: int, *, epochs: float, batch_size: int, lr: float, max_length: int):
    """The non-private :class:`~dpaudit.trainers.full.FullRecipe` of the reference: AdamW at ``lr``, Poisson
    batches of expected size ``batch_size`` (q = min(1, B / n_train)), ⌈epochs · n_train / B⌉ steps."""
    from dpaudit.trainers.full import FullRecipe

    q = min(1.0, batch_size / n_train)
    steps = max(1, math.ceil(epochs * n_train / batch_size))
    return FullRecipe(non_private=True, noise_multiplier=0.0, sample_rate=q, steps=steps, max_grad_norm=1.0,
                      lr=lr, optimizer="adamw", max_length=max_length, micro_batch_size=min(batch_size, 32))


def _reference_logits(sub: RunDir, cfg: Config, pop, row: np.ndarray, recipe, seed: int, *, device,
                      progress: bool) -> np.ndarray:
    """Logits (1, N, C) of the full fine-tuned model on the population; ``model_logits.npy`` reused when made
    from the same membership, recipe, seed and backbone."""
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.full import full_shadow_logits

    inputs = {"membership_sha256": file_sha(sub, "membership.npy"), "reference": "full_non_private",
              "recipe": recipe.to_dict(), "seed": seed, "dataset_sha256": pop.ds.sha256,
              "model_sha256": pop.info.sha256}
    path = reusable(sub, "model_logits.npy", inputs)
    if path is not None:
        return np.load(path, allow_pickle=False)
    logger.info(f"reference: full fine-tuning, non-private (every weight, AdamW lr={recipe.lr:g}, "
                f"{recipe.steps} steps of ~{recipe.sample_rate * row.sum():.0f} examples, ε = ∞)")
    encoded = EncodedTexts.from_dataset(pop.ds, pop.tokenizer, max_length=cfg.data.max_length)
    logits = full_shadow_logits(cfg.model.path, encoded, pop.ds.labels, row[None], pop.ds.num_classes, recipe,
                                seeds=[seed], run=sub, device=device, progress=progress,
                                score_batch_size=cfg.audit.score_batch_size)
    n_trainable = sum(p.numel() for p in pop.backbone.parameters())
    commit(sub, "model_logits.npy", npy_bytes(logits), inputs,
           facts={"steps": int(recipe.steps), "n_trainable": int(n_trainable)})
    return logits


def _bounds(cfg: Config, signals: Signals, row: np.ndarray, n_natural: int, delta: float, external: bool,
            canary_kind: str | None):
    """LOSS on the natural rows (with its one-run bound) and the crafted canaries' section: one family.

    Returns ``(attack results, canary, family, canaries section or None)``; ``canary`` is ``None``: LOSS's own
    ``epsilon_lb`` is already the one-run bound on the natural rows (the main audit's ``canary`` repeats it
    with LiRA scores, which need shadows).
    """
    a = cfg.audit
    crafted = n_natural < len(row)
    source_sig = source_significance(a.significance, 1 + int(crafted))
    natural = Signals(signals.logits[:, :n_natural], signals.labels[:n_natural])
    result = evaluate_attack("loss", natural, row[None, :n_natural], targets=(0,), delta=delta,
                             significance=source_sig, fprs=a.fprs, guess_fraction=a.canary_guess_fraction)
    section = None
    if crafted:
        section = canary_section(signals.log_prob_true[0, n_natural:], row[n_natural:], kind=canary_kind or "unknown",
                                 delta=min(delta, a.canary_delta), significance=source_sig,
                                 guess_fraction=a.canary_guess_fraction,
                                 score_rule=CANARY_SCORE_RULE)
    if external:  # row 0 is the target's own training set, not a fair coin per example: estimates
        result = AttackResult.from_dict({**result.to_dict(), "epsilon_lb": as_estimate(result.epsilon_lb)})
        if section is not None:
            section["epsilon_lb"] = as_estimate(section["epsilon_lb"])
    members = [("loss", result.epsilon_lb)] + ([("canaries", section["epsilon_lb"])] if section is not None else [])
    family = bonferroni_family(members, significance=a.significance)
    tag = dict(family_size=family["size"], family_significance=a.significance)
    result = AttackResult.from_dict({**result.to_dict(), "epsilon_lb": with_family(result.epsilon_lb, **tag)})
    if section is not None:
        section["epsilon_lb"] = with_family(section["epsilon_lb"], **tag)
    return [result], None, family, section


def _bounds_stage(sub: RunDir, cfg: Config, signals: Signals, row: np.ndarray, n_natural: int, delta: float,
                  external: bool, canary_kind: str | None):
    """:func:`_bounds`, reused from ``attacks.json`` when made from the same signals, row and settings."""
    import json

    a = cfg.audit
    inputs = {"signals_sha256": file_sha(sub, "signals.npz"), "membership_sha256": file_sha(sub, "membership.npy"),
              "n_natural": n_natural, "canary_kind": canary_kind, "delta": delta, "external": external,
              "fprs": list(a.fprs), "significance": a.significance, "canary_guess_fraction": a.canary_guess_fraction,
              "reference": "full_non_private"}
    path = reusable(sub, "attacks.json", inputs)
    if path is not None:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return ([AttackResult.from_dict(r) for r in saved["attacks"]], saved["canary"], saved["family"],
                saved["canaries"])
    results, canary, family, section = _bounds(cfg, signals, row, n_natural, delta, external, canary_kind)
    text = json_text({"attacks": [r.to_dict() for r in results], "canary": canary, "family": family,
                      "canaries": section})
    commit(sub, "attacks.json", text.encode("utf-8"), inputs)
    return results, canary, family, section


def full_reference_section(cfg: Config, parent: RunDir, pop, membership: np.ndarray, *, delta: float, device,
                           progress: bool, external: bool, force: bool = False,
                           rerun: str | None = None) -> ReferenceSection:
    """Train (or reuse) the full fine-tuned non-private model on ``membership[0]``, attack it, summarise it.

    ``pop.n_natural`` (natural examples first; crafted canaries are the last ``N − n_natural`` rows) and
    ``pop.canaries`` (their kind) are read when the population has them; without, every row is natural.
    """
    from dpaudit.pipeline.reference import reference_rundir
    from dpaudit.pipeline.signals import signals_stage

    sub = reference_rundir(parent, force=force)
    if rerun is not None:
        forget_from(sub, rerun)
    row = np.asarray(membership[0], dtype=bool)
    n_natural = int(getattr(pop, "n_natural", None) or len(row))
    canary_kind = getattr(getattr(pop, "canaries", None), "kind", None)
    a = cfg.audit
    recipe = full_reference_recipe(int(row.sum()), epochs=a.reference_epochs, batch_size=a.reference_batch_size,
                                   lr=a.reference_lr, max_length=cfg.data.max_length)
    assert recipe.non_private and recipe.optimizer == "adamw"  # the reference never trains with noise
    seed = cfg.train.seed * 1000 + _SEED_OFFSET
    logits = _reference_logits(sub, cfg, pop, row, recipe, seed, device=device, progress=progress)
    signals = signals_stage(sub, None, logits, pop.ds.labels)
    results, canary, family, section = _bounds_stage(sub, cfg, signals, row, n_natural, delta, external,
                                                     canary_kind)
    natural = Signals(signals.logits[:, :n_natural], signals.labels[:n_natural])
    strongest = strongest_of(tuple(results))
    return ReferenceSection(
        kind="full_non_private", non_private=True, noise_multiplier=0.0, sample_rate=float(recipe.sample_rate),
        steps=int(recipe.steps), utility=utility(natural, row[None, :n_natural], pop.ds.labels[:n_natural]),
        attacks=tuple(results), canary=canary, strongest_attack=None if strongest is None else strongest.name,
        epsilon_lb_family=family, canaries=section,
        recipe={"name": "full", "optimizer": recipe.optimizer, "lr": recipe.lr, "epochs": float(a.reference_epochs),
                "batch_size": int(a.reference_batch_size), "max_length": int(recipe.max_length)})
