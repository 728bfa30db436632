"""The audit pipeline: train (or load) the target and K shadows, score, attack, write ``audit.json``.

Run-directory layout (every stage's output is a file, so a rerun resumes where a kill stopped):

``config.json``               resolved config
``membership.npy``            bool (M, N), M = K + 1; row 0 is the target
``models.safetensors``        the M models' biases and heads (+ ``train_state.safetensors`` while training)
``signals.npz``               logits of every model on every population example (+ labels)
``audit.json``                the report (schema in ``dpaudit/schema/audit-1.0.json``)

Shadows are trained with exactly the target's recipe (same backbone, DP hyper-parameters and
training-set size) in one BiasBank pass with it. For a target trained elsewhere
(``audit.target_checkpoint`` + ``audit.target_members``), only the K shadows are trained and the
target's tables are loaded next to them for scoring.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpaudit import __version__
from dpaudit.config import Config
from dpaudit.errors import CheckpointError, ConfigError, DataError
from dpaudit.fileio import write_json_atomic
from dpaudit.privacy import default_epsilon_grid, privacy_profile
from dpaudit.report_schema import (AuditReport, Clipping, EpsilonHistory, PrivacyProfile, PrivacySection, RunInfo,
                                   UtilitySection, Verdict, dump_report, protection_level)
from attacks.canary import canary_audit
from attacks.evaluate import evaluate_attack
from attacks.membership import check_population, make_membership
from attacks.registry import ATTACKS, create_attack
from attacks.signals import Signals

SCHEMA_VERSION = "1.0"
CANARY_ATTACK = "lira_offline"  # fixed before any result is seen, as the one-run audit requires


@dataclass(frozen=True)
class AuditOutcome:
    run_dir: Path
    report: AuditReport


def _read_member_ids(path: str, n: int) -> np.ndarray:
    """Bool (N,) from a file of example ids (JSON list, or one integer per line)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"member id file '{p}' does not exist; give the target's training-example ids "
                        f"(indices into the dataset, JSON list or one per line).")
    text = p.read_text(encoding="utf-8").strip()
    try:
        ids = json.loads(text) if text.startswith("[") else [int(x) for x in text.split()]
        ids = np.asarray(ids, dtype=np.int64)
    except (ValueError, json.JSONDecodeError) as err:
        raise DataError(f"member id file '{p}' is not a list of integers ({err}).") from err
    if ids.size == 0 or ids.min() < 0 or ids.max() >= n:
        raise DataError(f"member ids in '{p}' do not match the dataset: ids must be in [0, {n}), got range "
                        f"[{ids.min() if ids.size else '-'}, {ids.max() if ids.size else '-'}]; check data.path "
                        f"and data.max_examples match the target's training data.")
    mask = np.zeros(n, dtype=bool)
    mask[ids] = True
    return mask


def _versions() -> dict[str, str]:
    import numpy
    import opacus
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "opacus": opacus.__version__, "numpy": numpy.__version__}


