"""``run_audit``: the audit as stages, each writing its file into the run directory with its input hashes.

population & membership (``membership.npy``) → target (train here | dpaudit checkpoint | Hugging Face
classifier | scores file: ``target_logits.npy``) → shadows (``models.safetensors``, ``model_logits.npy``)
→ signals (``signals.npz``) → attacks (``attacks.json``) → report (``audit.json``); with
``audit.reference = "non_private"`` a non-private bank on the same membership goes through the shadows, signals
and attacks stages in ``reference/`` (:mod:`dpaudit.pipeline.reference`) before the report; with
``"full_non_private"`` one full fine-tuned non-private model on the target's training set does
(:mod:`dpaudit.pipeline.full_reference`).

The run directory is bound (:meth:`~dpaudit.rundir.RunDir.bind`) to what defines the experiment: the
population, the backbone, the target's kind and member ids (and a checkpoint's hash, whose recipe the shadows
copy) and the training config; a rerun with other such inputs is refused. Within it, each stage's file is
reused only when its recorded inputs match (a changed scores file recomputes the target's logits, the signals
and the attacks; changed attack settings recompute only the attacks); ``rerun="attacks"`` (``--rerun``)
recomputes a stage and the ones after it from the committed files before it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dpaudit.config import MIN_SHADOWS_REFERENCE_ATTACKS, SHADOW_FREE_ATTACKS, Config
from dpaudit.distributed import current
from dpaudit.errors import ConfigError
from dpaudit.pipeline import claim as claims
from dpaudit.pipeline.attack import attacks_stage
from dpaudit.pipeline.canary_audit import plan_canaries
from dpaudit.pipeline.canary_images import canary_images_stage
from dpaudit.pipeline.external import check_member_file
from dpaudit.pipeline.mechanism import check_mechanism_config, mechanism_stage
from dpaudit.pipeline.population import load_population, membership_stage
from dpaudit.pipeline.full_reference import full_reference_section
from dpaudit.pipeline.reference import reference_section
from dpaudit.pipeline.report import RECIPE_DIFFERS, assemble, privacy_section, run_info, utility
from dpaudit.pipeline.shadows import DPAUDIT_RECIPE, ShadowJob, full_recipe
from dpaudit.pipeline.signals import shadows_stage, signals_stage
from dpaudit.pipeline.stage import file_sha, forget_from
from dpaudit.pipeline.target import TargetSource, obtained, open_target, target_kind, target_stage
from dpaudit.release import SUMMARY, audit_summary
from dpaudit.report_io import dump_report
from dpaudit.report_schema import AuditReport
from dpaudit.rundir import RunDir, config_inputs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditOutcome:
    run_dir: Path
    report: AuditReport


def check_audit_config(cfg: Config) -> str:
    """Refuse audit settings that cannot work, before any file is written; returns the target's kind."""
    from dpaudit.attacks.registry import ATTACKS

    a = cfg.audit
    unknown = [x for x in a.attacks if x not in ATTACKS]
    if unknown:
        raise ConfigError(f"unknown attack(s) {unknown}; known attacks: {', '.join(sorted(ATTACKS))}.")
    if a.num_shadows < 2 or a.num_shadows % 2:
        raise ConfigError(f"shadow models come in complementary pairs: audit.num_shadows must be even and ≥ 2, "
                          f"got num_shadows={a.num_shadows}.")
    reference_attacks = [x for x in a.attacks if x not in SHADOW_FREE_ATTACKS]
    if reference_attacks and a.num_shadows < MIN_SHADOWS_REFERENCE_ATTACKS:
        raise ConfigError(f"attacks {reference_attacks} need per-example OUT statistics from ≥ 2 shadows outside "
                          f"each target's pair: set audit.num_shadows ≥ {MIN_SHADOWS_REFERENCE_ATTACKS} (got "
                          f"{a.num_shadows}), or --attacks loss (or leave --attacks unset: with 2 shadows only "
                          f"loss runs).")
    kind = target_kind(cfg)
    if cfg.target.members is not None:
        check_member_file(cfg.target.members)
    claims.check_claim_keys(cfg.target, kind)
    if kind in ("train", "checkpoint") and cfg.target.recipe not in ("unknown", DPAUDIT_RECIPE):
        raise ConfigError(f"a {kind} target is a dpaudit model, trained with '{DPAUDIT_RECIPE}'; remove "
                          f"target.recipe = '{cfg.target.recipe}'.")
    if kind == "train" and a.shadow_recipe != DPAUDIT_RECIPE:
        raise ConfigError(f"audit.shadow_recipe = '{a.shadow_recipe}' imitates a target trained elsewhere "
                          f"(--target); a target trained here is trained with its shadows: use "
                          f"audit.shadow_recipe = '{DPAUDIT_RECIPE}'.")
    check_mechanism_config(cfg, kind)
    _check_canaries(cfg, kind)
    return kind


