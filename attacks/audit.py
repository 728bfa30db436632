"""The audit pipeline: train (or load) the target and K shadows, score, attack, write ``audit.json``.

Run-directory layout (every stage's output is a file, so a rerun resumes where a kill stopped; the
marker ``dpaudit-run.json`` records the inputs and each file's hash, so nothing stale is ever reused):

``config.json``               resolved config (0600)
``membership.npy``            bool (M, N), M = K + 1; row 0 is the target (0600: who trained the target)
``models.safetensors``        the M models' biases, heads and optimizer state (one atomic checkpoint, 0600)
``signals.npz``               logits of every model on every population example (+ labels) (0600)
``audit.json``                the report (schema in ``dpaudit/schema/audit-1.0.json``; shareable)

Shadows are trained with exactly the target's recipe (same backbone, DP hyper-parameters and
training-set size) in one BiasBank pass with it. For a target trained elsewhere
(``audit.target_checkpoint`` + ``audit.target_members``, :mod:`attacks.target`), only the K shadows are
trained, with the recipe the target's checkpoint states, and the target's tables are loaded next to them;
the gate then judges the target's own scores, not a leave-one-out mean with the shadows.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import platform
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpaudit import __version__
from dpaudit._validation import check_mask
from dpaudit.config import Config
from dpaudit.errors import CheckpointError, ConfigError
from dpaudit.privacy import (bonferroni_family, default_epsilon_grid, privacy_profile, source_significance,
                             with_family)
from dpaudit.protection import has_dp_guarantee, majority_baseline, protection_level
from dpaudit.report_io import dump_report
from dpaudit.report_schema import (SCHEMA_VERSION, AuditReport, ClippingSummary, EpsilonHistory, PrivacySection,
                                   ProfileCurve, RunInfo, UtilitySection, Verdict)
from dpaudit.rundir import RunDir, config_inputs, sha256_file
from dpaudit.versions import runtime_versions
from dpaudit.attacks.canary import canary_audit
from dpaudit.attacks.evaluate import evaluate_attack
from dpaudit.attacks.membership import check_population, make_membership
from dpaudit.attacks.registry import ATTACKS, create_attack
from dpaudit.attacks.signals import Signals
from dpaudit.attacks.target import TargetMembers, check_target_population, read_member_ids, shadow_recipe
from dpaudit.trainers.randomness import SecureRandom

CANARY_ATTACK = "lira_offline"  # fixed before any result is seen, as the one-run audit requires

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditOutcome:
    run_dir: Path
    report: AuditReport


def _public_config(config: dict) -> dict:
    """The resolved config for ``audit.json``: paths reduced to their last component (no absolute paths)."""
    out = {section: dict(values) for section, values in config.items()}
    for section, key in (("data", "path"), ("model", "path"), ("audit", "target_checkpoint"),
                         ("audit", "target_members")):
        value = out.get(section, {}).get(key)
        if isinstance(value, str) and value != "embedded":
            out[section][key] = Path(value).name
    return out


def _as_estimate(bound: dict) -> dict:
    """A bound whose theorem does not apply to this experiment, relabelled as an estimate (never gated)."""
    return {**bound, "kind": "estimate",
            "assumption": "the target's training set was chosen outside this audit, not by an independent fair coin "
                          "per example, so the one-run theorem (arXiv 2305.08846) does not apply: an estimate"}


def _membership(run: RunDir, cfg: Config, n: int, m_models: int, target: TargetMembers | None) -> np.ndarray:
    """The (M, N) membership matrix: reuse the committed one, or draw it and commit it (0600).

    Shadow rows come from ``make_membership`` seeded by ``train.seed + 1`` (shadows are never released). The
    target's row is its own training set (external target), or i.i.d. Bernoulli(½) from the OS CSPRNG — secret,
    so its membership cannot be regenerated from the seed in ``audit.json`` — unless noise is seeded.
    """
    path = run.verified("membership.npy")
    if path is not None:
        return check_mask(f"membership.npy in run directory '{run.path}'", np.load(path, allow_pickle=False),
                          (m_models, n), hint="use a new --run-dir for a different audit")
    seed = cfg.train.seed
    membership = make_membership(n, m_models, seed=seed + 1)
    if target is not None:
        membership[0] = target.mask
        share = float(target.mask.mean())
        if abs(share - 0.5) > 0.02:
            # Shadows must train on as many examples as the target did: include each example with the
            # target's share instead of in complementary halves.
            rng = np.random.default_rng(seed + 2)
            membership[1:] = rng.random((m_models - 1, n)) < share
    elif cfg.train.noise != "seeded":
        membership[0] = SecureRandom().bernoulli(n, 0.5, step=0)
    buf = io.BytesIO()
    np.save(buf, membership, allow_pickle=False)
    run.write("membership.npy", buf.getvalue())
    return membership


@dataclass
class _Loaded:
    """What the audit read before training: population, backbone, and an external target's checkpoint."""

    ds: Any
    backbone: Any
    tokenizer: Any
    info: Any
    inputs: dict
    n_total: int  # backbone parameters before the bank adds any bias
    target: TargetMembers | None = None
    target_tables: dict | None = None
    target_meta: dict | None = None


