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
import time

from dpaudit.cli.common import add_config_flags, overrides_from_args

DESCRIPTION = __doc__.splitlines()[0].split(": ", 1)[1]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help=DESCRIPTION, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.set_defaults(func=run, distributed=True)


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
    from dpaudit.lm_training import train_lm_run
    from dpaudit.training import train_run

    cfg, notes = load_config(args.config, overrides_from_args(args))
    for note in notes:
        print(note)
    run_path = args.run_dir or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}"
    check_inputs(cfg, run_path, command="train", force_run_dir=args.force_run_dir)  # before torch is imported
    with removed_if_unfinished(run_path, owner=current().is_main):
        trainer = train_lm_run if cfg.model.task == "causal_lm" else train_run
        done = trainer(cfg, run_path, progress=not args.quiet, force_run_dir=args.force_run_dir,
                       on_plan=_print_plan, say=print)
    if done is None:  # a rank other than 0 under torchrun
        return 0
    if cfg.model.task == "causal_lm":
        m = done.metrics
        print(f"held-out perplexity {m['heldout_perplexity']:.2f} (before fine-tuning "
              f"{m['heldout_perplexity_before']:.2f}); "
              + ("ε = ∞ (non-private)" if done.plan.non_private else f"ε = {m['epsilon']:.3f}")
              + f" at δ = {done.plan.delta:.3g}; run directory {done.run.path}")
        return 0
    _print_result(done.outcome, done.plan, done.metrics["heldout_accuracy"], done.metrics["majority_baseline"],
                  done.plan.epsilon(done.outcome.steps), done.run.path)
    return 0


def _print_result(outcome, plan, accuracy: float, baseline: float, epsilon: float, run_path) -> None:
    eps_txt = "ε = ∞ (non-private: no clipping, no noise)" if plan.non_private else f"ε = {epsilon:.3f}"
    if outcome.stopped_by_budget:
        print(f"budget guard: stopped after {outcome.steps} of {outcome.planned_steps} steps; the next step would "
              f"exceed ε = {plan.target_epsilon}.")
    print(f"held-out accuracy {accuracy:.4f} (majority-class baseline {baseline:.4f}); {eps_txt} at δ = {plan.delta:.3g} ({plan.accountant}); "
          f"run directory {run_path}")
