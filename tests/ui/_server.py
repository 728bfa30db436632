"""A `dpaudit ui` server in a child process for the UI tests, and a small HTTP client that keeps cookies."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ui-test-token-0123456789"
#: the new-audit form of a tiny audit: ~20 s on one CPU core.
TINY = {"label": "tiny", "data_source": "upload", "model_source": "path", "privacy": "epsilon", "epsilon": "8",
        "shadows": "2", "epochs": "1", "batch_size": "32", "max_length": "16"}


def needs_ui() -> None:
    """Skip the calling test module, with the reason, when the ui extra is not installed."""
    for module in ("fastapi", "uvicorn", "multipart"):
        pytest.importorskip(module, reason="the ui extra is not installed: pip install 'dpaudit[ui]'",
                            exc_type=ImportError)


class Server:
    """``python -m dpaudit ui --port 0 …`` started in ``tmp``; ``url`` once it listens."""

    def __init__(self, tmp: Path, *extra: str, token: str | None = TOKEN, env: dict | None = None) -> None:
        self.tmp, self.runs = tmp, tmp / "runs"
        argv = [sys.executable, "-m", "dpaudit", "ui", "--port", "0", "--runs-dir", str(self.runs),
                "--allow-root", str(tmp), *extra] + (["--token", token] if token else [])
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
        env.pop("DPAUDIT_UI_TOKEN", None)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=tmp)
        self.lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"dpaudit ui exited: {''.join(self.lines)}")
            self.lines.append(line)
            found = re.search(r"open (http://\S+?)/\?token=(\S+)", line)
            if found:
                self.url, self.token = found.group(1), found.group(2)
                return
        raise RuntimeError("dpaudit ui did not start in 60 s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


class Client:
    """urllib with a cookie jar: ``login()`` then ``get``/``post`` (``post`` sends the CSRF field)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def login(self) -> "Client":
        self.get(f"/?token={self.server.token}")
        return self

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(self.server.url + path, data=data, headers=headers or {})
        try:
            with self.opener.open(req, timeout=60) as resp:
                return resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as err:
            return err.code, err.read(), {k.lower(): v for k, v in err.headers.items()}

    def get(self, path: str, headers: dict | None = None):
        return self.request(path, headers=headers)

    def post(self, path: str, fields: dict, files: dict | None = None, *, csrf: str | None = "auto",
             headers: dict | None = None):
        fields = dict(fields)
        if csrf == "auto":
            csrf = self.cookie("dpaudit_csrf")
        if csrf is not None:
            fields["csrf"] = csrf
        body, ctype = multipart(fields, files or {})
        return self.request(path, data=body, headers={"Content-Type": ctype, **(headers or {})})


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    """``fields`` {name: text}, ``files`` {name: (filename, bytes)} as a multipart/form-data body."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
    for name, (filename, data) in files.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
