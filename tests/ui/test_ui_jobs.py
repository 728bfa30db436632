"""The job queue without a server or a training run (cheap; the default suite's cover for
tests/ui/test_ui_restart.py, which is `slow`): a job left ``running`` by a server that died is ``interrupted``
and resumable after a restart, and a job whose process fails fails alone while the queue goes on."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.ui._server import needs_ui

needs_ui()

from dpaudit.ui.app import job_view  # noqa: E402
from dpaudit.ui.jobs import JobStore, Worker  # noqa: E402


def test_a_job_left_running_is_interrupted_and_resumable_after_a_restart(tmp_path):
    store = JobStore(tmp_path / "runs")
    job = store.new(["--data", "embedded"], label="left running", data_name=None)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.set(job, "running", pid=dead.pid)
    done = store.new(["--data", "embedded"], label="finished", data_name=None)
    store.set(done, "done")
    assert [j.id for j in store.recover()] == [job.id]  # what a starting server does
    view = job_view(store.get(job.id))
    assert view["status"] == "interrupted" and view["resumable"] and store.get(job.id).state["pid"] is None
    assert store.get(done.id).status == "done" and not job_view(store.get(done.id))["resumable"]


def test_a_failing_job_fails_alone_and_the_next_one_still_runs(tmp_path):
    store = JobStore(tmp_path / "runs")
    worker = Worker(store)
    first = store.new(["--no-such-flag"], label="bad", data_name=None)  # the child exits 2 at argparse
    second = store.new(["--no-such-flag-either"], label="next", data_name=None)
    worker.start()
    try:
        worker.submit(first)
        worker.submit(second)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and {store.get(j.id).status for j in (first, second)} != {"failed"}:
            time.sleep(0.2)
        for job in (first, second):
            fresh = store.get(job.id)
            assert fresh.status == "failed" and fresh.state["exit_code"] == 2 and job_view(fresh)["resumable"]
            assert "unrecognized arguments" in fresh.log.read_text()
        assert worker.thread.is_alive()
    finally:
        worker.stop()
