"""Wall time of a K-shadow ``dpaudit audit`` on 1 process vs ``torchrun --nproc-per-node 2`` (issue 11).

Runs the same seeded audit (embedded model and data unless ``--model``/``--data`` are given) as one process
and as two gloo ranks, 1 torch thread per process, back to back (interleaved over ``--rounds``), each into a
fresh run directory; records the process wall time, the audit's own ``run.times`` (``audit.json``), the load
average before each run, and checks that both audits computed the same signals.

    PYTHONPATH=. python benchmarks/fleet_wall.py --shadows 16 --max-examples 200 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _audit_args(a: argparse.Namespace, run_dir: Path) -> list[str]:
    extra = (["--model", a.model] if a.model else []) + (["--data", a.data] if a.data else [])
    return ["audit", *extra, "--shadows", str(a.shadows), "--max-examples", str(a.max_examples), "--epochs",
            str(a.epochs), "--batch-size", str(a.batch_size), "--set", f"data.max_length={a.max_length}",
            "--set", "privacy.noise_multiplier=1.0", "--set", "audit.fprs=[0.1]",
            *(["--attacks", "loss"] if a.shadows < 4 else []), "--seeded-noise", "--seed", "1",
            "--device", "cpu", "--quiet", "--format", "none", "--run-dir", str(run_dir)]


def _run(procs: int, a: argparse.Namespace, run_dir: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if procs == 1:
        cmd = [sys.executable, "-m", "dpaudit", *_audit_args(a, run_dir)]
    else:
        torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
        cmd = [torchrun, "--nproc-per-node", str(procs), "--master-port", "29517", "-m", "dpaudit",
               *_audit_args(a, run_dir)]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    if out.returncode:
        raise SystemExit(f"{procs} process(es) failed:\n{out.stderr[-3000:]}")
    times = json.loads((run_dir / "audit.json").read_text())["run"].get("wall_time_s", {})
    return {"processes": procs, "wall_s": wall, "times": times, "load_before": load}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shadows", type=int, default=16)
    p.add_argument("--max-examples", type=int, default=200)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--model")
    p.add_argument("--data")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fleet_wall.json"))
    p.add_argument("--smoke", action="store_true", help="2 shadows, 40 examples, seq 8, one round: checks the "
                   "script (1 process vs torchrun × 2); writes no file")
    a = p.parse_args()
    if a.smoke:
        a.shadows, a.max_examples, a.batch_size, a.max_length, a.rounds, a.out = 2, 40, 8, 8, 1, None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for procs in (1, 2):
                run_dir = Path(tmp) / f"r{r}p{procs}"
                rows.append(_run(procs, a, run_dir))
                print(json.dumps(rows[-1]), flush=True)
            one, two = (np.load(Path(tmp) / f"r{r}p{k}" / "signals.npz")["logits"] for k in (1, 2))
            rows[-1]["max_signal_difference"] = float(np.abs(one - two).max())
    result = {"args": vars(a), "runs": rows}
    if a.out is not None:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1))
    for procs in (1, 2):
        walls = [x["wall_s"] for x in rows if x["processes"] == procs]
        print(f"{procs} process(es): wall {np.mean(walls):.1f} s")


if __name__ == "__main__":
    main()
