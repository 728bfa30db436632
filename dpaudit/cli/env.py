"""``dpaudit env``: print a copy-paste environment block for bug reports.

Heavy libraries (torch, transformers, opacus) are imported inside :func:`run` only, and a missing
or broken one is reported as such rather than failing the command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys

DESCRIPTION = "Print versions, CUDA availability and CPU/thread counts as a block to paste into bug reports."
_LIBRARIES = ("torch", "transformers", "opacus", "numpy", "scipy", "scikit-learn", "matplotlib",
              "jinja2", "jsonschema")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``env`` on ``subparsers``."""
    parser = subparsers.add_parser("env", help="print the environment for bug reports",
                                   description=DESCRIPTION)
    parser.set_defaults(func=run)
    return parser


def _torch_lines() -> list[str]:
    try:
        torch = importlib.import_module("torch")
    except Exception as err:  # noqa: BLE001 - any import failure is worth reporting, not raising
        return [f"- CUDA available: unknown (torch not importable: {type(err).__name__})"]
    lines = [f"- torch threads: {torch.get_num_threads()}"]
    cuda = torch.cuda.is_available()
    lines.append(f"- CUDA available: {cuda}")
    if cuda:
        lines.append(f"- CUDA version (torch build): {torch.version.cuda}")
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        lines.append(f"- GPUs: {', '.join(names)}")
    return lines


def environment_lines() -> list[str]:
    """The lines of the environment block (Markdown list, one fact per line)."""
    from dpaudit import __version__
    from dpaudit.versions import library_versions

    lines = [f"- dpaudit: {__version__}",
             f"- Python: {platform.python_version()} ({sys.executable})",
             f"- Platform: {platform.platform()}"]
    lines += [f"- {name}: {version}" for name, version in library_versions(_LIBRARIES).items()]
    lines.append(f"- CPU count: {os.cpu_count()}")
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        lines.append(f"- CPUs usable by this process: {len(affinity(0))}")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES"):
        lines.append(f"- {var}: {os.environ.get(var, 'unset')}")
    lines += _torch_lines()
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the block; returns 0."""
    print("Copy-and-paste the text below into your bug report:\n")
    print("\n".join(environment_lines()))
    return 0
