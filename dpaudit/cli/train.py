"""``dpaudit train``: fine-tune one model with DP-BiTFiT and state its (ε, δ).

Writes into the run directory: ``dpaudit-run.json`` (what produced each file), ``config.json`` (the
resolved config), ``split.json`` (train/held-out ids and the key of the training-set commitment; private),
``models.safetensors`` (biases + head + optimizer state + metadata, one atomic checkpoint) and
``metrics.json`` (held-out accuracy, ε, δ, σ, q, steps, clipping, wall time). The split, the Poisson
batches and the noise are secret (OS CSPRNG) unless ``--seeded-noise`` is given. A rerun with the same
run directory and inputs resumes from the last committed epoch; other inputs are refused.

Data-parallel under torchrun (``torchrun --nproc-per-node N -m dpaudit train …``): every rank loads the same
data and model (checked), rank 0 draws the split and owns the run directory, each rank trains on its shard
of every Poisson batch, and rank 0 evaluates and writes ``metrics.json`` (which records ``world_size``).
"""

from __future__ import annotations

import argparse
import math
import time

from dpaudit.cli.common import add_config_flags, overrides_from_args

DESCRIPTION = __doc__.splitlines()[0].split(": ", 1)[1]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help=DESCRIPTION, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.set_defaults(func=run, distributed=True)


def _split(run, cfg, ds):
    """``(train ids, held-out ids, commitment key)``: the committed split of a resumed run, or a new one."""
    import json
    import secrets

    import numpy as np

    from dpaudit.errors import DataError
    from dpaudit.trainers.recipe import permutation

    split_path = run.verified("split.json")
    if split_path is not None:  # a resume trains on exactly the examples of the first run
        split = json.loads(split_path.read_text(encoding="utf-8"))
        train_ids, holdout = np.asarray(split["train"], dtype=np.int64), np.asarray(split["holdout"], dtype=np.int64)
        return train_ids, holdout, split["salt"]
    order = permutation(cfg, len(ds))
    n_hold = int(round(cfg.data.holdout_fraction * len(ds)))
    holdout, train_ids = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    if len(train_ids) < 2 or n_hold < 1:
        raise DataError(f"dataset '{ds.name}' has {len(ds)} examples: too few to split into training and "
                        f"held-out data (holdout_fraction={cfg.data.holdout_fraction}); use more data.")
    salt = secrets.token_hex(32)
    run.write_json("config.json", cfg.to_dict())
    run.write_json("split.json", {"train": train_ids.tolist(), "holdout": holdout.tolist(),
                                  "dataset_sha256": ds.sha256, "n_examples": len(ds), "salt": salt})
    return train_ids, holdout, salt


def _shared_split(comm, run, cfg, ds, info):
    """:func:`_split` on rank 0, after every rank showed it holds the same inputs; the ids go to every rank
    (the commitment key stays on rank 0, which alone writes checkpoints)."""
    from dpaudit.rundir import config_inputs, inputs_digest

    inputs = {"config": config_inputs(cfg.to_dict()), "dataset_sha256": ds.sha256, "n_examples": len(ds),
              "model_sha256": info.sha256}
    comm.agree(inputs_digest(inputs), what="inputs (config, dataset or model)")
    train_ids = holdout = salt = None
    if comm.is_main:
        run.bind(inputs)
        train_ids, holdout, salt = _split(run, cfg, ds)
    return comm.broadcast_array(train_ids), comm.broadcast_array(holdout), salt


