"""``dpaudit audit --target MODEL --canaries DIR``: a one-run ε lower bound for a model trained anywhere.

DIR (``dpaudit canaries make``) holds m canaries and, secret, the fair coin per canary (OS CSPRNG) that put
it in the training file the user trained MODEL on. The target scores each canary with the log-probability
of the label it was (or would have been) trained with, ``s_i = log softmax(f(x_i))[y_i]`` (−loss: higher =
member); the auditor guesses IN for the k highest and OUT for the k lowest, k = ⌊guess_fraction · m / 2⌋
fixed from m before any score is seen, and the number of correct guesses gives ε_LB at confidence
1 − significance (Steinke, Nasr, Jagielski 2023, arXiv 2305.08846 v1, Theorem 3). The theorem's experiment is
exactly this one — inclusion by an independent fair coin per canary, the rest of the training set fixed —
so the bound is of ``kind: "bound"`` whatever trained the model, with no shadow model: nothing but the
target's outputs on the canaries and the coins.

The population of this audit is the m canaries alone (no shadows, no natural-example attacks): ``audit.json``
has no ``attacks``, the one-run bound in ``canary``, and the ``canaries`` section (count, kind, score_rule,
guess_fraction, guesses_in/out, auc, cap, epsilon_lb). Its utility is the target's accuracy on the OUT mislabeled canaries
against their original labels (rows that never entered its training file: a true held-out set). Every run
scores the canaries again (m forward passes; nothing to resume); the run directory is bound to the hashes of
``canaries.json`` and ``inclusion.json``.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import numpy as np

from dpaudit.config import Config
from dpaudit.pipeline.canary_audit import canary_section
from dpaudit.privacy import source_significance
from dpaudit.errors import ConfigError

logger = logging.getLogger(__name__)

#: ``canaries.score_rule``: the target's log-probability of the canary's (trained-with) label, ``log p_y``
#: (the name of the same rule in :mod:`dpaudit.pipeline.canary_audit` of the in-population canary bound).
SCORE_RULE = "loss"


def label_log_probability(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log softmax(logits)[i, labels[i]]`` (float64 (m,)), computed stably: ``z_y − logsumexp(z)``."""
    from scipy.special import logsumexp

    z = np.asarray(logits, dtype=np.float64)
    return z[np.arange(len(z)), labels] - logsumexp(z, axis=1)


def _target(cfg: Config):
    from dpaudit.pipeline.target import target_kind

    kind = target_kind(cfg)
    if kind == "train":
        raise ConfigError("--canaries DIR audits a model trained elsewhere on DIR's training file: give it as "
                          "--target MODEL (a Hugging Face classifier dir, a dpaudit checkpoint or a scores file).")
    if cfg.target.members is not None:
        raise ConfigError("--canaries DIR audits the target on DIR's canaries alone; remove --target-members "
                          "(audit the natural examples in a separate run).")
    if cfg.audit.reference != "none" or cfg.audit.mechanism_check:
        raise ConfigError("--canaries DIR trains no model here, so it has no non-private reference or mechanism "
                          "check; remove audit.reference / audit.mechanism_check (--reference, --mechanism-check).")
    from dpaudit.distributed import current

    if current().world_size > 1:
        raise ConfigError("--canaries DIR scores m canaries in one process; start it without torchrun.")
    return kind