@dataclass(frozen=True)
class _Claim:
    """The (ε, δ) claim the audit tests: the accounting plan and the steps it covers."""

    plan: Any
    steps: int
    history: dict
    source: str  # "accountant" (trained here) or "checkpoint" (external target)
    noise: str | None


def _check_audit_config(cfg: Config) -> None:
    """Refuse audit settings that cannot work, before any file is written."""
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
    if (a.target_checkpoint is not None) != (a.target_members is not None):
        raise ConfigError("auditing a model trained elsewhere needs both audit.target_checkpoint and "
                          "audit.target_members (its training-example ids).")


def _load(cfg: Config, rundir: RunDir) -> _Loaded:
    """Load the population and backbone (and an external target), then bind the run directory to them."""
    from dpaudit.data import load_dataset
    from dpaudit.models import load_backbone
    from dpaudit.trainers.checkpoint import read_models

    a = cfg.audit
    ds = load_dataset(path=cfg.data.path, text_column=cfg.data.text_column, label_column=cfg.data.label_column,
                      max_examples=cfg.data.max_examples, seed=cfg.train.seed)
    n = len(ds)
    check_population(n, a.fprs)
    backbone, tokenizer, info = load_backbone(cfg.model.path)
    inputs = {"config": config_inputs(cfg.to_dict()), "dataset_sha256": ds.sha256, "n_examples": n,
              "model_sha256": info.sha256}
    loaded = _Loaded(ds, backbone, tokenizer, info, inputs, n_total=sum(p.numel() for p in backbone.parameters()))
    if a.target_checkpoint is not None:
        loaded.target = read_member_ids(a.target_members, n)
        loaded.target_tables, loaded.target_meta = read_models(Path(a.target_checkpoint), backbone_sha256=info.sha256)
        if loaded.target_meta.get("num_models", 1) != 1:
            raise CheckpointError(f"target checkpoint '{a.target_checkpoint}' holds "
                                  f"{loaded.target_meta.get('num_models')} models; give a single-model checkpoint.")
        check_target_population(loaded.target_meta, loaded.target, dataset_sha256=ds.sha256, n=n,
                                where=a.target_checkpoint)
        inputs.update(target_checkpoint_sha256=sha256_file(a.target_checkpoint),
                      target_members_sha256=loaded.target.sha256)
    rundir.bind(inputs)
    return loaded


def _log_plan(cfg: Config, loaded: _Loaded, plan, train_sizes: list[int], copied: list[str]) -> None:
    a, ds = cfg.audit, loaded.ds
    logger.info(f"audit: {loaded.info.name} on {ds.name}: population N={len(ds):,}, target + {a.num_shadows} "
                f"shadows, ~{int(np.mean(train_sizes)):,} training examples each; "
                + ("non-private (ε = ∞)" if plan.non_private else
                   f"σ={plan.noise_multiplier:.4f}, q={plan.sample_rate:.4g}, {plan.steps} steps, δ={plan.delta:.3g}"))
    if copied:
        logger.info(f"shadows copy the target checkpoint's recipe: {', '.join(copied)}")
    if cfg.train.noise == "seeded" and loaded.target is None and not plan.non_private:
        logger.info("seeded noise: the target's noise is reproducible from the seed — NOT a private release")


