"""Run a function on W local processes joined by gloo, as torchrun would (tests only).

:func:`run_world` starts ``world`` processes with ``torch.multiprocessing.spawn``; each sets the torchrun
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT on a free localhost port), enters
:func:`dpaudit.distributed.session` and calls ``fn(comm, out_dir, *args)``; ``fn`` saves what the test
compares under ``out_dir`` (one file per rank). Workers live here, at module level, so the spawned
interpreters can import them.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from dpaudit import distributed
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.dp import ClippingConfig, DPAggregator
from dpaudit.trainers.loop import Trainer, TrainSettings
from dpaudit.trainers.randomness import make_sources
from tests.trainers._tiny import tiny_bert, tiny_population

N = 40
SETTINGS = TrainSettings(epochs=3.0, batch_size=10, micro_batch_size=7, lr=0.5, optimizer="sgd",
                         noise_multiplier=1.0, schedule="constant", clipping=ClippingConfig(max_grad_norm=0.1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, world: int, port: int, fn, out_dir: str, args: tuple) -> None:
    torch.set_num_threads(1)
    env = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port)}
    with distributed.session(env) as comm:
        fn(comm, Path(out_dir), *args)


def run_world(fn, out_dir: Path, *args, world: int = 2) -> None:
    """``fn(comm, out_dir, *args)`` on ``world`` gloo ranks; raises if any rank fails."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.multiprocessing.spawn(_entry, args=(world, free_port(), fn, str(out_dir), args), nprocs=world)


def classifier() -> BankedClassifier:
    """The tiny float64 classifier every rank (and the single-process reference) starts from."""
    clf = BankedClassifier.from_backbone(tiny_bert(0, torch.float64), num_models=1, num_labels=2)
    return clf.to(torch.float64)


def train_tables(comm: distributed.Collective, out_dir: Path, seed: int | None) -> None:
    """Train :data:`SETTINGS` on the whole tiny population; save this rank's tables."""
    enc, labels = tiny_population(N)
    clf = classifier()
    Trainer(clf, enc, labels, np.ones((1, N), bool), SETTINGS, seeds=[seed], progress=False, comm=comm).run()
    save_file({k: v.contiguous() for k, v in clf.trainable_state().items()}, str(out_dir / f"rank{comm.rank}.st"))


def noise_only_updates(comm: distributed.Collective, out_dir: Path, steps: int, std: float) -> None:
    """``steps`` finalizes with nothing accumulated (secure noise): each gradient is the total noise alone."""
    clf = classifier()
    agg = DPAggregator(clf, clipping=ClippingConfig(max_grad_norm=1.0), noise_multiplier=std,
                       sources=make_sources([None]), comm=comm)
    draws = []
    for step in range(steps):
        agg.finalize(expected_batch_size=[1.0], step=step)
        draws.append(torch.cat([s.param.grad.reshape(-1) for s in clf.slots]))
    save_file({"noise": torch.stack(draws)}, str(out_dir / f"rank{comm.rank}.st"))


def train_interrupted_then_resumed(comm: distributed.Collective, out_dir: Path, seed: int, stop_at: int) -> None:
    """Train until the budget guard stops at ``stop_at`` (checkpoint by rank 0), then resume in a new
    trainer on every rank and finish; save this rank's tables."""
    from dpaudit.rundir import RunDir

    enc, labels = tiny_population(N)
    run = RunDir.claim(out_dir / "run", command="train") if comm.is_main else None
    meta = {"backbone_sha256": "x"}
    first = Trainer(classifier(), enc, labels, np.ones((1, N), bool), SETTINGS, seeds=[seed], run=run, meta=meta,
                    max_steps=stop_at, progress=False, comm=comm)
    assert first.run().stopped_by_budget
    clf = classifier()
    second = Trainer(clf, enc, labels, np.ones((1, N), bool), SETTINGS, seeds=[seed], run=run, meta=meta,
                     progress=False, comm=comm)
    outcome = second.run()
    assert outcome.resumed_from_step == stop_at, outcome
    save_file({k: v.contiguous() for k, v in clf.trainable_state().items()}, str(out_dir / f"rank{comm.rank}.st"))