def _check_canaries(cfg: Config, kind: str) -> None:
    """``audit.canaries``: only a target trained here trains on them; enough for one guess per side."""
    from dpaudit.attacks.canary import guess_counts
    from dpaudit.pipeline.canary_audit import resolve_score_rule

    a = cfg.audit
    if a.canaries == 0:
        return
    if kind != "train":
        raise ConfigError(f"audit.canaries = {a.canaries} adds canaries that only a target trained in this run "
                          f"trains on; a {kind} target was trained without them: set audit.canaries = 0 (or mix "
                          f"canaries into its training data with `dpaudit canaries make`).")
    guess_counts(a.canaries, a.canary_guess_fraction)
    resolve_score_rule(a.canary_score, a.num_shadows)


def _bind(rundir: RunDir, cfg: Config, pop, src: TargetSource) -> None:
    inputs = {"config": config_inputs(cfg.to_dict()), "dataset_sha256": pop.ds.sha256, "n_examples": len(pop.ds),
              "model_sha256": pop.info.sha256, "target_kind": src.kind}
    if src.external:
        inputs["target_members_sha256"] = src.members.sha256
    if src.kind == "checkpoint":  # the shadows copy its recipe
        inputs["target_checkpoint_sha256"] = src.sha256
    rundir.bind(inputs)


def _plan(cfg: Config, src: TargetSource, membership: np.ndarray, user: claims.Claim | None):
    """The shadows' TrainSettings and PrivacyPlan: the target's recipe where known (checkpoint, user σ/q/steps)."""
    from dpaudit.pipeline.external import target_recipe
    from dpaudit.trainers.recipe import few_steps_warning, resolve_privacy

    rows = membership[1:] if src.external else membership
    base = claims.shadow_privacy(cfg, user)
    p = base.privacy
    if src.kind == "checkpoint" and p.epsilon is None and p.noise_multiplier is None and p.preset is None:
        # placeholder: the checkpoint's metadata states non_private, σ, q and steps (copied below)
        base = dataclasses.replace(base, privacy=dataclasses.replace(p, non_private=True))
    settings, plan = resolve_privacy(base, [int(s) for s in rows.sum(1)])
    meta = src.meta if src.kind == "checkpoint" else (claims.user_recipe(user) if user is not None else {})
    copied: list[str] = []
    if meta:
        settings, plan, copied = target_recipe(meta, settings, plan)
    if copied:
        logger.info(f"shadows copy the target's recipe: {', '.join(copied)}")
    logger.info(f"audit: population N={len(membership[0]):,}, target ({src.kind}) + {len(membership) - 1} shadows, "
                f"~{int(rows.sum(1).mean()):,} training examples each; "
                + ("non-private (ε = ∞)" if plan.non_private else
                   f"σ={plan.noise_multiplier:.4f}, q={plan.sample_rate:.4g}, {plan.steps} steps, δ={plan.delta:.3g}"))
    warning = None if meta else few_steps_warning(plan, settings)
    if warning:
        logger.warning(warning)
    if cfg.train.noise == "seeded" and not src.external and not plan.non_private:
        logger.info("seeded noise: the target's noise is reproducible from the seed — NOT a private release")
    if cfg.audit.shadow_recipe == "full":  # refuse what it cannot train before any model is trained
        full_recipe(settings, plan, cfg.data.max_length)
    return settings, plan


def _job(cfg: Config, pop, src: TargetSource, rundir: RunDir, membership, settings, plan, device, progress):
    from dpaudit.trainers.recipe import checkpoint_meta, released_seed

    seed, m_models = cfg.train.seed, len(membership)
    shadow_seeds = [seed * 1000 + 17 + k for k in range(1, m_models)]  # shadows are never released
    model_seeds = [None if src.external else released_seed(cfg, seed * 1000 + 17)] + shadow_seeds
    ds, info = pop.ds, pop.info
    meta = checkpoint_meta(cfg, ds, info)
    rows = membership[1:] if src.external else membership
    job = ShadowJob(cfg=cfg, dataset=ds, membership=rows, settings=settings, plan=plan,
                    seeds=model_seeds[1:] if src.external else model_seeds, run=rundir, device=device,
                    progress=progress, model_path=cfg.model.path, meta=meta)
    return job, model_seeds


