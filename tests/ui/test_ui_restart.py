"""A server killed in the middle of a job: the job's child dies with it, the restarted server lists the job
as interrupted (the runs folder is the history), and resuming reruns the CLI's command in the same run
directory, keeping every stage finished before the kill. A second job waits queued behind the first; a job
whose process is killed fails alone (resumable) while the server keeps serving."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.ui._server import needs_ui

needs_ui()

from tests.ui._server import Client, Server  # noqa: E402
from tests.ui._server import TINY  # noqa: E402

LONGER = {**TINY, "epochs": "30", "batch_size": "4"}  # ~300 steps: still training when the server is killed


def _wait(predicate, timeout: float = 120, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is dead
        return "zombie" not in open(f"/proc/{pid}/status").read().lower()
    except OSError:
        return False


def _start_and_kill(world, form):
    srv = Server(world)
    web = Client(srv).login()
    data = (world / "data.csv").read_bytes()
    code, body, _ = web.post("/new", {**form, "model_path": str(world / "models" / "tiny")},
                             {"data_file": ("data.csv", data)})
    assert code == 200, body[:400]
    job = next(srv.runs.iterdir())
    state = _wait(lambda: (s := json.loads((job / "ui-job.json").read_text()))["status"] == "running" and s,
                  what="the job to run")
    _wait(lambda: (job / "run" / "membership.npy").is_file(), what="the first committed file")
    srv.kill()  # SIGKILL: no shutdown hook runs
    _wait(lambda: not _alive(state["pid"]), timeout=30, what="the job's process to die with the server")
    return job


def _restart(world, job):
    srv = Server(world)
    web = Client(srv).login()
    status = json.loads(web.get(f"/runs/{job.name}/status.json")[1])
    assert status["status"] == "interrupted" and status["resumable"]
    assert job.name in web.get("/")[1].decode()
    assert b"interrupted" in web.get("/")[1]
    return srv, web


@pytest.mark.slow
def test_killed_server_shows_the_job_interrupted_and_resumable(world):
    """Slow (two servers, a 300-step training): the default suite covers the claims with
    tests/ui/test_ui_jobs.py (interrupted and resumable after a restart; a failing job fails alone)."""
    job = _start_and_kill(world, LONGER)
    srv, web = _restart(world, job)
    try:
        assert web.post(f"/runs/{job.name}/resume", {})[0] == 200
        _wait(lambda: json.loads(web.get(f"/runs/{job.name}/status.json")[1])["status"] == "running",
              what="the resumed job to run")
        code, body, _ = web.post("/new", {**LONGER, "label": "second", "model_path": str(world / "models" / "tiny")},
                                 {"data_file": ("data.csv", (world / "data.csv").read_bytes())})
        second = next(p for p in srv.runs.iterdir() if p != job)
        assert json.loads(web.get(f"/runs/{second.name}/status.json")[1])["status"] == "queued"  # one at a time
        assert web.post(f"/runs/{second.name}/cancel", {})[0] == 200
        pid = json.loads((job / "ui-job.json").read_text())["pid"]
        os.kill(pid, 9)  # the job crashes (an out-of-memory kill): it fails alone, resumable; the server stays up
        status = _wait(lambda: (s := json.loads(web.get(f"/runs/{job.name}/status.json")[1]))["status"] == "failed"
                       and s, what="the killed job to be failed")
        assert status["resumable"] and web.get("/")[0] == 200
        assert not (second / "ui.log").exists()  # cancelled while queued: it never started
        assert (job / "ui.log").read_text().count("$ dpaudit audit ") == 2  # the same command, twice
    finally:
        srv.stop()


@pytest.mark.slow
def test_resume_after_a_restart_finishes_keeping_the_finished_stages(world):
    """Slow: a resumed audit run to its report (the run-dir resume itself is covered by tests/cli)."""
    job = _start_and_kill(world, {**TINY, "epochs": "12", "batch_size": "4"})
    before = (job / "run" / "membership.npy").read_bytes()
    srv, web = _restart(world, job)
    try:
        web.post(f"/runs/{job.name}/resume", {})
        _wait(lambda: json.loads(web.get(f"/runs/{job.name}/status.json")[1])["status"] in ("done", "failed"),
              timeout=300, what="the resumed job to finish")
        status = json.loads(web.get(f"/runs/{job.name}/status.json")[1])
        assert status["status"] == "done", status["log"]
        assert (job / "run" / "membership.npy").read_bytes() == before  # committed before the kill, kept
        assert web.get(f"/runs/{job.name}/report")[0] == 200
    finally:
        srv.stop()
