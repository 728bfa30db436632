"""The report of a finished run: shown inline, downloaded, gated, signed off, exported.

* ``/runs/<id>/report``: the HTML report in a sandboxed frame (served from ``/runs/<id>/view`` with a CSP
  that allows no script and no network), the downloads, the gate and sign-off forms.
* Downloads respect the release boundary (docs/design.md): ``audit.json`` and the reports are confidential
  and are served only to the token holder (``Cache-Control: no-store``); ``summary.json`` is public.
* Gate: :func:`dpaudit.gating.gate` with a shipped or an uploaded policy (``--write-verdict`` on request).
* Sign-off: the CLI's :func:`~dpaudit.reports.signoff.parse_sign_off` / ``merge_sign_off`` into ``audit.json``,
  then the reports beside it are re-rendered (:func:`dpaudit.cli.report.render_existing`).
* Export: ``dpaudit export`` in a child process into a temporary folder, sent as a zip.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from dpaudit.errors import DpauditError
from dpaudit.sanitize import clean_text
from dpaudit.ui.app import job_or_404, job_view as _job_view, posted_form
from dpaudit.ui.jobs import UPLOADS, child_env
from dpaudit.ui.security import REPORT_CSP, safe_filename

#: name → (media type, confidential?)
DOWNLOADS = {"audit.json": ("application/json", True), "report.md": ("text/markdown; charset=utf-8", True),
             "report.html": ("text/html; charset=utf-8", True), "report.pdf": ("application/pdf", True),
             "summary.json": ("application/json", False)}
MAX_POLICY_BYTES = 64 << 10


def _finished(request: Request, job_id: str):
    job = job_or_404(request, job_id)
    if not job.has_report:
        raise HTTPException(status_code=409, detail="this run has no audit.json yet")
    return job


def _download(job, name: str) -> Response:
    path = job.run_dir / name
    if name not in DOWNLOADS or path.is_symlink() or not path.is_file():
        raise HTTPException(status_code=404, detail=f"{name} is not in this run")
    media, _ = DOWNLOADS[name]
    return FileResponse(path, media_type=media, filename=f"{job.id}-{name}",
                        headers={"Cache-Control": "no-store"})


def report_context(request: Request, job, **extra) -> dict:
    from dpaudit.report_io import load_report

    report = load_report(job.run_dir / "audit.json")
    settings = request.app.state.settings
    return {"job": {"id": job.id, "label": job.state.get("label"), "status": job.status},
            "present": {n: (job.run_dir / n).is_file() for n in DOWNLOADS}, "downloads": DOWNLOADS,
            "policies": [p.name for p in settings.policies], "exportable": job.exportable, "sign_off": report.sign_off,
            "verdict": report.verdict, "epsilon": report.privacy.epsilon, "protection": report.verdict.protection_level,
            **extra}


def add_report_routes(app: FastAPI) -> None:
    """The report's pages and downloads, then its actions (PDF, gate, sign-off, export)."""
    _view_routes(app)
    _action_routes(app)


def _view_routes(app: FastAPI) -> None:
    pages = app.state.pages

    @app.get("/runs/{job_id}/report", response_class=HTMLResponse)
    def report_page(request: Request, job_id: str):
        return pages.render(request, "report.html", **report_context(request, _finished(request, job_id)))

    @app.get("/runs/{job_id}/view/report.html")
    def report_view(request: Request, job_id: str):
        path = _finished(request, job_id).run_dir / "report.html"
        if path.is_symlink() or not path.is_file():
            raise HTTPException(status_code=404, detail="no report.html in this run")
        return HTMLResponse(path.read_text(encoding="utf-8"), headers={
            "Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"})

    @app.get("/runs/{job_id}/download/{name}")
    def download(request: Request, job_id: str, name: str):
        return _download(_finished(request, job_id), name)

    @app.get("/runs/{job_id}/summary.json")
    def summary(request: Request, job_id: str):  # public: the release boundary's shareable file
        return _download(job_or_404(request, job_id), "summary.json")

def _action_routes(app: FastAPI) -> None:
    pages = app.state.pages

    @app.post("/runs/{job_id}/pdf")
    async def pdf(request: Request, job_id: str):
        await posted_form(request)
        job = _finished(request, job_id)
        from starlette.concurrency import run_in_threadpool

        try:
            await run_in_threadpool(_render_pdf, job.run_dir)
        except DpauditError as err:
            return _report_error(request, job, err)
        return _download(job, "report.pdf")

    @app.post("/runs/{job_id}/gate", response_class=HTMLResponse)
    async def gate(request: Request, job_id: str):
        form = await posted_form(request)
        job = _finished(request, job_id)
        from starlette.concurrency import run_in_threadpool

        try:
            chosen, upload = await _policy_choice(request, form)
            result = await run_in_threadpool(_gate, job, chosen, upload, bool(form.get("write_verdict")))
        except DpauditError as err:
            return _report_error(request, job, err)
        return pages.render(request, "report.html", **report_context(request, job, gate=result))

    @app.post("/runs/{job_id}/signoff")
    async def sign_off(request: Request, job_id: str):
        form = await posted_form(request)
        job = _finished(request, job_id)
        from starlette.concurrency import run_in_threadpool

        pairs = [f"{k}={form.get(k)}" for k in ("reviewer", "role", "decision", "conditions", "date")
                 if str(form.get(k) or "").strip()]
        try:
            await run_in_threadpool(_sign, job.run_dir, pairs)
        except DpauditError as err:
            return _report_error(request, job, err)
        return RedirectResponse(f"/runs/{job_id}/report", status_code=303)

    @app.post("/runs/{job_id}/export")
    async def export(request: Request, job_id: str):
        await posted_form(request)
        job = job_or_404(request, job_id)
        if not job.exportable:
            raise HTTPException(status_code=409, detail="only a finished `dpaudit train` run can be exported")
        from starlette.concurrency import run_in_threadpool

        try:
            data = await run_in_threadpool(_export_zip, job.run_dir)
        except DpauditError as err:
            message = f"error: {clean_text(str(err), max_len=2000)}"
            return pages.render(request, "job.html", status_code=400, error=message, job=_job_view(job))
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{job.id}-model.zip"', "Cache-Control": "no-store"})


