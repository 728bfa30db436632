"""Run ``dpaudit audit`` on W local gloo ranks, as torchrun would, with optional test hooks (tests only).

:func:`audit_world` starts ``world`` processes (``torch.multiprocessing.spawn``); each sets the torchrun
variables and calls :func:`dpaudit.cli.main.main` with ``argv``. Hooks, applied inside the ranks:

* ``record``: every rank writes ``rank{r}.json`` into ``out_dir`` with the step its share resumed from and
  the steps it ended at (what :class:`trainers.loop.Trainer` did).
* ``("die_after_commit", r)``: rank ``r`` exits (``os._exit``) right after its first committed checkpoint.
* ``("die_before_gather", r)``: rank ``r`` exits after training its share, before sending it to rank 0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from tests.trainers._distributed import free_port


def _hooks(rank: int, out_dir: Path, hooks: tuple) -> None:
    from dpaudit.pipeline import fleet
    from dpaudit.trainers.loop import Trainer

    if "record" in hooks:
        run = Trainer.run

        def recorded(self, *args, **kwargs):
            outcome = run(self, *args, **kwargs)
            (out_dir / f"rank{rank}.json").write_text(json.dumps(
                {"resumed_from_step": outcome.resumed_from_step, "steps": outcome.steps}))
            return outcome

        Trainer.run = recorded
    for hook in hooks:
        if hook == ("die_after_commit", rank):
            write = fleet.ShardRun.write

            def dying(self, name, data, **provenance):
                path = write(self, name, data, **provenance)
                os._exit(7)
                return path

            fleet.ShardRun.write = dying
        if hook == ("die_before_gather", rank):
            fleet.pack = lambda files: os._exit(7)


def _entry(rank: int, world: int, port: int, argv: list[str], out_dir: str, hooks: tuple) -> None:
    torch.set_num_threads(1)
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    _hooks(rank, Path(out_dir), hooks)
    from dpaudit.cli.main import main

    code = main(argv)
    if code:
        raise SystemExit(code)


def audit_world(argv: list[str], out_dir: Path, *, world: int = 2, hooks: tuple = ()) -> None:
    """``dpaudit <argv>`` on ``world`` ranks; raises ``torch.multiprocessing.ProcessExitedException`` if any
    rank fails (a rank's error exits 2 through ``SystemExit``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.multiprocessing.spawn(_entry, args=(world, free_port(), argv, str(out_dir), hooks), nprocs=world)