def _meta(cfg, ds, info, salt: str | None, train_ids) -> dict:
    """The checkpoint metadata of a trained model (``salt``: None on ranks other than 0, which write nothing).

    Public once the model is released: the data are named by a keyed hash and a keyed commitment only, never
    by an unkeyed content hash (docs/design.md, "Release boundary"); the sizes are public under replace-one.
    """
    from dpaudit.rundir import keyed_dataset_hash, members_commitment

    keyed = None if salt is None else keyed_dataset_hash(salt, ds.sha256)
    commitment = None if salt is None else members_commitment(salt, train_ids)
    return {"backbone_sha256": info.sha256, "backbone_source": info.name, "model_name": info.name,
            "label_names": list(ds.label_names), "max_length": cfg.data.max_length,
            "exclude_modules": list(cfg.model.exclude_modules), "add_biases": cfg.model.add_biases,
            "pooling": cfg.model.pooling,
            "dataset_hmac_sha256": keyed, "dataset_size": len(ds), "members_commitment": commitment,
            "n_train": int(len(train_ids)), "neighbouring": cfg.privacy.neighbouring}


def _print_plan(model: str, n_trainable: int, n_total: int, data: str, sizes: tuple[int, int], settings, plan, *,
                seeded: bool) -> None:
    sigma_txt = "none (non-private)" if plan.non_private else f"{plan.noise_multiplier:.4f}"
    print(f"model {model}: {n_trainable:,} trainable of {n_total:,} parameters; data {data}: "
          f"{sizes[0]:,} train / {sizes[1]:,} held out")
    print(f"DP-BiTFiT: q={plan.sample_rate:.4g}, steps={plan.steps}, σ={sigma_txt}, δ={plan.delta:.3g}, "
          f"C={settings.clipping.max_grad_norm} ({settings.clipping.mode}, {settings.clipping.style})")
    if seeded and not plan.non_private:
        print("seeded noise: reproducible from the seed — NOT a private release (tests and benchmarks only)")


def run(args: argparse.Namespace) -> int:
    from dpaudit.cli.common import check_inputs
    from dpaudit.config import load_config
    from dpaudit.distributed import current
    from dpaudit.rundir import removed_if_unfinished

    cfg, notes = load_config(args.config, overrides_from_args(args))
    for note in notes:
        print(note)
    run_path = args.run_dir or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}"
    check_inputs(cfg, run_path, command="train", force_run_dir=args.force_run_dir)  # before torch is imported
    comm = current()
    with removed_if_unfinished(run_path, owner=comm.is_main):
        return _train(args, cfg, run_path, comm)


def _train(args: argparse.Namespace, cfg, run_path: str, comm) -> int:
    import numpy as np

    from dpaudit.data import class_summary, load_configured_dataset
    from dpaudit.models import load_backbone
    from dpaudit.rundir import RunDir

    noise = cfg.train.noise  # "secure" or "seeded", checked when the config was loaded
    run = RunDir.claim(run_path, command="train", force=args.force_run_dir) if comm.is_main else None
    started = time.perf_counter()
    ds = load_configured_dataset(cfg)
    print(class_summary(ds, cfg.data.label_column))
    backbone, tokenizer, info = load_backbone(cfg.model.path)
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.recipe import (build_classifier, few_steps_warning, released_seed, resolve_device,
                                         resolve_privacy, train_bank)

    train_ids, holdout, salt = _shared_split(comm, run, cfg, ds, info)
    settings, plan = resolve_privacy(cfg, [len(train_ids)])
    device = resolve_device(cfg.train.device)
    clf = build_classifier(backbone, cfg, num_models=1, num_labels=ds.num_classes, device=device)
    encoded = EncodedTexts.from_dataset(ds, tokenizer, max_length=cfg.data.max_length)
    _print_plan(info.name, clf.bank.num_trainable(), sum(p.numel() for p in backbone.parameters()), ds.name,
                (len(train_ids), len(holdout)), settings, plan, seeded=noise == "seeded")
    warning = few_steps_warning(plan, settings)
    if warning:
        print(warning)
    meta = _meta(cfg, ds, info, salt if comm.is_main else None, train_ids)
    membership = np.zeros((1, len(ds)), dtype=bool)
    membership[0, train_ids] = True
    outcome = train_bank(clf, encoded, ds.labels, membership, settings, plan,
                         seeds=[released_seed(cfg, cfg.train.seed)], run=run, meta=meta, progress=not args.quiet,
                         comm=comm)
    if not comm.is_main:
        return 0
    metrics = _evaluate(clf, encoded, ds, holdout, cfg=cfg, plan=plan, settings=settings, outcome=outcome,
                        info=info, noise=noise, started=started, world_size=comm.world_size, n_train=len(train_ids))
    run.write_json("metrics.json", metrics)
    _write_summary(run, cfg, plan, outcome, info, n=len(ds), n_train=len(train_ids), epsilon=metrics["epsilon"])
    _print_result(outcome, plan, metrics["heldout_accuracy"], metrics["majority_baseline"],
                  plan.epsilon(outcome.steps), run.path)
    return 0