def _prepare(cfg: Config, kind: str, membership_of):
    """Population, target, user claim, membership (``membership_of(pop, src)``) and the shadows' plan."""
    pop = load_population(cfg)
    src = open_target(cfg, kind, pop.ds, pop.info.sha256)
    user = claims.user_claim(cfg.target, int(src.members.mask.sum())) if kind in ("hf", "scores") else None
    membership = membership_of(pop, src)
    settings, plan = _plan(cfg, src, membership, user)
    return pop, src, user, membership, settings, plan


def _share_membership(comm, membership: np.ndarray | None, rows: int) -> np.ndarray:
    """Rank 0's committed membership (M, N) on every rank (the population's size is checked by ``agree``)."""
    if comm.world_size == 1:
        return membership
    flat = comm.broadcast_array(None if membership is None else membership.reshape(-1), dtype=np.uint8)
    return flat.reshape(rows, -1).astype(bool)


def recipe_differs(cfg: Config, kind: str, user: claims.Claim | None) -> bool:
    """Whether the shadows may train otherwise than the target (``run.target.recipe_differs``).

    ``False`` only when both the way of training and the privacy hyper-parameters are known: a dpaudit
    target with ``bitfit`` shadows (its own recipe and accounting), or a target trained elsewhere whose
    ``target.recipe`` the user states as the shadow recipe *and* whose privacy is stated in full — no claim
    (non-private: shadows non-private with the config's ``[train]``/``[optim]``, which the user then states
    are the target's) or a σ/q/steps claim (copied). An (ε, δ)-only claim leaves σ, q and steps guessed.
    """
    if kind in ("train", "checkpoint"):
        return cfg.audit.shadow_recipe != DPAUDIT_RECIPE
    if cfg.target.recipe != cfg.audit.shadow_recipe:
        return True
    return not (user is None or user.source == "none" or user.steps > 0)


def _target_record(cfg: Config, src: TargetSource, user: claims.Claim | None) -> dict:
    differs = recipe_differs(cfg, src.kind, user)
    return {"kind": src.kind, "source": None if src.path is None else src.path.name, "sha256": src.sha256,
            "obtained": obtained(src, cfg), "shadow_recipe": cfg.audit.shadow_recipe,
            "recipe_differs": differs, "warning": RECIPE_DIFFERS if differs else None}


def _claim(cfg: Config, src: TargetSource, plan, facts: dict, user: claims.Claim | None) -> claims.Claim:
    if src.kind == "train":
        history = facts.get("epsilon_history") or {"steps": [], "epsilons": []}
        return claims.plan_claim(plan, int(facts.get("steps", plan.steps)), history, "accountant",
                                 None if plan.non_private else cfg.train.noise)
    if src.kind == "checkpoint":
        return claims.checkpoint_claim(plan, src.meta)
    return user


def _reference(cfg: Config, rundir: RunDir, pop, membership, job, src: TargetSource, times: dict, delta: float,
               **kw):
    """The non-private reference section (``audit.reference``: a BiTFiT bank or one full fine-tune), else ``None``."""
    if cfg.audit.reference == "none":
        return None
    t = time.perf_counter()
    if cfg.audit.reference == "full_non_private":
        section = full_reference_section(cfg, rundir, pop, membership, delta=delta, external=src.external, **kw)
    else:
        section = reference_section(cfg, rundir, pop, membership, job.meta, external=src.external, **kw)
    times["reference"] = time.perf_counter() - t
    return section


def _open_run(cfg: Config, run_dir: Path, world_size: int, force_run_dir: bool, rerun: str | None):
    """Rank 0's start: check the config, claim and bind the run directory, commit the membership.

    Returns ``(rundir, (population, target source, user claim, membership, settings, plan))``.
    """
    from dpaudit.models import resolve_model_dir

    kind = check_audit_config(cfg)
    resolve_model_dir(cfg.model.path, max_length=cfg.data.max_length)  # fails before the data and the accounting
    rundir = RunDir.claim(run_dir, command="audit", force=force_run_dir)
    rundir.bind_world_size(world_size)

    def committed_membership(pop, src):
        _bind(rundir, cfg, pop, src)
        if rerun is not None:
            forget_from(rundir, rerun)
        return membership_stage(rundir, cfg, len(pop.ds), cfg.audit.num_shadows + 1,
                                src.members.mask if src.external else None)

    return rundir, _prepare(cfg, kind, committed_membership)


