"""Jobs of the web UI: one folder each under the runs folder, run one at a time by a worker process.

A job folder ``RUNS/<id>/`` holds ``ui-job.json`` (the state: the ``dpaudit audit`` arguments, status, pid,
times), ``ui.log`` (the command's stdout and stderr), ``upload/`` (the uploaded data) and ``run/`` (the
audit's run directory). Nothing lives only in memory: the list of runs is the folder. A job runs as a child
process ``python -m dpaudit audit ARGS --run-dir RUNS/<id>/run`` (killed with the server, Linux
``PR_SET_PDEATHSIG``), so a crash or a kill of the job never takes the server down, and every finished
stage is already committed in ``run/`` (:mod:`dpaudit.rundir`). Resuming reruns the same command in the
same run directory, which is how the CLI resumes. Statuses: ``queued``, ``running``, ``done``, ``failed``,
``cancelled``, ``interrupted`` (the server stopped while it ran); the last three can be resumed.

Other run directories in the runs folder (made by ``dpaudit audit`` or ``dpaudit train --run-dir RUNS/NAME``)
are listed too, read-only (status ``done`` with an ``audit.json`` / ``metrics.json``, else ``incomplete``); a
finished train run can be exported from its page.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from dpaudit.fileio import write_json_atomic
from dpaudit.rundir import MARKER
from dpaudit.ui.security import RUN_NAME

logger = logging.getLogger(__name__)
STATE, LOG, UPLOADS, RUN = "ui-job.json", "ui.log", "upload", "run"
RESUMABLE = frozenset({"failed", "cancelled", "interrupted"})
ACTIVE = frozenset({"queued", "running"})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Job:
    """One entry of the runs folder: a UI job (``state`` from ``ui-job.json``) or a CLI audit run."""

    def __init__(self, folder: Path, state: dict) -> None:
        self.folder, self.state = folder, state

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def is_ui(self) -> bool:
        return bool(self.state.get("argv") is not None)

    @property
    def run_dir(self) -> Path:
        return self.folder / RUN if self.is_ui else self.folder

    @property
    def log(self) -> Path:
        return self.folder / LOG

    @property
    def status(self) -> str:
        return str(self.state.get("status", "incomplete"))

    @property
    def exportable(self) -> bool:
        """A finished ``dpaudit train`` run (``dpaudit export`` takes a single model with its metrics)."""
        return (self.run_dir / "metrics.json").is_file() and (self.run_dir / "models.safetensors").is_file()

    @property
    def has_report(self) -> bool:
        return (self.run_dir / "audit.json").is_file()

    def save(self) -> None:
        write_json_atomic(self.folder / STATE, self.state)


class JobStore:
    """The runs folder as a list of jobs (read from disk on every call)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def new(self, argv: list[str], *, label: str, data_name: str | None) -> Job:
        job_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
        folder = self.root / job_id
        folder.mkdir(mode=0o700)
        (folder / UPLOADS).mkdir(mode=0o700)
        job = Job(folder, {"argv": argv, "label": label, "data_name": data_name, "status": "new",
                           "created": _now(), "history": []})
        job.save()
        return job

    def get(self, job_id: str) -> Job | None:
        """The job ``job_id`` (a plain folder name inside the root, no link), or ``None``."""
        if not RUN_NAME.match(job_id):
            return None
        folder = self.root / job_id
        if folder.is_symlink() or not folder.is_dir() or not folder.resolve().is_relative_to(self.root.resolve()):
            return None
        state_file = folder / STATE
        if state_file.is_file() and not state_file.is_symlink():
            try:
                return Job(folder, json.loads(state_file.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                return None
        marker = folder / MARKER
        command = _marker_command(marker) if marker.is_file() else None
        if command in ("audit", "train"):
            done = (folder / ("audit.json" if command == "audit" else "metrics.json")).is_file()
            return Job(folder, {"status": "done" if done else "incomplete", "label": job_id, "command": command,
                                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(marker.stat().st_mtime))})
        return None

    def all(self) -> list[Job]:
        jobs = [self.get(p.name) for p in self.root.iterdir() if p.is_dir()]
        return sorted((j for j in jobs if j is not None), key=lambda j: str(j.state.get("created")), reverse=True)

    def set(self, job: Job, status: str, **fields) -> None:
        job.state.update(status=status, **fields)
        job.state.setdefault("history", []).append([_now(), status])
        job.save()

    def recover(self) -> list[Job]:
        """At start-up: a job left ``running`` by a server that stopped is ``interrupted`` (its process, if
        still alive, is ended first); returns those jobs."""
        out = []
        for job in self.all():
            if job.is_ui and job.status == "running":
                _end(job.state.get("pid"), job.run_dir)
                self.set(job, "interrupted", pid=None)
                out.append(job)
        return out


def _marker_command(marker: Path) -> str | None:
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError):
        return None