def _checkpoint(cfg: Config, path: Path, ds, device, n_train: int):
    """A dpaudit ``models.safetensors`` (e.g. ``dpaudit train --data DIR/train.csv``): its logits (m, C) on the
    canaries and its own claim (σ, q, steps, δ from its metadata, accounted here; asserted, not verified).

    ``dpaudit train`` holds out a share of its data: an IN canary it held out was never trained on. The bound
    stays sound (that canary's score cannot depend on its coin), only weaker.
    """
    import dataclasses as dc

    from dpaudit.errors import CheckpointError
    from dpaudit.models import load_backbone
    from dpaudit.pipeline import claim as claims
    from dpaudit.pipeline.external import target_recipe
    from dpaudit.pipeline.population import Population
    from dpaudit.pipeline.target import TargetSource, _checkpoint_logits
    from dpaudit.rundir import sha256_file
    from dpaudit.trainers.checkpoint import read_models
    from dpaudit.trainers.recipe import resolve_privacy

    backbone, tokenizer, info = load_backbone(cfg.model.path, max_length=cfg.data.max_length)
    _, meta = read_models(path, backbone_sha256=info.sha256)
    names = meta.get("label_names")
    if meta.get("num_models", 1) != 1 or (names is not None and list(names) != list(ds.label_names)):
        raise CheckpointError(f"target checkpoint '{path}' is not one model trained on the canaries' labels "
                              f"{list(ds.label_names)[:10]}; give the checkpoint trained on DIR's training file.")
    pop = Population(ds, backbone, tokenizer, info, n_total=0, fprs=cfg.audit.fprs or ())
    logits = _checkpoint_logits(TargetSource("checkpoint", path, None, sha256_file(path), meta), cfg, pop, device)
    # a placeholder plan, every privacy number of which the checkpoint's metadata replaces (target_recipe)
    base = dc.replace(cfg, privacy=dc.replace(cfg.privacy, non_private=True, epsilon=None, noise_multiplier=None,
                                              preset=None), train=dc.replace(cfg.train, batch_size=1, epochs=1.0))
    settings, plan = resolve_privacy(base, [n_train])
    _, plan, _ = target_recipe(meta, settings, plan)
    return logits, claims.checkpoint_claim(plan, meta)


def _logits(cfg: Config, kind: str, ds, device) -> np.ndarray:
    """The target's logits (m, C) on the canaries, columns in the canaries' class order (hf, scores)."""
    path = Path(cfg.target.path)
    if kind == "scores":
        from dpaudit.pipeline.scores import read_scores

        if path.is_dir():
            raise ConfigError(f"target '{path}' is a directory, not a scores file; use target.kind = 'hf'.")
        return read_scores(path, n=len(ds), num_classes=ds.num_classes, kind=cfg.target.scores_kind,
                           texts=list(ds.texts) if hasattr(ds, "texts") else None)
    from dpaudit.models import resolve_model_dir
    from dpaudit.pipeline.hf_target import check_labels, hf_logits

    resolve_model_dir(path)
    check_labels(path, ds.num_classes, images=hasattr(ds, "pixels"))
    return hf_logits(path, ds, max_length=cfg.data.max_length, batch_size=cfg.audit.score_batch_size,
                     device=device)


def _utility(logits: np.ndarray, cdir):
    from dpaudit.protection import majority_baseline
    from dpaudit.report_schema import UtilitySection

    c, out = cdir.canaries, ~cdir.included
    truth = c.original_labels if c.kind == "mislabeled" else c.labels
    value = float((logits[out].argmax(1) == truth[out]).mean()) if out.any() else 0.0
    return UtilitySection(metric="accuracy", value=value, n_eval=int(out.sum()), per_model=(value,),
                          majority_baseline=majority_baseline(truth[out]) if out.any() else None)


def _run_info(cfg: Config, rundir, cdir, src: dict, device, times: dict):
    import os
    import platform

    import torch

    from dpaudit import __version__
    from dpaudit.pipeline.report import public_config
    from dpaudit.report_schema import RunInfo
    from dpaudit.versions import runtime_versions

    ds = cdir.dataset()
    return RunInfo(
        run_id=rundir.path.name + "-" + uuid.uuid4().hex[:8],
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), dpaudit_version=__version__,
        seeds={"base": cfg.train.seed, "membership": cdir.seed, "models": []}, versions=runtime_versions(),
        hardware={"device": device.type, "cpu_count": os.cpu_count() or 1, "torch_threads": torch.get_num_threads(),
                  "system": platform.system()},
        dataset={"name": ds.name, "source": cdir.path.name, "sha256": cdir.canaries_sha256,
                 "n_population": len(ds), "n_classes": ds.num_classes},
        model={"name": src["source"], "source": src["source"], "sha256": src["sha256"], "n_trainable": 0,
               "n_total": 0},
        config=public_config(cfg.to_dict()), wall_time_s={k: float(v) for k, v in times.items()}, target=src)