def _write_summary(run, cfg, plan, outcome, info, *, n: int, n_train: int, epsilon: float | None) -> None:
    """``summary.json``, the run's one public file (dpaudit.release): the released model's hash and claim."""
    from dpaudit.release import SUMMARY, train_summary
    from dpaudit.trainers.checkpoint import MODELS_FILE

    run.write_json(SUMMARY, train_summary(cfg=cfg, plan=plan, outcome=outcome, info=info,
                                          models_sha256=run.entry(MODELS_FILE).get("sha256"), dataset_size=n,
                                          n_train=n_train, epsilon=epsilon))


def _evaluate(clf, encoded, ds, holdout, *, cfg, plan, settings, outcome, info, noise: str, started: float,
              world_size: int, n_train: int) -> dict:
    """``metrics.json``: held-out accuracy beside the majority-class baseline, the accounting, provenance."""
    from dpaudit.protection import majority_baseline
    from dpaudit.release import PRIVATE_LABEL
    from dpaudit.trainers.predict import predict_logits

    logits = predict_logits(clf, encoded, examples=holdout, batch_size=cfg.audit.score_batch_size)[0]
    epsilon = plan.epsilon(outcome.steps)
    return {
        "release": PRIVATE_LABEL,
        "privacy": {"neighbouring": cfg.privacy.neighbouring, "accountant": plan.accountant},
        "heldout_accuracy": float((logits.argmax(1) == ds.labels[holdout]).mean()),
        "majority_baseline": majority_baseline(ds.labels[holdout]),
        "n_train": int(n_train), "n_heldout": int(len(holdout)),
        "epsilon": None if math.isinf(epsilon) else epsilon, "non_private": plan.non_private,
        "delta": plan.delta, "noise_multiplier": plan.noise_multiplier, "sample_rate": plan.sample_rate,
        "steps": outcome.steps, "planned_steps": outcome.planned_steps,
        "stopped_by_budget": outcome.stopped_by_budget, "accountant": plan.accountant,
        "clipping": settings.clipping.to_dict(), "clip_fraction": outcome.clip_fraction,
        "epsilon_history": outcome.epsilon_history, "wall_time_s": time.perf_counter() - started,
        "train_time_s": outcome.wall_time_s, "model": info.name, "backbone_sha256": info.sha256,
        "dataset": ds.name, "dataset_sha256": ds.sha256, "noise": None if plan.non_private else noise,
        **({"world_size": world_size} if world_size > 1 else {}),
    }


def _print_result(outcome, plan, accuracy: float, baseline: float, epsilon: float, run_path) -> None:
    eps_txt = "ε = ∞ (non-private: no clipping, no noise)" if plan.non_private else f"ε = {epsilon:.3f}"
    if outcome.stopped_by_budget:
        print(f"budget guard: stopped after {outcome.steps} of {outcome.planned_steps} steps; the next step would "
              f"exceed ε = {plan.target_epsilon}.")
    print(f"held-out accuracy {accuracy:.4f} (majority-class baseline {baseline:.4f}); {eps_txt} at δ = {plan.delta:.3g} ({plan.accountant}); "
          f"run directory {run_path}")