def _end(pid, run_dir: Path) -> None:
    """SIGTERM ``pid`` if it is still the audit of ``run_dir`` (its command line names it)."""
    if not isinstance(pid, int):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return
    if str(run_dir) in cmdline:
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Worker:
    """One thread that runs the queued jobs one after another, each in a child process."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.wake = threading.Event()
        self.stopping = False
        self.current: tuple[Job, subprocess.Popen] | None = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="dpaudit-ui-worker", daemon=True)

    def start(self) -> None:
        self.store.recover()
        self.thread.start()

    def submit(self, job: Job) -> None:
        self.store.set(job, "queued", pid=None)
        self.wake.set()

    def cancel(self, job: Job) -> bool:
        """Stop ``job`` (queued or running): ``cancelled``, resumable. ``False`` if it was not active."""
        with self.lock:
            fresh = self.store.get(job.id)
            if fresh is None or fresh.status not in ACTIVE:
                return False
            self.store.set(fresh, "cancelled", pid=None)
            running = self.current
        if running is not None and running[0].id == job.id:
            _signal(running[1], signal.SIGTERM)
        return True

    def stop(self) -> None:
        """Server shutdown: the running job is ended and recorded ``interrupted``."""
        self.stopping = True
        self.wake.set()
        running = self.current
        if running is not None:
            _signal(running[1], signal.SIGTERM)
            try:
                running[1].wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal(running[1], signal.SIGKILL)
            self.store.set(running[0], "interrupted", pid=None)

    def _next(self) -> Job | None:
        queued = [j for j in self.store.all() if j.is_ui and j.status == "queued"]
        return min(queued, key=lambda j: str(j.state.get("created"))) if queued else None

    def _loop(self) -> None:
        while not self.stopping:
            job = self._next()
            if job is None:
                self.wake.wait(timeout=2.0)
                self.wake.clear()
                continue
            try:
                self._run(job)
            except Exception as err:  # noqa: BLE001 - a job that cannot start fails alone; the queue goes on
                logger.error("job %s could not run: %s", job.id, err)
                self.current = None
                self.store.set(job, "failed", pid=None, error=f"could not start: {err}")

    def _run(self, job: Job) -> None:
        argv = [sys.executable, "-m", "dpaudit", "audit", *job.state["argv"], "--run-dir", str(job.run_dir)]
        env = child_env()
        with self.lock:
            if self.stopping or (self.store.get(job.id) or job).status != "queued":
                return
            fd = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "ab") as log:
                log.write(f"$ dpaudit audit {' '.join(job.state['argv'])}   [{_now()}]\n".encode())
                log.flush()
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=job.folder, env=env, start_new_session=True,
                                        preexec_fn=_die_with_parent)
            self.current = (job, proc)
            self.store.set(job, "running", pid=proc.pid, started=_now())
        code = proc.wait()
        with self.lock:
            self.current = None
            fresh = self.store.get(job.id)
            if fresh is not None and fresh.status == "running" and not self.stopping:
                self.store.set(fresh, "done" if code == 0 else "failed", pid=None, exit_code=code, ended=_now())


def child_env() -> dict[str, str]:
    """The environment of a ``python -m dpaudit`` child: this dpaudit first on ``PYTHONPATH``, unbuffered."""
    here = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])]),
            "PYTHONUNBUFFERED": "1"}


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except OSError:
        pass
