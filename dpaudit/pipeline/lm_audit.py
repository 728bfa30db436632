"""``dpaudit audit --task causal-lm``: the membership audit of a DP-BiTFiT causal LM (docs/causal-lm.md).

1. Population: the corpus's texts, then ``audit.canaries`` secret canaries (:mod:`dpaudit.lm_canaries`).
   Membership (M = 1 + num_shadows, N): row 0, the target's, a fair coin per text and canary from the OS CSPRNG
   (seeded only under ``--seeded-noise``); shadow rows from :func:`attacks.membership.make_membership`
   (complementary pairs). Committed as ``membership.npy`` (0600), the canaries' secrets and exposure candidates
   as ``lm_canaries.json`` (0600, :func:`dpaudit.lm_canaries.canaries_record`). A rerun into the same run
   directory (bound to the config's inputs, the corpus and the backbone) reuses both and resumes the training
   from its last checkpoint (:meth:`trainers.loop.Trainer.try_resume`); the scores are recomputed.
2. One BiasBank trains the target and the shadows together (:class:`trainers.causal_lm.BankedCausalLM`).
3. Per-token statistics of every model on every text (:mod:`trainers.lm_scores`), and of the base model
   (before fine-tuning) for the reference ratio; every LM attack in :data:`attacks.lm_signals.LM_ATTACKS`
   (those needing shadows only with ≥ 2 shadows) is evaluated on the natural texts.
4. Canaries: the one-run bound (arXiv 2305.08846v1) on the score ``NLL_base − NLL_target`` of each canary, and
   the Secret Sharer's exposure of included and excluded canaries.
5. ``audit.json`` (0600) with a ``causal_lm`` section: the exposure summary and greedy continuations of fixed
   prompts (:data:`PROMPTS`, none taken from the data) before and after fine-tuning (confidential: a
   continuation may repeat a member's text).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from dpaudit.config import Config
from dpaudit.lm_canaries import CANARIES_FILE, canaries_record, exposure, exposure_section
from dpaudit.pipeline.canary_audit import canary_section
from dpaudit.privacy import source_significance
from dpaudit.rundir import RunDir, config_inputs

#: Fixed prompts of the before/after generations: no text of the data (no member's text in any file).
PROMPTS = ("The movie", "I think that", "the secret number is ")


def _population(cfg: Config, saved=None):
    """The corpus, then the canaries: ``saved`` (a resumed run's :class:`~dpaudit.lm_canaries.LMCanaries`) or
    fresh CSPRNG secrets."""
    from dpaudit.lm_canaries import TEMPLATE, make_lm_canaries
    from dpaudit.lm_data import load_configured_lm_texts

    ds = load_configured_lm_texts(cfg)
    canaries = (saved or make_lm_canaries(cfg.audit.canaries)) if cfg.audit.canaries else None
    texts, pairs = list(ds.texts), None if ds.pairs is None else list(ds.pairs)
    if canaries is not None and pairs is None:
        texts += list(canaries.texts)
    elif canaries is not None:  # a completion corpus: the template is the prompt, the secret the completion
        texts += [TEMPLATE.strip()] * len(canaries)
        pairs += list(canaries.secrets)
    return ds, canaries, texts, pairs


def _membership(cfg: Config, n: int) -> np.ndarray:
    from dpaudit.attacks.membership import make_membership
    from dpaudit.trainers.randomness import SecureRandom

    k = cfg.audit.num_shadows
    membership = make_membership(n, k + 1, seed=cfg.train.seed + 1) if k else np.zeros((1, n), dtype=bool)
    if cfg.train.noise == "seeded":
        membership[0] = np.random.default_rng(cfg.train.seed + 1).random(n) < 0.5
    else:
        membership[0] = SecureRandom().bernoulli(n, 0.5, step=0)
    return membership


def _signals(lm, encoded, texts, base_stats, batch: int):
    from dpaudit.attacks.lm_signals import LMSignals, zlib_bits
    from dpaudit.trainers.lm_scores import mean_nll, token_stats

    st = token_stats(lm, encoded, batch_size=batch)
    return LMSignals(st["logprob"], st["mu"], st["sigma"], st["weight"], zlib_bits(texts),
                     mean_nll(base_stats)[0]), st


def _attack_names(num_shadows: int) -> list[str]:
    """The LM attacks this audit runs, fixed by the configuration alone (those needing more shadows left out)."""
    from dpaudit.attacks.lm_signals import LM_ATTACKS

    return [n for n in LM_ATTACKS.names() if LM_ATTACKS.get(n).min_references <= num_shadows]


def _attacks(cfg: Config, signals, membership, n_nat: int, delta: float, significance: float):
    from dpaudit.attacks.lm_evaluate import evaluate_lm_attack
    from dpaudit.attacks.lm_signals import LM_ATTACKS, LMSignals

    nat = LMSignals(signals.logprob[:, :n_nat], signals.mu[:, :n_nat], signals.sigma[:, :n_nat],
                    signals.weight[:n_nat], signals.zlib[:n_nat], signals.base_nll[:n_nat])
    return [evaluate_lm_attack(LM_ATTACKS.get(n)(), nat, membership[:, :n_nat], delta=delta,
                               significance=significance, fprs=cfg.audit.fprs or (0.01, 0.1),
                               guess_fraction=cfg.audit.canary_guess_fraction)
            for n in _attack_names(len(membership) - 1)]


def _family(results, canary_sec: dict | None, significance: float):
    """``(results, canary_sec, family)``: every bound tagged as a member of the audit's Bonferroni family (the
    LM attacks + the secret canaries, each at ``significance / size``; no natural-example canary), as
    :func:`dpaudit.pipeline.attack.run_attacks` tags the classifier audit's, and the family's bound."""
    from dpaudit.privacy import bonferroni_family, with_family

    members = [(r.name, r.epsilon_lb) for r in results] + ([("canaries", canary_sec["epsilon_lb"])]
                                                             if canary_sec is not None else [])
    family = bonferroni_family(members, significance=significance)
    tag = dict(family_size=family["size"], family_significance=significance)
    results = [dataclasses.replace(r, epsilon_lb=with_family(r.epsilon_lb, **tag)) for r in results]
    if canary_sec is not None:
        canary_sec = {**canary_sec, "epsilon_lb": with_family(canary_sec["epsilon_lb"], **tag)}
    return results, canary_sec, family


def _total_nll(stats: dict, model: int = 0) -> np.ndarray:
    return -(stats["logprob"][model] * stats["weight"]).sum(-1)


def _canaries(cfg: Config, canaries, lm, tokenizer, stats, base_stats, membership, n_nat: int, significance: float):
    """``(canaries section, exposure section)`` for the target (row 0)."""
    from dpaudit.lm_training import encode_lm
    from dpaudit.trainers.lm_scores import token_stats

    cols = np.arange(n_nat, n_nat + len(canaries))
    cand = encode_lm(SimpleNamespace(texts=canaries.candidates, pairs=None), tokenizer, cfg)
    cand_nll = _total_nll(token_stats(lm, cand, models=[0], batch_size=cfg.audit.score_batch_size))
    return canary_results(_total_nll(stats)[cols], _total_nll(base_stats)[cols], cand_nll, membership[0, cols],
                          space_bits=canaries.space_bits, delta=cfg.audit.canary_delta, significance=significance,
                          guess_fraction=cfg.audit.canary_guess_fraction)


def canary_results(target_nll: np.ndarray, base_nll: np.ndarray, candidate_nll: np.ndarray, included: np.ndarray, *,
                   space_bits: float, delta: float, significance: float, guess_fraction: float) -> tuple[dict, dict]:
    """``(canaries section, exposure section)`` from total NLLs (nats): the target's and the base model's on the
    m canaries, the target's on the candidates; ``included`` (m,) the target's coins. Score ``NLL_base − NLL_target``."""
    section = canary_section(base_nll - target_nll, included, kind="lm_secret", delta=delta,
                             significance=significance, guess_fraction=guess_fraction, score_rule="ref_ratio")
    exp = exposure(target_nll, candidate_nll, space_bits)
    return section, exposure_section(exp, included, space_bits=space_bits, n_candidates=len(candidate_nll))


def _utility(stats, membership, n_nat: int):
    from dpaudit.report_schema import UtilitySection
    from dpaudit.trainers.lm_scores import mean_nll

    nll = mean_nll(stats)[:, :n_nat]
    out = ~membership[:, :n_nat]
    per_model = [float(math.exp(nll[k][out[k]].mean())) for k in range(len(membership))]
    return UtilitySection(metric="perplexity", value=per_model[0], n_eval=int(out[0].sum()),
                          per_model=tuple(per_model))


def _open(cfg: Config, rundir: RunDir, model_sha256: str):
    """``(ds, canaries, texts, pairs, membership)`` of this run: bound to the run directory (the config's inputs,
    the corpus and the backbone), the committed membership and secrets reused when it holds them (a resumed
    run: the same coins and secrets, never new ones over the old), else drawn and committed (0600)."""
    import json

    from dpaudit._validation import check_mask
    from dpaudit.errors import ConfigError
    from dpaudit.lm_canaries import read_canaries_record

    saved = rundir.verified(CANARIES_FILE)
    record = None if saved is None else read_canaries_record(json.loads(saved.read_text(encoding="utf-8")))
    ds, canaries, texts, pairs = _population(cfg, None if record is None else record[0])
    rundir.bind({"config": config_inputs(cfg.to_dict()), "dataset_sha256": ds.sha256, "n_examples": len(ds),
                 "model_sha256": model_sha256, "task": "causal_lm"})
    if record is not None and (canaries is None or record[1] != len(ds) or len(record[0]) != cfg.audit.canaries):
        raise ConfigError(f"{CANARIES_FILE} in run directory '{rundir.path}' is not this audit's; use a new --run-dir.")
    path = rundir.verified("membership.npy")
    if path is not None:
        membership = check_mask(f"membership.npy in run directory '{rundir.path}'", np.load(path, allow_pickle=False),
                                (cfg.audit.num_shadows + 1, len(texts)), hint="use a new --run-dir for another audit")
        if canaries is not None and record is None:
            raise ConfigError(f"run directory '{rundir.path}' has membership.npy but not {CANARIES_FILE}; use a new "
                              f"--run-dir.")
        return ds, canaries, texts, pairs, membership
    membership = _membership(cfg, len(texts))
    if canaries is not None:  # secret (0600), beside the coins: exposure and the bound can be recomputed
        rundir.write_json(CANARIES_FILE, canaries_record(canaries, len(ds)))
    rundir.write("membership.npy", _npy(membership))
    return ds, canaries, texts, pairs, membership


def run_lm_audit(cfg: Config, run_dir: str | Path, *, progress: bool = True, force_run_dir: bool = False):
    """Run the audit of the module docstring into ``run_dir``; an :class:`~dpaudit.pipeline.run.AuditOutcome`."""
    from dpaudit.models import resolve_model_dir

    from dpaudit.attacks.canary import guess_counts

    from dpaudit.lm_training import check_single_process, lm_path

    check_single_process()
    resolve_model_dir(lm_path(cfg), max_length=cfg.data.max_length)
    if cfg.audit.canaries:  # refused before anything trains
        guess_counts(cfg.audit.canaries, cfg.audit.canary_guess_fraction)
    rundir = RunDir.claim(run_dir, command="audit", force=force_run_dir)
    t0 = time.perf_counter()
    from dpaudit.lm_training import build_lm, encode_lm
    from dpaudit.trainers.lm_scores import generate, token_stats
    from dpaudit.trainers.recipe import resolve_device, resolve_privacy

    device = resolve_device(cfg.train.device)
    lm, tokenizer, info = build_lm(cfg, num_models=cfg.audit.num_shadows + 1, device=device)
    ds, canaries, texts, pairs, membership = _open(cfg, rundir, info.sha256)
    encoded = encode_lm(SimpleNamespace(texts=texts, pairs=pairs), tokenizer, cfg)
    settings, plan = resolve_privacy(cfg, [int(r.sum()) for r in membership])
    batch = cfg.audit.score_batch_size
    base_stats = token_stats(lm, encoded, models=[0], batch_size=batch)
    before = generate(lm, tokenizer, PROMPTS, model=0)
    outcome = _train(cfg, lm, encoded, membership, settings, plan, rundir, progress)
    times = {"train": outcome.wall_time_s}
    t = time.perf_counter()
    signals, stats = _signals(lm, encoded, texts, base_stats, batch)
    n_nat = len(ds)
    # Bonferroni family fixed from the config before any result: every LM attack + the secret canaries.
    n_bounds = len(_attack_names(len(membership) - 1)) + (canaries is not None)
    share = source_significance(cfg.audit.significance, n_bounds)
    results = _attacks(cfg, signals, membership, n_nat, plan.delta, share)
    canary_sec = exposure_sec = None
    if canaries is not None:
        canary_sec, exposure_sec = _canaries(cfg, canaries, lm, tokenizer, stats, base_stats, membership, n_nat, share)
    results, canary_sec, family = _family(results, canary_sec, cfg.audit.significance)
    after = generate(lm, tokenizer, PROMPTS, model=0)
    times.update(attack=time.perf_counter() - t, total=time.perf_counter() - t0)
    extra = {"exposure": exposure_sec, "generations": {"prompts": list(PROMPTS), "before": before, "after": after}}
    return _report(cfg, rundir, ds, info, lm, plan, settings, outcome, stats, membership, n_nat, results,
                   canary_sec, family, extra, device, times)


def _npy(array: np.ndarray) -> bytes:
    from dpaudit.pipeline.stage import npy_bytes

    return npy_bytes(array)


def _train(cfg, lm, encoded, membership, settings, plan, rundir, progress):
    from dpaudit.trainers.recipe import released_seed, train_bank

    seeds = [released_seed(cfg, cfg.train.seed)] + [cfg.train.seed + 1000 + k for k in range(1, len(membership))]
    return train_bank(lm, encoded, np.zeros(membership.shape[1], dtype=np.int64), membership, settings, plan,
                      seeds=seeds, run=rundir, meta={"task": "causal_lm"}, progress=progress)


def lm_audit_summary(cfg: Config, report) -> dict:
    """The public ``summary.json`` of an LM audit: :func:`dpaudit.release.audit_summary` with the LM attacks
    the configuration runs. Nothing of the ``causal_lm`` section (exposure, generations), the canaries or any
    attack result: they are functions of the target's secret membership."""
    from dpaudit.release import audit_summary

    summary = audit_summary(cfg, report)
    summary["audit"]["attacks"] = _attack_names(cfg.audit.num_shadows)
    return summary


