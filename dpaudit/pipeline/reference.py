"""The non-private reference (``audit.reference = "non_private"``): what the same training leaks without DP.

Beside the audited bank, a second bank — a reference target and K shadows — is trained on the same
population and the same membership matrix (row 0 trains on the target's training set), with the target's
backbone, shadow recipe, epochs, batch size and step size, but without clipping or noise (ε = ∞). The
same attacks run on it, and ``audit.json`` gets a ``reference`` section (its utility and attack results)
and ``utility.non_private_reference``. It is context for the reader: ``dpaudit gate`` never reads it.

Its files live in their own run directory ``<run-dir>/reference/`` (``membership.npy``,
``models.safetensors``, ``model_logits.npy``, ``signals.npz``, ``attacks.json``), made by the same stage
functions as the main bank and recorded with their input hashes, so a rerun resumes it and ``--rerun``
recomputes it with the main stages. Its ``membership.npy`` is a copy of the run's: when it differs (a
``reference/`` from another run), every reference file is forgotten and the bank is trained anew.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict

import numpy as np

from dpaudit.config import Config
from dpaudit.pipeline.attack import attacks_stage
from dpaudit.pipeline.canary_audit import plan_canaries
from dpaudit.pipeline.report import utility
from dpaudit.pipeline.shadows import ShadowJob
from dpaudit.pipeline.signals import shadows_stage, signals_stage
from dpaudit.pipeline.stage import STAGES, file_sha, forget_from
from dpaudit.report_schema import ReferenceSection, strongest_of
from dpaudit.rundir import RunDir

#: The reference bank's run directory, inside the audit's.
REFERENCE_DIR = "reference"
#: Seeds of the reference models (never released: a non-private model has nothing to keep secret).
_SEED_OFFSET = 7919

logger = logging.getLogger(__name__)


def reference_rundir(parent: RunDir, *, force: bool = False) -> RunDir:
    """``<run-dir>/reference`` holding a copy of the run's membership (its files forgotten if it held another).

    Raises:
        ConfigError: the directory is a link, foreign, or one of its files was changed after dpaudit wrote it.
    """
    sub = RunDir.claim(parent.path / REFERENCE_DIR, command="audit-reference", force=force)
    want = file_sha(parent, "membership.npy")
    if sub.verified("membership.npy") is None or file_sha(sub, "membership.npy") != want:
        for names in STAGES.values():  # another membership: nothing trained on it belongs to this run
            for name in names:
                sub.forget(name)
        sub.write("membership.npy", parent.file("membership.npy").read_bytes())
    return sub


def non_private_config(cfg: Config) -> Config:
    """``cfg`` with ``privacy.non_private = true`` (ε and σ unset): the reference's recipe."""
    p = dataclasses.replace(cfg.privacy, non_private=True, epsilon=None, noise_multiplier=None)
    return dataclasses.replace(cfg, privacy=p)


def reference_section(cfg: Config, parent: RunDir, pop, membership: np.ndarray, meta: dict, *, device,
                      progress: bool, external: bool, force: bool = False,
                      rerun: str | None = None) -> ReferenceSection:
    """Train (or resume) the non-private bank on ``membership`` (M, N), attack it, and summarise it.

    Args:
        meta: the main bank's checkpoint metadata (backbone, labels, dataset), copied to the reference's.
        external: the target was trained elsewhere (its membership is not a fair coin: bounds are estimates).
        rerun: the stage ``--rerun`` names; the reference's files of that stage and later are recomputed too.
    """
    from dpaudit.trainers.recipe import resolve_privacy

    sub = reference_rundir(parent, force=force)
    if rerun is not None:
        forget_from(sub, rerun)
    settings, plan = resolve_privacy(non_private_config(cfg), [int(s) for s in membership.sum(1)])
    assert plan.non_private and settings.noise_multiplier == 0.0  # a reference never trains with noise
    logger.info(f"reference: a non-private bank (reference target + {len(membership) - 1} shadows, ε = ∞) on the "
                f"same population and membership, {plan.steps} steps each")
    seed = cfg.train.seed
    job = ShadowJob(cfg=cfg, dataset=pop.ds, membership=membership, settings=settings, plan=plan,
                    seeds=[seed * 1000 + _SEED_OFFSET + k for k in range(len(membership))], run=sub,
                    device=device, progress=progress, model_path=cfg.model.path,
                    meta={**meta, "reference": "non_private"})
    logits, facts = shadows_stage(sub, job, {"membership_sha256": file_sha(sub, "membership.npy"),
                                             "recipe": cfg.audit.shadow_recipe, "reference": "non_private",
                                             "settings": settings.to_dict(), "plan": asdict(plan)})
    signals = signals_stage(sub, None, logits, pop.ds.labels)
    canaries = plan_canaries(pop, cfg.audit.canary_score, cfg.audit.num_shadows)
    # natural examples only, like the target's attacks (the reference bank's canary section is not reported)
    results, canary, family, _ = attacks_stage(sub, cfg, signals, membership, plan.delta, external, canaries)
    strongest = strongest_of(tuple(results))
    return ReferenceSection(kind="non_private", non_private=plan.non_private,
                            noise_multiplier=float(plan.noise_multiplier), sample_rate=float(plan.sample_rate),
                            steps=int(facts.get("steps", plan.steps)),
                            utility=utility(signals, membership, pop.ds.labels, pop.n_natural),
                            attacks=tuple(results),
                            canary=canary, strongest_attack=None if strongest is None else strongest.name,
                            epsilon_lb_family=family)