def _train_models(cfg: Config, loaded: _Loaded, rundir: RunDir, encoded, membership: np.ndarray, settings, plan,
                  seeds: list[int | None], device, progress: bool):
    """Train the bank (target + shadows; or only the shadows next to an external target's tables).

    Returns ``(classifier with all M models, TrainOutcome)``.
    """
    import torch

    from dpaudit.models import load_backbone
    from dpaudit.trainers.recipe import build_classifier, train_bank

    a, num_labels = cfg.audit, loaded.ds.num_classes
    meta = {"backbone_sha256": loaded.info.sha256, "backbone_source": loaded.info.name,
            "model_name": loaded.info.name, "label_names": list(loaded.ds.label_names),
            "max_length": cfg.data.max_length, "exclude_modules": list(cfg.model.exclude_modules),
            "add_biases": cfg.model.add_biases, "dataset_sha256": loaded.ds.sha256, "dataset_size": len(loaded.ds)}
    if loaded.target is None:
        clf = build_classifier(loaded.backbone, cfg, num_models=len(membership), num_labels=num_labels, device=device)
        outcome = train_bank(clf, encoded, loaded.ds.labels, membership, settings, plan, seeds=seeds,
                             run=rundir, meta=meta, progress=progress)
        return clf, outcome
    shadows = build_classifier(loaded.backbone, cfg, num_models=a.num_shadows, num_labels=num_labels, device=device)
    outcome = train_bank(shadows, encoded, loaded.ds.labels, membership[1:], settings, plan, seeds=seeds[1:],
                         run=rundir, meta=meta, progress=progress)
    shadow_state = shadows.trainable_state()
    backbone, _, _ = load_backbone(cfg.model.path)
    clf = build_classifier(backbone, cfg, num_models=len(membership), num_labels=num_labels, device=device)
    try:
        clf.load_trainable_state({k: torch.cat([loaded.target_tables[k].to(device), shadow_state[k]])
                                  for k in shadow_state})
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"target checkpoint '{a.target_checkpoint}' does not fit this backbone and task "
                              f"(missing or mis-shaped table {err}); was it trained with the same model and "
                              f"labels?") from err
    return clf, outcome


def _claim(cfg: Config, plan, outcome, target_meta: dict | None) -> _Claim:
    """The claim under test: this run's accounting, or an external target's own (its σ, q, steps)."""
    if target_meta is None:
        return _Claim(plan, outcome.steps, outcome.epsilon_history, "accountant",
                      None if plan.non_private else cfg.train.noise)
    steps = int(target_meta.get("steps", outcome.steps))
    history = target_meta.get("epsilon_history") or {"steps": [steps], "epsilons": [plan.epsilon(steps)]}
    kinds = target_meta.get("noise")
    noise = None if plan.non_private or not isinstance(kinds, list) or not kinds else str(kinds[0])
    return _Claim(plan, steps, history, "checkpoint", noise)


def _score(cfg: Config, rundir: RunDir, clf, encoded, labels: np.ndarray, inputs: dict, progress: bool) -> Signals:
    """Every model's logits on the population: reuse ``signals.npz`` if it was made by these models."""
    from dpaudit.trainers.checkpoint import MODELS_FILE
    from dpaudit.trainers.predict import predict_logits

    models_sha = rundir.entry(MODELS_FILE)["sha256"] + (inputs.get("target_checkpoint_sha256") or "")
    signals_path = rundir.verified("signals.npz")
    if signals_path is not None and rundir.entry("signals.npz").get("models_sha256") == models_sha:
        return Signals.load(signals_path)
    logits = predict_logits(clf, encoded, batch_size=cfg.audit.score_batch_size, progress=progress)
    signals = Signals(logits, labels)
    rundir.write("signals.npz", signals.to_bytes(), models_sha256=models_sha)
    return signals