def _report(cfg, rundir, ds, info, lm, plan, settings, outcome, stats, membership, n_nat, results, canary_sec,
            family, extra, device, times):
    from dpaudit.pipeline.claim import plan_claim
    from dpaudit.pipeline.report import assemble, privacy_section, run_info
    from dpaudit.pipeline.run import AuditOutcome
    from dpaudit.pipeline.target import OBTAINED
    from dpaudit.release import SUMMARY
    from dpaudit.report_io import dump_report

    claim = plan_claim(plan, outcome.steps, outcome.epsilon_history, "accountant",
                       None if plan.non_private else cfg.train.noise)
    pop = SimpleNamespace(ds=ds, info=info, n_total=sum(p.numel() for p in lm.backbone.parameters()))
    facts = {"n_trainable": lm.bank.num_trainable()}
    seeds = [None] + [cfg.train.seed + 1000 + k for k in range(1, len(membership))]
    target = {"kind": "train", "source": None, "sha256": None, "obtained": OBTAINED["train"],
              "shadow_recipe": "bitfit", "recipe_differs": False, "warning": None}
    run = run_info(cfg, rundir.path, pop, target, facts, seeds, device, times)
    report = assemble(run, privacy_section(claim, settings.clipping), _utility(stats, membership, n_nat), results,
                      None, family, None, canary_sec, num_shadows=len(membership) - 1)
    section = {"attacks": [r.name for r in results], **extra, "loss": "mean next-token NLL per text (nats)"}
    report = dataclasses.replace(report, causal_lm=section)
    dump_report(report, rundir.file("audit.json"))  # confidential (0600), generations included
    rundir.write_json(SUMMARY, lm_audit_summary(cfg, report))
    return AuditOutcome(run_dir=rundir.path, report=report)
