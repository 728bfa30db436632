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
from dpaudit.errors import CheckpointError, ConfigError
from dpaudit.privacy import (bonferroni_family, default_epsilon_grid, privacy_profile, source_significance,
                             with_family)
from dpaudit.protection import protection_level
from dpaudit.report_io import dump_report
from dpaudit.report_schema import (SCHEMA_VERSION, AuditReport, ClippingSummary, EpsilonHistory, PrivacySection,
                                   ProfileCurve, RunInfo, UtilitySection, Verdict)
from dpaudit.rundir import RunDir, config_inputs, sha256_file
from attacks.canary import canary_audit
from attacks.evaluate import evaluate_attack
from attacks.membership import check_population, make_membership
from attacks.registry import ATTACKS, create_attack
from attacks.signals import Signals
from attacks.target import TargetMembers, check_target_population, read_member_ids, shadow_recipe
from trainers.randomness import SecureRandom

CANARY_ATTACK = "lira_offline"  # fixed before any result is seen, as the one-run audit requires


@dataclass(frozen=True)
class AuditOutcome:
    run_dir: Path
    report: AuditReport


def _versions() -> dict[str, str]:
    import numpy
    import opacus
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "opacus": opacus.__version__, "numpy": numpy.__version__}


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
        membership = np.load(path, allow_pickle=False)
        if membership.shape != (m_models, n) or membership.dtype != bool:
            raise ConfigError(f"run directory '{run.path}' holds a membership matrix of shape {membership.shape}, "
                              f"not ({m_models}, {n}); use a new --run-dir for a different audit.")
        return membership
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


