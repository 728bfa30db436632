"""Run ``dpaudit`` in-process for the report/gate/env CLI tests.

Uses :func:`dpaudit.cli.main.main` whenever every subcommand module imports. While a sibling
subcommand (``train``, ``audit``) is still missing, it falls back to a parser with only the module
under test and the same error handling as ``main``, so these tests do not depend on other stages.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dpaudit.errors import DpauditError


def run_cli(argv: list[str]) -> int:
    """Exit code of ``dpaudit *argv`` (argparse usage errors raise ``SystemExit(2)``)."""
    try:
        from dpaudit.cli.main import build_parser, main

        build_parser()
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("dpaudit.cli."):
            raise
    else:
        return main(argv)
    parser = argparse.ArgumentParser(prog="dpaudit")
    subparsers = parser.add_subparsers(dest="command")
    importlib.import_module(f"dpaudit.cli.{argv[0]}").add_parser(subparsers)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except DpauditError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
