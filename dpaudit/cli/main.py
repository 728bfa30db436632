"""``dpaudit`` entry point: registers the subcommand parsers and dispatches.

Exit codes (the contract every subcommand follows):
    0  success / gate passed
    1  gate failed
    2  usage, config or input error (one line on stderr: ``error: <problem and fix>``)
    3  inconclusive (a metric is missing or unresolvable; never a silent pass)

torch and transformers are imported inside each ``run()`` so ``--help`` stays fast. Under ``torchrun``
(``torchrun --nproc-per-node N -m dpaudit train …``) every rank runs :func:`main` inside
:func:`dpaudit.distributed.session`; only rank 0 writes to stdout, and an error line names its rank.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dpaudit import __version__
from dpaudit.errors import ConfigError, DpauditError

#: Subcommand modules under ``dpaudit.cli``, in the order ``--help`` lists them.
SUBCOMMANDS = ("train", "audit", "canaries", "verify", "report", "gate", "export", "ui", "env", "fetch-assets")


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line, ``error: <problem>; see `<prog> --help```, exit 2 (argparse prints the whole
    usage block first)."""

    def error(self, message: str):
        from dpaudit.sanitize import clean_text

        self.exit(2, f"error: {clean_text(message, max_len=2000)}; see `{self.prog} --help`.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="dpaudit",
        description="Train with DP-BiTFiT, attack with shadow models, report empirical leakage "
        "beside the theoretical epsilon, and gate on it.",
        epilog="Exit codes: 0 ok/pass, 1 gate failed, 2 usage or input error, 3 inconclusive.",
    )
    parser.add_argument("--version", action="version", version=f"dpaudit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"dpaudit.cli.{name.replace('-', '_')}")
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the exit code (never raises DpauditError)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from dpaudit import distributed

    where = ""
    try:
        with distributed.session() as comm:
            where = f"rank {comm.rank} of {comm.world_size}: " if comm.world_size > 1 else ""
            if comm.world_size > 1 and not getattr(args, "distributed", False):
                if not comm.is_main:  # one line for the job, from rank 0
                    raise distributed.PeerFailedError("not a distributed command")
                raise ConfigError(f"`dpaudit {args.command}` runs as one process; start it without torchrun "
                                  f"(under torchrun: train, audit).")
            return int(args.func(args))
    except distributed.PeerFailedError as err:  # the rank that failed printed the reason
        return err.exit_code
    except DpauditError as err:
        from dpaudit.sanitize import clean_text

        print(f"error: {where}{clean_text(str(err), max_len=2000)}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted: finished work is kept in the run directory; rerun the same command to resume.",
              file=sys.stderr)
        return 130


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