def _attack(cfg: Config, signals: Signals, membership: np.ndarray, delta: float, external: bool):
    """Run every configured attack and the one-run canary audit under one Bonferroni family.

    Returns ``(attack results, canary bound dict, family dict)``.
    """
    a, m_models = cfg.audit, len(membership)
    # An external target is judged on its own scores: its shadows are references, not targets.
    targets = (0,) if external else tuple(range(min(a.loo_targets, m_models)))
    # Bonferroni family fixed from the config before any result: every attack + the canary audit, each
    # at significance / (attacks + 1); the headline maximum then holds at a.significance.
    source_sig = source_significance(a.significance, len(a.attacks) + 1)
    results = []
    for name in a.attacks:
        logger.info(f"attack: {name}")
        results.append(evaluate_attack(name, signals, membership, targets=targets, delta=delta,
                                       significance=source_sig, fprs=a.fprs,
                                       guess_fraction=a.canary_guess_fraction))
    canary_name = CANARY_ATTACK if CANARY_ATTACK in ATTACKS else "loss"
    canary_scores = create_attack(canary_name).score(signals, membership, target=0,
                                                     reference=np.arange(1, m_models))
    canary = canary_audit(canary_scores, membership[0], delta=delta, significance=source_sig,
                          guess_fraction=a.canary_guess_fraction).to_dict()
    if external:  # the one-run theorem needs each example IN independently with probability ½
        results = [dataclasses.replace(r, epsilon_lb=_as_estimate(r.epsilon_lb)) for r in results]
        canary = _as_estimate(canary)
    family = bonferroni_family([(r.name, r.epsilon_lb) for r in results] + [("canary", canary)],
                               significance=a.significance)
    tag = dict(family_size=family["size"], family_significance=a.significance)
    results = [dataclasses.replace(r, epsilon_lb=with_family(r.epsilon_lb, **tag)) for r in results]
    return results, with_family(canary, **tag), family


def _privacy_section(claim: _Claim, settings) -> PrivacySection:
    plan, steps = claim.plan, claim.steps
    epsilon = plan.epsilon(steps)
    profile = None
    if not plan.non_private:
        grid = default_epsilon_grid(epsilon)
        prof = privacy_profile(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate,
                               steps=steps, epsilons=grid, accountant=plan.accountant)
        profile = ProfileCurve(epsilons=tuple(prof.epsilons), deltas=tuple(prof.deltas))
    return PrivacySection(
        non_private=plan.non_private, epsilon=None if math.isinf(epsilon) else float(epsilon),
        delta=plan.delta,
        noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate, steps=steps,
        accountant=plan.accountant, neighbouring="add_remove",
        clipping=ClippingSummary.from_config(settings.clipping),
        profile=profile,
        epsilon_history=EpsilonHistory(steps=tuple(claim.history["steps"]),
                                       epsilons=tuple(claim.history["epsilons"])),
        reason="trained without clipping or noise (ε = ∞)" if plan.non_private else None,
        noise=claim.noise, claim_source=claim.source,
    )


def _run_info(cfg: Config, run_dir: Path, loaded: _Loaded, clf, model_seeds: list, device,
              times: dict[str, float]) -> RunInfo:
    import torch

    ds, info, seed = loaded.ds, loaded.info, cfg.train.seed
    return RunInfo(
        run_id=run_dir.name + "-" + uuid.uuid4().hex[:8], created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        dpaudit_version=__version__, seeds={"base": seed, "membership": seed + 1, "models": model_seeds},
        versions=runtime_versions(),
        hardware={"device": device.type, "cpu_count": os.cpu_count() or 1, "torch_threads": torch.get_num_threads(),
                  "system": platform.system()},
        dataset={"name": ds.name, "source": Path(ds.source).name, "sha256": ds.sha256, "n_population": len(ds),
                 "n_classes": ds.num_classes},
        model={"name": info.name, "source": info.name, "sha256": info.sha256,
               "n_trainable": clf.bank.num_trainable(), "n_total": int(loaded.n_total)},
        config=_public_config(cfg.to_dict()), wall_time_s={k: float(v) for k, v in times.items()},
    )