def run_audit(cfg: Config, run_dir: Path, *, progress: bool = True, force_run_dir: bool = False,
              rerun: str | None = None) -> AuditOutcome | None:
    """Run (or resume) the whole audit described by ``cfg`` into ``run_dir``; ``rerun`` names a stage to
    recompute with the ones after it (see :data:`dpaudit.pipeline.stage.RERUNNABLE`).

    Progress messages go to ``logging.getLogger("dpaudit.pipeline")`` at INFO; the CLI shows them on stdout.
    Under torchrun every rank calls it: the shadow rows are sharded over the ranks (:mod:`dpaudit.pipeline.fleet`),
    rank 0 alone writes the run directory's marker, attacks and reports; the other ranks return ``None``.
    """
    if cfg.target.canaries is not None:  # a model trained anywhere, on the canaries of `dpaudit canaries make`
        from dpaudit.pipeline.canary_target import run_canary_audit

        return run_canary_audit(cfg, run_dir, force_run_dir=force_run_dir)
    comm = current()
    t0, times = time.perf_counter(), {}
    rundir, shared = None, None
    if comm.is_main:  # a refusal before the shadows is one line, from rank 0; the others wait for its membership
        rundir, (pop, src, user, membership, settings, plan) = _open_run(cfg, run_dir, comm.world_size,
                                                                         force_run_dir, rerun)
        shared = membership
    shared = _share_membership(comm, shared, cfg.audit.num_shadows + 1)
    if not comm.is_main:
        pop, src, user, membership, settings, plan = _prepare(cfg, check_audit_config(cfg), lambda *_: shared)
    comm.agree(f"{pop.ds.sha256} {pop.info.sha256} {membership.shape}", what="population or backbone")
    cfg = dataclasses.replace(cfg, audit=dataclasses.replace(cfg.audit, fprs=pop.fprs))  # as N resolves them
    from dpaudit.trainers.recipe import resolve_device  # torch: after every check of the inputs

    device = resolve_device(cfg.train.device)
    t = time.perf_counter()
    target_logits, inputs = None, None
    if comm.is_main:
        rundir.write_json("config.json", cfg.to_dict())
        target_logits = target_stage(rundir, src, cfg, pop, device)
        inputs = {"membership_sha256": file_sha(rundir, "membership.npy"), "recipe": cfg.audit.shadow_recipe,
                  "settings": settings.to_dict(), "plan": asdict(plan)}
    job, model_seeds = _job(cfg, pop, src, rundir, membership, settings, plan, device, progress)
    model_logits, facts = shadows_stage(rundir, job, inputs, comm)
    if not comm.is_main:  # rank 0 attacks and reports
        return None
    times["train"] = time.perf_counter() - t
    signals = signals_stage(rundir, target_logits, model_logits, pop.ds.labels)
    claim = _claim(cfg, src, plan, facts, user)
    t = time.perf_counter()
    canary_plan = plan_canaries(pop, cfg.audit.canary_score, cfg.audit.num_shadows)
    results, canary, family, canaries = attacks_stage(rundir, cfg, signals, membership, claim.delta, src.external,
                                                      canary_plan)
    times["attack"] = time.perf_counter() - t
    canary_images_stage(rundir, pop, membership, signals.logits[0])  # image audits: a few canaries as pictures
    reference = _reference(cfg, rundir, pop, membership, job, src, times, claim.delta, device=device,
                           progress=progress, force=force_run_dir, rerun=rerun)
    times["total"] = time.perf_counter() - t0
    info = run_info(cfg, run_dir, pop, _target_record(cfg, src, user), facts, model_seeds, device, times)
    report = dataclasses.replace(
        assemble(info, privacy_section(claim, settings.clipping),
                 utility(signals, membership, pop.ds.labels, pop.n_natural), results, canary, family, reference,
                 canaries, num_shadows=len(membership) - 1),
        mechanism_check=mechanism_stage(rundir, cfg, pop, membership, settings, plan))
    dump_report(report, rundir.file("audit.json"))  # confidential (0600): the target's membership shows
    rundir.write_json(SUMMARY, audit_summary(cfg, report))  # the public part (dpaudit.release)
    return AuditOutcome(run_dir=rundir.path, report=report)
