"""Optional stage: the white-box mechanism check of the target's own DP step (``mechanism_check.json``).

With ``audit.mechanism_check = true`` and a DP target trained in this run, :func:`dpaudit.verify.check.
run_mechanism_check` runs dpaudit's training path on the target's training set with the target's exact
σ, q, steps, clipping and δ, plus Dirac gradient canaries seen white-box; its ε lower bound goes into
``audit.json`` (``mechanism_check``) beside the claim. The file is recorded with the hash of the membership
and the training settings it checked, and reused only for exactly those (it is not one of the ``--rerun``
stages: nothing downstream changes it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import numpy as np

from dpaudit.config import Config
from dpaudit.errors import ConfigError
from dpaudit.fileio import json_text
from dpaudit.pipeline.stage import commit, file_sha, reusable
from dpaudit.report_schema import MechanismCheck
from dpaudit.rundir import RunDir

FILE = "mechanism_check.json"

logger = logging.getLogger(__name__)


def check_mechanism_config(cfg: Config, kind: str) -> None:
    """Refuse a mechanism check that cannot apply, before any work: only a DP target trained here has a DP
    step of dpaudit's to check."""
    if not cfg.audit.mechanism_check:
        return
    if kind != "train":
        raise ConfigError(f"audit.mechanism_check checks dpaudit's own DP step, but the target ({kind}) was trained "
                          f"elsewhere; drop audit.mechanism_check, or run `dpaudit verify` with that model's recipe.")
    if cfg.privacy.non_private:
        raise ConfigError("audit.mechanism_check needs a DP target, but privacy.non_private is set; drop one of them.")


def mechanism_stage(run: RunDir, cfg: Config, pop, membership: np.ndarray, settings, plan) -> MechanismCheck | None:
    """The committed check for these inputs, or a new one (``None`` when ``audit.mechanism_check`` is off)."""
    if not cfg.audit.mechanism_check:
        return None
    inputs = {"membership_sha256": file_sha(run, "membership.npy"), "settings": settings.to_dict(),
              "plan": asdict(plan), "canaries": cfg.audit.mechanism_canaries}
    path = reusable(run, FILE, inputs)
    if path is not None:
        return MechanismCheck.from_dict(json.loads(path.read_text(encoding="utf-8")))
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.verify.check import run_mechanism_check

    logger.info(f"mechanism check: {cfg.audit.mechanism_canaries:,} white-box canaries through the target's DP step")
    backbone, tokenizer, _ = load_backbone(cfg.model.path)  # a fresh copy: the bank's backbone is banked
    encoded = EncodedTexts.from_dataset(pop.ds, tokenizer, max_length=cfg.data.max_length)
    check = run_mechanism_check(cfg, num_canaries=cfg.audit.mechanism_canaries, backbone=backbone, encoded=encoded,
                                labels=pop.ds.labels, members=np.flatnonzero(membership[0]), privacy=(settings, plan))
    commit(run, FILE, json_text(check.to_dict()).encode("utf-8"), inputs)
    return check
