"""Stage 6: ``audit.json`` — the claim, provenance (with the target's source), utility, attacks, verdict."""

from __future__ import annotations

import dataclasses
import os
import platform
import time
import uuid
from pathlib import Path

import numpy as np

from dpaudit import __version__
from dpaudit.attacks.signals import Signals
from dpaudit.config import Config
from dpaudit.pipeline.claim import Claim
from dpaudit.protection import audit_power, has_dp_guarantee, majority_baseline, protection_level, recomputed_cap
from dpaudit.report_schema import (SCHEMA_VERSION, AuditReport, ClippingSummary, EpsilonHistory, PrivacySection,
                                   ProfileCurve, ReferenceSection, RunInfo, UtilitySection, Verdict)
from dpaudit.versions import runtime_versions

#: First-screen warning when the reference models are not trained like the target.
RECIPE_DIFFERS = "reference models differ from the target's training; attack power may be understated"


def public_config(config: dict) -> dict:
    """The resolved config for ``audit.json``: paths reduced to their last component (no absolute paths)."""
    out = {section: dict(values) for section, values in config.items()}
    for section, key in (("data", "path"), ("model", "path"), ("target", "path"), ("target", "members"),
                         ("target", "canaries")):
        value = out.get(section, {}).get(key)
        if isinstance(value, str) and value != "embedded":
            out[section][key] = Path(value).name
    return out


def privacy_section(claim: Claim, clipping) -> PrivacySection:
    profile = None if claim.profile is None else ProfileCurve(epsilons=claim.profile[0], deltas=claim.profile[1])
    return PrivacySection(
        non_private=claim.non_private, epsilon=claim.epsilon, delta=claim.delta,
        noise_multiplier=claim.noise_multiplier, sample_rate=claim.sample_rate, steps=claim.steps,
        accountant=claim.accountant, neighbouring=claim.neighbouring, clipping=ClippingSummary.from_config(clipping),
        profile=profile,
        epsilon_history=EpsilonHistory(steps=tuple(claim.history["steps"]), epsilons=tuple(claim.history["epsilons"])),
        reason=claim.reason, noise=claim.noise, claim_source=claim.source,
    )


def run_info(cfg: Config, run_dir: Path, pop, target: dict, facts: dict, model_seeds: list, device,
             times: dict[str, float]) -> RunInfo:
    import torch

    ds, info, seed = pop.ds, pop.info, cfg.train.seed
    return RunInfo(
        run_id=run_dir.name + "-" + uuid.uuid4().hex[:8], created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        dpaudit_version=__version__, seeds={"base": seed, "membership": seed + 1, "models": model_seeds},
        versions=runtime_versions(),
        hardware={"device": device.type, "cpu_count": os.cpu_count() or 1, "torch_threads": torch.get_num_threads(),
                  "system": platform.system()},
        dataset={"name": ds.name, "source": Path(ds.source).name, "sha256": ds.sha256, "n_population": len(ds),
                 "n_classes": ds.num_classes},
        model={"name": info.name, "source": info.name, "sha256": info.sha256,
               "n_trainable": int(facts.get("n_trainable", 0)), "n_total": int(pop.n_total)},
        config=public_config(cfg.to_dict()), wall_time_s={k: float(v) for k, v in times.items()}, target=target,
    )


def utility(signals: Signals, membership: np.ndarray, labels: np.ndarray, n_natural: int | None = None
            ) -> UtilitySection:
    """Held-out accuracy of every model on the natural examples it did not train on; the target's is the headline.

    ``n_natural``: the population's natural examples are its first ``n_natural`` columns (None: all); the
    canaries after them are never counted (a mislabeled canary is wrong by design, a unique one is noise).
    """
    n = signals.logits.shape[1] if n_natural is None else n_natural
    preds, membership, labels = signals.logits[:, :n].argmax(2), membership[:, :n], labels[:n]
    per_model = [float((preds[k][~membership[k]] == labels[~membership[k]]).mean()) for k in range(len(membership))]
    return UtilitySection(metric="accuracy", value=per_model[0], n_eval=int((~membership[0]).sum()),
                          per_model=tuple(per_model), non_private_reference=None,
                          majority_baseline=majority_baseline(labels[~membership[0]]))


def power_section(steps: int | None, num_shadows: int, canaries: dict | None,
                  reference: ReferenceSection | None) -> dict:
    """``power``: what the audit could have seen (:func:`dpaudit.protection.audit_power`) and its inputs."""
    ref_canaries = getattr(reference, "canaries", None) if reference is not None else None
    measurable, reason = audit_power(steps, canaries, ref_canaries)
    ref_bound = ref_canaries.get("epsilon_lb") if isinstance(ref_canaries, dict) else None
    leaked = None if not isinstance(ref_bound, dict) else bool(
        ref_bound.get("status") == "ok" and (ref_bound.get("epsilon_lb") or 0.0) > 0.0)
    return {"measurable": measurable, "reason": reason, "steps": steps, "num_shadows": num_shadows,
            "canaries": 0 if canaries is None else int(canaries["count"]), "canary_cap": recomputed_cap(canaries),
            "reference_leaked": leaked}


def assemble(run: RunInfo, privacy: PrivacySection, util: UtilitySection, results, canary: dict,
             family: dict, reference: ReferenceSection | None = None, canaries: dict | None = None,
             num_shadows: int | None = None) -> AuditReport:
    """The report with its verdict from the strongest attack (on the target: the reference is context) and its
    power; without power the level is never "strong" or "moderate"."""
    if reference is not None:
        util = dataclasses.replace(util, non_private_reference=reference.utility.value)
    known = privacy.claim_source in ("accountant", "checkpoint") or (privacy.steps or 0) > 0
    power = power_section(int(privacy.steps) if known else None, num_shadows, canaries, reference)
    draft = AuditReport(schema_version=SCHEMA_VERSION, run=run, privacy=privacy, utility=util,
                        attacks=tuple(results), canary=canary,
                        verdict=Verdict(protection_level=None, strongest_attack=None))
    strongest = draft.strongest_attack()
    level = None if strongest is None else protection_level(strongest.balanced_accuracy,
                                                            guaranteed=has_dp_guarantee(privacy),
                                                            measurable=power["measurable"])
    verdict = Verdict(protection_level=level, strongest_attack=None if strongest is None else strongest.name)
    return AuditReport(**{**{f: getattr(draft, f) for f in ("schema_version", "run", "privacy", "utility",
                                                            "attacks", "canary")}, "verdict": verdict,
                          "epsilon_lb_family": family, "reference": reference, "canaries": canaries,
                          "power": power})