def run_audit(cfg: Config, run_dir: Path, *, progress: bool = True, log=print,
              force_run_dir: bool = False) -> AuditOutcome:
    """Run (or resume) the whole audit described by ``cfg`` into ``run_dir``."""
    import torch

    from dpaudit.data import load_dataset
    from dpaudit.models import load_backbone, resolve_model_dir
    from trainers.batching import EncodedTexts
    from trainers.checkpoint import MODELS_FILE, read_models
    from trainers.loop import predict_logits
    from trainers.recipe import build_classifier, released_seed, resolve_device, resolve_privacy, train_bank

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
    external = a.target_checkpoint is not None
    if external != (a.target_members is not None):
        raise ConfigError("auditing a model trained elsewhere needs both audit.target_checkpoint and "
                          "audit.target_members (its training-example ids).")
    noise = cfg.train.noise  # "secure" or "seeded", checked when the config was loaded
    resolve_model_dir(cfg.model.path, max_length=cfg.data.max_length)  # fails before the data and the accounting
    rundir = RunDir.claim(run_dir, command="audit", force=force_run_dir)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    seed = cfg.train.seed
    ds = load_dataset(path=cfg.data.path, text_column=cfg.data.text_column, label_column=cfg.data.label_column,
                      max_examples=cfg.data.max_examples, seed=seed)
    n = len(ds)
    check_population(n, a.fprs)
    m_models = a.num_shadows + 1
    backbone, tokenizer, info = load_backbone(cfg.model.path)
    inputs = {"config": config_inputs(cfg.to_dict()), "dataset_sha256": ds.sha256, "n_examples": n,
              "model_sha256": info.sha256}
    target = target_meta = None
    if external:
        target = read_member_ids(a.target_members, n)
        target_tables, target_meta = read_models(Path(a.target_checkpoint), backbone_sha256=info.sha256)
        if target_meta.get("num_models", 1) != 1:
            raise CheckpointError(f"target checkpoint '{a.target_checkpoint}' holds "
                                  f"{target_meta.get('num_models')} models; give a single-model checkpoint.")
        check_target_population(target_meta, target, dataset_sha256=ds.sha256, n=n, where=a.target_checkpoint)
        inputs.update(target_checkpoint_sha256=sha256_file(a.target_checkpoint), target_members_sha256=target.sha256)
    rundir.bind(inputs)
    membership = _membership(rundir, cfg, n, m_models, target)
    train_sizes = [int(s) for s in (membership[1:] if external else membership).sum(1)]
    settings, plan = resolve_privacy(cfg, train_sizes)
    copied: list[str] = []
    if external:
        settings, plan, copied = shadow_recipe(target_meta, settings, plan)
    device = resolve_device(cfg.train.device)
    rundir.write_json("config.json", cfg.to_dict())
    n_total = sum(p.numel() for p in backbone.parameters())
    encoded = EncodedTexts.from_texts(ds.texts, tokenizer, max_length=cfg.data.max_length)
    shadow_seeds = [seed * 1000 + 17 + k for k in range(1, m_models)]  # shadows are never released
    model_seeds = [None if external else released_seed(cfg, seed * 1000 + 17)] + shadow_seeds
    meta = {"backbone_sha256": info.sha256, "backbone_source": info.name, "model_name": info.name,
            "label_names": list(ds.label_names), "max_length": cfg.data.max_length,
            "exclude_modules": list(cfg.model.exclude_modules), "add_biases": cfg.model.add_biases,
            "dataset_sha256": ds.sha256, "dataset_size": n}
    log(f"audit: {info.name} on {ds.name}: population N={n:,}, target + {a.num_shadows} shadows, "
        f"~{int(np.mean(train_sizes)):,} training examples each; "
        + ("non-private (ε = ∞)" if plan.non_private else
           f"σ={plan.noise_multiplier:.4f}, q={plan.sample_rate:.4g}, {plan.steps} steps, δ={plan.delta:.3g}"))
    if copied:
        log(f"shadows copy the target checkpoint's recipe: {', '.join(copied)}")
    if noise == "seeded" and not external and not plan.non_private:
        log("seeded noise: the target's noise is reproducible from the seed — NOT a private release")
    t = time.perf_counter()
    if external:
        shadows = build_classifier(backbone, cfg, num_models=a.num_shadows, num_labels=ds.num_classes, device=device)
        outcome = train_bank(shadows, encoded, ds.labels, membership[1:], settings, plan, seeds=shadow_seeds,
                             run=rundir, meta=meta, progress=progress)
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
                             run=rundir, meta=meta, progress=progress)
    times["train"] = time.perf_counter() - t
    claim, steps, history = plan, outcome.steps, outcome.epsilon_history
    claim_source, target_noise = "accountant", (None if plan.non_private else noise)
    if external:  # the claim is the target's own accounting (its σ, q, steps), as its checkpoint states it
        steps = int(target_meta.get("steps", steps))
        history = target_meta.get("epsilon_history") or {"steps": [steps], "epsilons": [claim.epsilon(steps)]}
        claim_source = "checkpoint"
        kinds = target_meta.get("noise")
        target_noise = None if claim.non_private or not isinstance(kinds, list) or not kinds else str(kinds[0])
    t = time.perf_counter()
    models_sha = rundir.entry(MODELS_FILE)["sha256"] + (inputs.get("target_checkpoint_sha256") or "")
    signals_path = rundir.verified("signals.npz")
    if signals_path is not None and rundir.entry("signals.npz").get("models_sha256") == models_sha:
        signals = Signals.load(signals_path)
    else:
        logits = predict_logits(clf, encoded, batch_size=a.score_batch_size, progress=progress)
        signals = Signals(logits, ds.labels)
        rundir.write("signals.npz", signals.to_bytes(), models_sha256=models_sha)
    times["score"] = time.perf_counter() - t
    t = time.perf_counter()
    # An external target is judged on its own scores: its shadows are references, not targets.
    targets = (0,) if external else tuple(range(min(a.loo_targets, m_models)))
    # Bonferroni family fixed from the config before any result: every attack + the canary audit, each
    # at significance / (attacks + 1); the headline maximum then holds at a.significance.
    source_sig = source_significance(a.significance, len(a.attacks) + 1)
    results = []
    for name in a.attacks:
        log(f"attack: {name}")
        results.append(evaluate_attack(name, signals, membership, targets=targets, delta=claim.delta,
                                       significance=source_sig, fprs=a.fprs,
                                       guess_fraction=a.canary_guess_fraction))
    canary_name = CANARY_ATTACK if CANARY_ATTACK in ATTACKS else "loss"
    canary_scores = create_attack(canary_name).score(signals, membership, target=0,
                                                     reference=np.arange(1, m_models))
    canary = canary_audit(canary_scores, membership[0], delta=claim.delta, significance=source_sig,
                          guess_fraction=a.canary_guess_fraction).to_dict()
    if external:  # the one-run theorem needs each example IN independently with probability ½
        results = [dataclasses.replace(r, epsilon_lb=_as_estimate(r.epsilon_lb)) for r in results]
        canary = _as_estimate(canary)
    family = bonferroni_family([(r.name, r.epsilon_lb) for r in results] + [("canary", canary)],
                               significance=a.significance)
    tag = dict(family_size=family["size"], family_significance=a.significance)
    results = [dataclasses.replace(r, epsilon_lb=with_family(r.epsilon_lb, **tag)) for r in results]
    canary = with_family(canary, **tag)
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
        profile = ProfileCurve(epsilons=tuple(prof.epsilons), deltas=tuple(prof.deltas))
    privacy = PrivacySection(
        non_private=claim.non_private, epsilon=None if math.isinf(epsilon) else float(epsilon),
        delta=claim.delta,
        noise_multiplier=claim.noise_multiplier, sample_rate=claim.sample_rate, steps=steps,
        accountant=claim.accountant, neighbouring="add_remove",
        clipping=ClippingSummary.from_config(settings.clipping),
        profile=profile,
        epsilon_history=EpsilonHistory(steps=tuple(history["steps"]), epsilons=tuple(history["epsilons"])),
        reason="trained without clipping or noise (ε = ∞)" if claim.non_private else None,
        noise=target_noise, claim_source=claim_source,
    )
    run = RunInfo(
        run_id=run_dir.name + "-" + uuid.uuid4().hex[:8], created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        dpaudit_version=__version__, seeds={"base": seed, "membership": seed + 1, "models": model_seeds},
        versions=_versions(),
        hardware={"device": device.type, "cpu_count": os.cpu_count() or 1, "torch_threads": torch.get_num_threads(),
                  "system": platform.system()},
        dataset={"name": ds.name, "source": Path(ds.source).name, "sha256": ds.sha256, "n_population": n,
                 "n_classes": ds.num_classes},
        model={"name": info.name, "source": info.name, "sha256": info.sha256,
               "n_trainable": clf.bank.num_trainable(), "n_total": int(n_total)},
        config=_public_config(cfg.to_dict()), wall_time_s={k: float(v) for k, v in times.items()},
    )
    utility = UtilitySection(metric="accuracy", value=per_model[0], n_eval=int((~membership[0]).sum()),
                             per_model=tuple(per_model), non_private_reference=None)
    draft = AuditReport(schema_version=SCHEMA_VERSION, run=run, privacy=privacy, utility=utility,
                        attacks=tuple(results), canary=canary,
                        verdict=Verdict(protection_level=None, strongest_attack=None))
    strongest = draft.strongest_attack()
    verdict = Verdict(protection_level=None if strongest is None else protection_level(strongest.balanced_accuracy),
                      strongest_attack=None if strongest is None else strongest.name)
    report = AuditReport(**{**{f: getattr(draft, f) for f in ("schema_version", "run", "privacy", "utility",
                                                              "attacks", "canary")}, "verdict": verdict,
                            "epsilon_lb_family": family})
    dump_report(report, rundir.file("audit.json"))
    return AuditOutcome(run_dir=rundir.path, report=report)