def _report(cfg: Config, rundir, cdir, logits, section: dict, claim, src: dict, device, times: dict):
    from dpaudit.pipeline.report import privacy_section
    from dpaudit.privacy import bonferroni_family, with_family
    from dpaudit.report_schema import SCHEMA_VERSION, AuditReport, Verdict

    family = bonferroni_family([("canary", section["epsilon_lb"])], significance=cfg.audit.significance)
    bound = with_family(section["epsilon_lb"], family_size=family["size"],
                        family_significance=cfg.audit.significance)
    section = {**section, "epsilon_lb": bound}
    return AuditReport(schema_version=SCHEMA_VERSION, run=_run_info(cfg, rundir, cdir, src, device, times),
                       privacy=privacy_section(claim, cfg.clipping), utility=_utility(logits, cdir), attacks=(),
                       canary=bound, verdict=Verdict(protection_level=None, strongest_attack=None),
                       epsilon_lb_family=family, canaries=section)


def run_canary_audit(cfg: Config, run_dir: Path, *, force_run_dir: bool = False):
    """The audit of ``cfg.target`` on the canaries of ``cfg.target.canaries`` (see the module docstring)."""
    from dpaudit.canary_dir import read_canary_dir
    from dpaudit.pipeline import claim as claims
    from dpaudit.pipeline.hf_target import dir_sha256
    from dpaudit.pipeline.run import AuditOutcome
    from dpaudit.pipeline.target import OBTAINED
    from dpaudit.report_io import dump_report
    from dpaudit.rundir import RunDir, config_inputs, sha256_file
    from dpaudit.trainers.recipe import resolve_device

    t0 = time.perf_counter()
    kind = _target(cfg)
    claims.check_claim_keys(cfg.target, kind)
    cdir = read_canary_dir(cfg.target.canaries)
    claim = None if kind == "checkpoint" else claims.user_claim(cfg.target, cdir.n_train)  # refused before any file
    path = Path(cfg.target.path)
    sha = dir_sha256(path) if kind == "hf" else sha256_file(path)
    rundir = RunDir.claim(run_dir, command="audit", force=force_run_dir)
    rundir.bind({"config": config_inputs(cfg.to_dict()), "canaries_sha256": cdir.canaries_sha256,
                 "inclusion_sha256": cdir.inclusion_sha256, "target_kind": kind})
    rundir.write_json("config.json", cfg.to_dict())
    device = resolve_device(cfg.train.device)
    logger.info(f"audit: target ({kind}) on the {len(cdir.canaries)} {cdir.canaries.kind} canaries of "
                f"'{cdir.path.name}' (the coins are dpaudit's: a one-run bound, no shadows)")
    ds = cdir.dataset()
    if kind == "checkpoint":
        logits, claim = _checkpoint(cfg, path, ds, device, cdir.n_train)
    else:
        logits = _logits(cfg, kind, ds, device)
    scores = label_log_probability(logits, ds.labels)
    delta = claim.delta if claim.delta is not None else cfg.audit.canary_delta
    section = canary_section(scores, cdir.included, kind=cdir.canaries.kind, delta=min(delta, cfg.audit.canary_delta),
                             # the report's family: this bound as `canaries` and as `canary` (the gate reads both)
                             significance=source_significance(cfg.audit.significance, 2),
                             guess_fraction=cfg.audit.canary_guess_fraction, score_rule=SCORE_RULE)
    src = {"kind": kind, "source": path.name, "sha256": sha, "canaries": cdir.path.name,
           "obtained": OBTAINED[kind].format(scores_kind=cfg.target.scores_kind), "recipe_differs": False,
           "warning": None}
    report = _report(cfg, rundir, cdir, logits, section, claim, src, device, {"total": time.perf_counter() - t0})
    dump_report(report, rundir.file("audit.json"))
    return AuditOutcome(run_dir=rundir.path, report=report)