def _report_error(request: Request, job, err: Exception) -> HTMLResponse:
    message = f"error: {clean_text(str(err), max_len=2000)}"
    return request.app.state.pages.render(request, "report.html", status_code=400,
                                          **report_context(request, job, error=message))


def _render_pdf(run_dir: Path) -> None:
    from dpaudit.gating import render
    from dpaudit.report_io import load_report

    render(load_report(run_dir / "audit.json"), run_dir, ("pdf",), force=True)


async def _policy_choice(request: Request, form) -> tuple[Path | None, tuple[str, bytes] | None]:
    """The chosen shipped policy ``(path, None)``, or the uploaded TOML ``(None, (name, bytes))``."""
    from dpaudit.errors import ConfigError

    upload = form.get("policy_file")
    if upload is not None and getattr(upload, "filename", None):
        data = await upload.read(MAX_POLICY_BYTES + 1)
        name = safe_filename(upload.filename, default="policy.toml")
        if not name.endswith(".toml") or len(data) > MAX_POLICY_BYTES:
            raise ConfigError(f"a policy is a .toml file of at most {MAX_POLICY_BYTES} bytes; got '{name}' "
                              f"({len(data)} bytes).")
        return None, (name, data)
    chosen = str(form.get("policy") or "")
    for path in request.app.state.settings.policies:
        if path.name == chosen:
            return path, None
    raise ConfigError(f"choose a policy ({', '.join(p.name for p in request.app.state.settings.policies)}) or "
                      "upload one.")


@contextlib.contextmanager
def _policy_file(job, chosen: Path | None, upload: tuple[str, bytes] | None):
    """The policy to gate with. An upload is saved 0600: beside a UI job's uploads (kept, like its data), or,
    for a CLI-made run (whose folder is its run directory), in a private temporary folder removed after use."""
    from dpaudit.fileio import write_bytes_atomic

    if upload is None:
        yield chosen
    elif job.is_ui:
        (job.folder / UPLOADS).mkdir(mode=0o700, exist_ok=True)
        yield write_bytes_atomic(job.folder / UPLOADS / upload[0], upload[1], private=True)
    else:
        with tempfile.TemporaryDirectory(prefix="dpaudit-ui-policy-") as tmp:  # mkdtemp: 0700
            yield write_bytes_atomic(Path(tmp) / upload[0], upload[1], private=True)


def _gate(job, chosen: Path | None, upload: tuple[str, bytes] | None, write_verdict: bool) -> dict:
    from dpaudit.cli.report import render_existing
    from dpaudit.gating import gate
    from dpaudit.report_io import dump_report

    with _policy_file(job, chosen, upload) as policy:
        result = gate(job.run_dir / "audit.json", policy)
    if write_verdict:
        dump_report(result.with_verdict(), job.run_dir / "audit.json")
        render_existing(result.with_verdict(), job.run_dir)
    outcome = {0: "pass", 1: "fail", 3: "inconclusive"}[result.exit_code]
    return {"outcome": outcome, "exit_code": result.exit_code, "policy": policy.name,
            "checks": [dataclasses.asdict(c) for c in result.checks], "written": write_verdict}


def _sign(run_dir: Path, pairs: list[str]) -> None:
    from dpaudit.cli.report import render_existing
    from dpaudit.report_io import dump_report, load_report
    from dpaudit.reports.signoff import merge_sign_off, parse_sign_off
    from dpaudit.rundir import RunDir

    report = load_report(run_dir / "audit.json")
    sign_off = merge_sign_off(report.sign_off, parse_sign_off(pairs))  # every check before any write
    RunDir.open_existing(run_dir)
    report = dataclasses.replace(report, sign_off=sign_off)
    dump_report(report, run_dir / "audit.json")
    render_existing(report, run_dir)


def _export_zip(run_dir: Path) -> bytes:
    """``dpaudit export RUN --out TMP/model`` in a child process, zipped; its error line as ConfigError."""
    from dpaudit.errors import ConfigError

    with tempfile.TemporaryDirectory(prefix="dpaudit-ui-export-") as tmp:
        out = Path(tmp) / "model"
        done = subprocess.run([sys.executable, "-m", "dpaudit", "export", str(run_dir), "--out", str(out)],
                              capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                              env=child_env())
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
            raise ConfigError((lines[-1][7:] if lines else f"dpaudit export exited {done.returncode}"))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(out.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    zf.write(path, Path("model") / path.relative_to(out))
        return buffer.getvalue()