def _utility(signals: Signals, membership: np.ndarray, labels: np.ndarray) -> UtilitySection:
    """Held-out accuracy of every model on the examples it did not train on; the target's is the headline."""
    preds = signals.logits.argmax(2)
    per_model = [float((preds[k][~membership[k]] == labels[~membership[k]]).mean()) for k in range(len(membership))]
    return UtilitySection(metric="accuracy", value=per_model[0], n_eval=int((~membership[0]).sum()),
                          per_model=tuple(per_model), non_private_reference=None,
                          majority_baseline=majority_baseline(labels[~membership[0]]))


def _report(run: RunInfo, privacy: PrivacySection, utility: UtilitySection, results, canary: dict,
            family: dict) -> AuditReport:
    """The report with its verdict from the strongest attack."""
    draft = AuditReport(schema_version=SCHEMA_VERSION, run=run, privacy=privacy, utility=utility,
                        attacks=tuple(results), canary=canary,
                        verdict=Verdict(protection_level=None, strongest_attack=None))
    strongest = draft.strongest_attack()
    level = None if strongest is None else protection_level(strongest.balanced_accuracy,
                                                            guaranteed=has_dp_guarantee(privacy))
    verdict = Verdict(protection_level=level, strongest_attack=None if strongest is None else strongest.name)
    return AuditReport(**{**{f: getattr(draft, f) for f in ("schema_version", "run", "privacy", "utility",
                                                            "attacks", "canary")}, "verdict": verdict,
                          "epsilon_lb_family": family})


def run_audit(cfg: Config, run_dir: Path, *, progress: bool = True, force_run_dir: bool = False) -> AuditOutcome:
    """Run (or resume) the whole audit described by ``cfg`` into ``run_dir``.

    Progress messages go to ``logging.getLogger("dpaudit.attacks.audit")`` at INFO; the CLI shows them on stdout.
    """
    from dpaudit.models import resolve_model_dir
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.recipe import released_seed, resolve_device, resolve_privacy

    _check_audit_config(cfg)
    a, seed, external = cfg.audit, cfg.train.seed, cfg.audit.target_checkpoint is not None
    resolve_model_dir(cfg.model.path, max_length=cfg.data.max_length)  # fails before the data and the accounting
    rundir = RunDir.claim(run_dir, command="audit", force=force_run_dir)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = _load(cfg, rundir)
    m_models = a.num_shadows + 1
    membership = _membership(rundir, cfg, len(loaded.ds), m_models, loaded.target)
    train_sizes = [int(s) for s in (membership[1:] if external else membership).sum(1)]
    settings, plan = resolve_privacy(cfg, train_sizes)
    copied: list[str] = []
    if external:
        settings, plan, copied = shadow_recipe(loaded.target_meta, settings, plan)
    device = resolve_device(cfg.train.device)
    rundir.write_json("config.json", cfg.to_dict())
    encoded = EncodedTexts.from_texts(loaded.ds.texts, loaded.tokenizer, max_length=cfg.data.max_length)
    shadow_seeds = [seed * 1000 + 17 + k for k in range(1, m_models)]  # shadows are never released
    model_seeds = [None if external else released_seed(cfg, seed * 1000 + 17)] + shadow_seeds
    _log_plan(cfg, loaded, plan, train_sizes, copied)
    t = time.perf_counter()
    clf, outcome = _train_models(cfg, loaded, rundir, encoded, membership, settings, plan, model_seeds, device,
                                 progress)
    times["train"] = time.perf_counter() - t
    claim = _claim(cfg, plan, outcome, loaded.target_meta)
    t = time.perf_counter()
    signals = _score(cfg, rundir, clf, encoded, loaded.ds.labels, loaded.inputs, progress)
    times["score"] = time.perf_counter() - t
    t = time.perf_counter()
    results, canary, family = _attack(cfg, signals, membership, claim.plan.delta, external)
    times["attack"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0
    report = _report(_run_info(cfg, run_dir, loaded, clf, model_seeds, device, times), _privacy_section(claim, settings),
                     _utility(signals, membership, loaded.ds.labels), results, canary, family)
    dump_report(report, rundir.file("audit.json"))
    return AuditOutcome(run_dir=rundir.path, report=report)
