"""``dpaudit ui``: a local web application for compliance teams (docs/ui.md).

Upload data (or pick the embedded data), choose the model and the privacy level, watch the audit run, then
read, gate, sign and export the report — in a browser, on the same front door as the CLI. Serves on
127.0.0.1 unless ``--host``; every page needs the access token printed at start-up (``--token`` or
``DPAUDIT_UI_TOKEN`` to choose it). Needs the ``ui`` extra: ``pip install 'dpaudit[ui]'``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path

from dpaudit.errors import ConfigError

DESCRIPTION = "serve the local web application (new audit, live runs, reports, gate, sign-off)"
INSTALL_HINT = "`dpaudit ui` needs the ui extra (fastapi, uvicorn, python-multipart): pip install 'dpaudit[ui]'."


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("ui", help=DESCRIPTION, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--runs-dir", default="runs", help="the runs folder: one folder per audit (default ./runs)")
    parser.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                        help="a folder whose model directories and data files the form may name (repeatable; "
                             "default: the current directory)")
    parser.add_argument("--token", default=None, help="the access token (default: $DPAUDIT_UI_TOKEN, else a new random "
                        "one, printed; an argument shows in `ps`, the variable does not)")
    parser.add_argument("--max-upload-mb", type=float, default=50.0, help="largest data upload in MiB (default 50)")
    parser.add_argument("--policy", action="append", default=[], metavar="TOML",
                        help="a release policy the gate form offers (repeatable; default: the shipped "
                             "policy, `default.toml`, as `dpaudit gate --policy default`)")
    parser.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from(args: argparse.Namespace):
    """The :class:`~dpaudit.ui.app.Settings` of the parsed flags (token chosen or generated)."""
    from dpaudit.ui.app import Settings
    from dpaudit.ui.security import TOKEN_ENV, new_token

    token = args.token or os.environ.get(TOKEN_ENV) or new_token()
    if len(token) < 16:
        raise ConfigError("--token must have at least 16 characters; leave it out for a random one.")
    if not 0 < args.max_upload_mb <= 4096:
        raise ConfigError(f"--max-upload-mb must be in (0, 4096], got {args.max_upload_mb:g}.")
    roots = [Path(r).resolve() for r in (args.allow_root or [os.getcwd()])]
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"--allow-root {root} is not a folder; pass an existing folder.")
    from dpaudit.policies import SHIPPED, policy_file

    policies = [policy_file(p).resolve() for p in args.policy] or [SHIPPED["default"]]
    for policy in policies:
        if not policy.is_file():
            raise ConfigError(f"--policy {policy} is not a file; pass a policy TOML.")
    return Settings(runs_dir=Path(args.runs_dir).resolve(), token=token, roots=roots,
                    max_upload=int(args.max_upload_mb * (1 << 20)), policies=policies)


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    from dpaudit.ui.app import create_app

    settings = settings_from(args)
    sock = _bind(args.host, args.port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    where = "this machine only" if is_loopback(args.host) else "NOT loopback: anyone who reaches it needs the token"
    print(f"dpaudit ui: runs in {settings.runs_dir}; allowed roots {', '.join(map(str, settings.roots))}; {where}")
    print(f"open http://{shown}:{sock.getsockname()[1]}/?token={settings.token}", flush=True)
    server.run(sockets=[sock])
    return 0


def _bind(host: str, port: int):
    """A listening socket on ``host:port`` (0: a free port), or ConfigError naming the fix."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror}); pass another --port or --host.") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