def run_audit(cfg: Config, run_dir: Path, *, progress: bool = True, log=print) -> AuditOutcome:
    """Run (or resume) the whole audit described by ``cfg`` into ``run_dir``."""
    import torch

    from dpaudit.data import load_dataset
    from dpaudit.models import load_backbone, resolve_model_dir
    from trainers.batching import EncodedTexts
    from trainers.checkpoint import read_models
    from trainers.loop import predict_logits
    from trainers.recipe import build_classifier, resolve_device, resolve_privacy, train_bank

    a = cfg.audit
    unknown = [x for x in a.attacks if x not in ATTACKS]
    if unknown:
        raise ConfigError(f"unknown attack(s) {unknown}; known attacks: {', '.join(sorted(ATTACKS))}.")
    if a.num_shadows < 2 or a.num_shadows % 2:
        raise ConfigError(f"shadow models come in complementary pairs: audit.num_shadows must be even and ≥ 2, "
                          f"got num_shadows={a.num_shadows}.")
    reference_attacks = [x for x in a.attacks if x != "loss"]
    if reference_attacks and a.num_shadows < 4:
        raise ConfigError(f"attacks {reference_attacks} need per-example OUT statistics from ≥ 2 shadows outside "
                          f"each target's pair: set audit.num_shadows ≥ 4 (got {a.num_shadows}), or run only 'loss'.")
    resolve_model_dir(cfg.model.path, max_length=cfg.data.max_length)  # fails before the data and the accounting
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    seed = cfg.train.seed
    ds = load_dataset(path=cfg.data.path, text_column=cfg.data.text_column, label_column=cfg.data.label_column,
                      max_examples=cfg.data.max_examples, seed=seed)
    n = len(ds)
    check_population(n, a.fprs)
    m_models = a.num_shadows + 1
    external = a.target_checkpoint is not None
    if external != (a.target_members is not None):
        raise ConfigError("auditing a model trained elsewhere needs both audit.target_checkpoint and "
                          "audit.target_members (its training-example ids).")
    membership_path = run_dir / "membership.npy"
    if membership_path.is_file():
        membership = np.load(membership_path, allow_pickle=False)
        if membership.shape != (m_models, n):
            raise ConfigError(f"run directory '{run_dir}' holds a membership matrix of shape {membership.shape}, "
                              f"not ({m_models}, {n}); use a new --run-dir for a different audit.")
    else:
        membership = make_membership(n, m_models, seed=seed + 1)
        if external:
            membership[0] = _read_member_ids(a.target_members, n)
            share = float(membership[0].mean())
            if abs(share - 0.5) > 0.02:
                # Shadows must train on as many examples as the target did: include each example with the
                # target's share instead of in complementary halves.
                rng = np.random.default_rng(seed + 2)
                membership[1:] = rng.random((a.num_shadows, n)) < share
        np.save(membership_path, membership)
    train_sizes = [int(s) for s in (membership[1:] if external else membership).sum(1)]
    settings, plan = resolve_privacy(cfg, train_sizes)
    device = resolve_device(cfg.train.device)
    write_json_atomic(run_dir / "config.json", cfg.to_dict())
    backbone, tokenizer, info = load_backbone(cfg.model.path)
    n_total = sum(p.numel() for p in backbone.parameters())
    encoded = EncodedTexts.from_texts(ds.texts, tokenizer, max_length=cfg.data.max_length)
    model_seeds = [seed * 1000 + 17 + k for k in range(m_models)]
    meta = {"backbone_sha256": info.sha256, "backbone_source": info.source, "model_name": info.name,
            "label_names": list(ds.label_names), "max_length": cfg.data.max_length,
            "exclude_modules": list(cfg.model.exclude_modules), "add_biases": cfg.model.add_biases,
            "dataset_sha256": ds.sha256}
    signals_path = run_dir / "signals.npz"
    log(f"audit: {info.name} on {ds.name}: population N={n:,}, target + {a.num_shadows} shadows, "
        f"~{int(np.mean(train_sizes)):,} training examples each; "
        + ("non-private (ε = ∞)" if plan.non_private else
           f"σ={plan.noise_multiplier:.4f}, q={plan.sample_rate:.4g}, {plan.steps} steps, δ={plan.delta:.3g}"))
    t = time.perf_counter()
    if external:
        target_tables, target_meta = read_models(Path(a.target_checkpoint), backbone_sha256=info.sha256)
        if target_meta.get("num_models", 1) != 1:
            raise CheckpointError(f"target checkpoint '{a.target_checkpoint}' holds "
                                  f"{target_meta.get('num_models')} models; give a single-model checkpoint.")
        shadows = build_classifier(backbone, cfg, num_models=a.num_shadows, num_labels=ds.num_classes, device=device)
        outcome = train_bank(shadows, encoded, ds.labels, membership[1:], settings, plan, seeds=model_seeds[1:],
                             run_dir=run_dir, meta=meta, progress=progress)
        shadow_state = shadows.trainable_state()
        backbone, _, _ = load_backbone(cfg.model.path)
        clf = build_classifier(backbone, cfg, num_models=m_models, num_labels=ds.num_classes, device=device)
        try:
            clf.load_trainable_state({k: torch.cat([target_tables[k].to(device), shadow_state[k]])
                                      for k in shadow_state})
        except (KeyError, RuntimeError) as err:
            raise CheckpointError(f"target checkpoint '{a.target_checkpoint}' does not fit this backbone and task "
                                  f"(missing or mis-shaped table {err}); was it trained with the same model and "
                                  f"labels?") from err
    else:
        clf = build_classifier(backbone, cfg, num_models=m_models, num_labels=ds.num_classes, device=device)
        outcome = train_bank(clf, encoded, ds.labels, membership, settings, plan, seeds=model_seeds,
                             run_dir=run_dir, meta=meta, progress=progress)
    times["train"] = time.perf_counter() - t
    claim, steps, history = plan, outcome.steps, outcome.epsilon_history
    if external:  # the claim is the target's own accounting (its σ, q, steps), not the shadows'
        claim = dataclasses.replace(
            plan, non_private=bool(target_meta.get("non_private", plan.non_private)),
            noise_multiplier=float(target_meta.get("noise_multiplier", plan.noise_multiplier)),
            sample_rate=float(target_meta.get("sample_rate", plan.sample_rate)),
            delta=float(target_meta.get("settings", {}).get("delta", plan.delta)))
        steps, history = int(target_meta.get("steps", steps)), target_meta.get("epsilon_history", history)
    t = time.perf_counter()
    if signals_path.is_file() and outcome.resumed_from_step == outcome.steps and outcome.steps > 0:
        signals = Signals.load(signals_path)
    else:
        logits = predict_logits(clf, encoded, batch_size=a.score_batch_size, progress=progress)
        signals = Signals(logits, ds.labels)
        signals.save(signals_path)
    times["score"] = time.perf_counter() - t
    t = time.perf_counter()
    targets = tuple(range(min(a.loo_targets, m_models)))
    results = []
    for name in a.attacks:
        log(f"attack: {name}")
        results.append(evaluate_attack(name, signals, membership, targets=targets, delta=claim.delta,
                                       significance=a.significance, fprs=a.fprs, seed=seed))
    canary_name = CANARY_ATTACK if CANARY_ATTACK in ATTACKS else "loss"
    canary_scores = create_attack(canary_name).score(signals, membership, target=0,
                                                     reference=np.arange(1, m_models))
    canary = canary_audit(canary_scores, membership[0], delta=claim.delta, significance=a.significance,
                          guess_fraction=a.canary_guess_fraction)
    times["attack"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0
    preds = signals.logits.argmax(2)
    per_model = [float((preds[k][~membership[k]] == ds.labels[~membership[k]]).mean()) for k in range(m_models)]
    epsilon = claim.epsilon(steps)
    profile = None
    if not claim.non_private:
        grid = default_epsilon_grid(epsilon)
        prof = privacy_profile(noise_multiplier=claim.noise_multiplier, sample_rate=claim.sample_rate,
                               steps=steps, epsilons=grid, accountant=claim.accountant)
        profile = PrivacyProfile(epsilons=tuple(prof.epsilons), deltas=tuple(prof.deltas))
    privacy = PrivacySection(
        non_private=claim.non_private, epsilon=None if math.isinf(epsilon) else float(epsilon),
        delta=claim.delta,
        noise_multiplier=claim.noise_multiplier, sample_rate=claim.sample_rate, steps=steps,
        accountant=claim.accountant, neighbouring="add_remove",
        clipping=Clipping(mode=settings.clipping.mode, style=settings.clipping.style,
                          max_grad_norm=settings.clipping.max_grad_norm,
                          groups={k: float(v[1]) for k, v in settings.clipping.groups.items()}),
        profile=profile,
        epsilon_history=EpsilonHistory(steps=tuple(history["steps"]), epsilons=tuple(history["epsilons"])),
        reason="trained without clipping or noise (ε = ∞)" if claim.non_private else None,
    )
    run = RunInfo(
        run_id=run_dir.name + "-" + uuid.uuid4().hex[:8], created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        dpaudit_version=__version__, seeds={"base": seed, "membership": seed + 1, "models": model_seeds},
        versions=_versions(),
        hardware={"device": str(device), "cpu_count": os.cpu_count() or 1, "torch_threads": torch.get_num_threads(),
                  "platform": platform.platform()},
        dataset={"name": ds.name, "source": ds.source, "sha256": ds.sha256, "n_population": n,
                 "n_classes": ds.num_classes},
        model={"name": info.name, "source": info.source, "sha256": info.sha256,
               "n_trainable": clf.bank.num_trainable(), "n_total": int(n_total)},
        config=cfg.to_dict(), wall_time_s={k: float(v) for k, v in times.items()},
    )
    utility = UtilitySection(metric="accuracy", value=per_model[0], n_eval=int((~membership[0]).sum()),
                             per_model=tuple(per_model), non_private_reference=None)
    draft = AuditReport(schema_version=SCHEMA_VERSION, run=run, privacy=privacy, utility=utility,
                        attacks=tuple(results), canary=canary.to_dict(),
                        verdict=Verdict(protection_level=None, strongest_attack=None))
    strongest = draft.strongest_attack()
    verdict = Verdict(protection_level=None if strongest is None else protection_level(strongest.balanced_accuracy),
                      strongest_attack=None if strongest is None else strongest.name)
    report = AuditReport(**{**{f: getattr(draft, f) for f in ("schema_version", "run", "privacy", "utility",
                                                              "attacks", "canary")}, "verdict": verdict})
    dump_report(report, run_dir / "audit.json")
    return AuditOutcome(run_dir=run_dir, report=report)
