"""Stage 5: every configured attack, the one-run audit over natural examples and — with crafted canaries in the
population — the canary bound (:mod:`dpaudit.pipeline.canary_audit`), under one Bonferroni family
(``attacks.json``, recorded with the hashes of the signals and membership it was computed from).

The attacks and the natural one-run audit read the natural examples only (the first ``n_natural`` columns):
they stay about the data the model was meant to learn; the canaries are scored by the canary bound alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np

from dpaudit.attacks.canary import canary_audit
from dpaudit.attacks.evaluate import evaluate_attack
from dpaudit.attacks.membership import population_fprs
from dpaudit.attacks.registry import ATTACKS, create_attack
from dpaudit.attacks.signals import Signals
from dpaudit.config import Config
from dpaudit.pipeline.canary_audit import CanaryPlan, canary_section, natural_part
from dpaudit.pipeline.canary_audit import canary_scores as crafted_scores
from dpaudit.fileio import json_text
from dpaudit.pipeline.stage import commit, file_sha, reusable
from dpaudit.privacy import bonferroni_family, source_significance, with_family
from dpaudit.report_schema import AttackResult
from dpaudit.rundir import RunDir

CANARY_ATTACK = "lira_offline"  # fixed before any result is seen, as the one-run audit requires

logger = logging.getLogger(__name__)


def as_estimate(bound: dict) -> dict:
    """A bound whose theorem does not apply to this experiment, relabelled as an estimate (never gated)."""
    return {**bound, "kind": "estimate",
            "assumption": "the target's training set was chosen outside this audit, not by an independent fair coin "
                          "per example, so the one-run theorem (arXiv 2305.08846) does not apply: an estimate"}


def run_attacks(cfg: Config, signals: Signals, membership: np.ndarray, delta: float, external: bool,
                plan: CanaryPlan | None = None):
    """Returns ``(attack results, canary bound dict, family dict, canaries section or None)``."""
    a, m_models = cfg.audit, len(membership)
    # An external target is judged on its own scores: its shadows are references, not targets.
    targets = (0,) if external else tuple(range(min(a.loo_targets, m_models)))
    # Bonferroni family fixed from the config before any result: every attack + the natural one-run audit
    # (+ the canary bound when the population holds canaries), each at significance / (number of sources);
    # the headline maximum then holds at a.significance.
    source_sig = source_significance(a.significance, len(a.attacks) + 1 + (plan is not None))
    canaries = None if plan is None else canary_section(
        crafted_scores(plan, signals, membership), membership[0, plan.columns], kind=plan.kind,
        delta=min(delta, a.canary_delta),
        significance=source_sig, guess_fraction=a.canary_guess_fraction, score_rule=plan.score_rule)
    signals, membership = natural_part(signals, membership, plan)
    results = []
    for name in a.attacks:
        logger.info(f"attack: {name}")
        results.append(evaluate_attack(name, signals, membership, targets=targets, delta=delta,
                                       significance=source_sig, fprs=population_fprs(membership.shape[1], a.fprs)[0],
                                       guess_fraction=a.canary_guess_fraction))
    # Fixed from the config before any score is seen: LiRA offline needs ≥ 2 OUT references per example,
    # which fewer than 4 shadows (2 complementary pairs) cannot give; then the LOSS attack.
    canary_name = CANARY_ATTACK if CANARY_ATTACK in ATTACKS and m_models - 1 >= 4 else "loss"
    canary_scores = create_attack(canary_name).score(signals, membership, target=0,
                                                     reference=np.arange(1, m_models))
    canary = canary_audit(canary_scores, membership[0], delta=delta, significance=source_sig,
                          guess_fraction=a.canary_guess_fraction).to_dict()
    if external:  # the one-run theorem needs each example IN independently with probability ½
        results = [dataclasses.replace(r, epsilon_lb=as_estimate(r.epsilon_lb)) for r in results]
        canary = as_estimate(canary)
    members = [(r.name, r.epsilon_lb) for r in results] + [("canary", canary)]
    family = bonferroni_family(members + ([] if canaries is None else [("canaries", canaries["epsilon_lb"])]),
                               significance=a.significance)
    tag = dict(family_size=family["size"], family_significance=a.significance)
    results = [dataclasses.replace(r, epsilon_lb=with_family(r.epsilon_lb, **tag)) for r in results]
    if canaries is not None:
        canaries = {**canaries, "epsilon_lb": with_family(canaries["epsilon_lb"], **tag)}
    return results, with_family(canary, **tag), family, canaries


def attacks_stage(run: RunDir, cfg: Config, signals: Signals, membership: np.ndarray, delta: float,
                  external: bool, plan: CanaryPlan | None = None):
    """:func:`run_attacks` → ``(results, canary, family, canaries)``, reused from ``attacks.json`` when signals,
    membership, δ, the attack settings and the canary plan are those it was computed from."""
    a = cfg.audit
    inputs = {"signals_sha256": file_sha(run, "signals.npz"), "membership_sha256": file_sha(run, "membership.npy"),
              "delta": delta, "external": external, "attacks": list(a.attacks),
              "fprs": list(population_fprs(membership.shape[1], a.fprs)[0]),
              "significance": a.significance, "loo_targets": a.loo_targets,
              "canary_guess_fraction": a.canary_guess_fraction,
              "canary_plan": None if plan is None else dataclasses.asdict(plan), "canary_delta": a.canary_delta}
    path = reusable(run, "attacks.json", inputs)
    if path is not None:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return ([AttackResult.from_dict(r) for r in saved["attacks"]], saved["canary"], saved["family"],
                saved.get("canaries"))
    results, canary, family, canaries = run_attacks(cfg, signals, membership, delta, external, plan)
    text = json_text({"attacks": [r.to_dict() for r in results], "canary": canary, "family": family,
                      "canaries": canaries})
    commit(run, "attacks.json", text.encode("utf-8"), inputs)
    return results, canary, family, canaries
