"""``dpaudit ui``'s web application: FastAPI routes rendering Jinja2 pages (autoescaped), no front-end build.

Pages: ``/`` the runs (the runs folder itself), ``/new`` the new-audit form, ``/runs/<id>`` a job's live page
(polled by ``static/ui.js``), and the report pages of :mod:`dpaudit.ui.report_pages`. Jobs run in
:class:`dpaudit.ui.jobs.Worker`; every guard is in :mod:`dpaudit.ui.security`.
"""

from __future__ import annotations

import shutil
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader

from dpaudit.ui import forms
from dpaudit.ui.jobs import RESUMABLE, UPLOADS, Job, JobStore, Worker
from dpaudit.ui.progress import error_line, log_lines, progress
from dpaudit.ui.security import FORM_OVERHEAD, Guard, check_csrf, csrf_token

HERE = Path(__file__).resolve().parent
LOG_TAIL = 40


@dataclass
class Settings:
    """What ``dpaudit ui`` was started with. ``max_upload``: bytes per uploaded file."""

    runs_dir: Path
    token: str
    roots: list[Path] = field(default_factory=list)
    max_upload: int = 50 << 20
    policies: list[Path] = field(default_factory=list)


class Pages:
    """The template environment (autoescape on for every template) and page rendering."""

    def __init__(self) -> None:
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                               trim_blocks=True, lstrip_blocks=True)

    def render(self, request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        html = self.env.get_template(name).render(csrf=csrf_token(request), **context)
        return HTMLResponse(html, status_code=status_code)


async def posted_form(request: Request):
    """The POSTed form after the CSRF check (403 otherwise); at most 4 files and 64 fields."""
    form = await request.form(max_files=4, max_fields=64)
    refusal = check_csrf(request, form)
    if refusal is not None:
        raise HTTPException(status_code=403, detail=refusal)
    return form


def job_or_404(request: Request, job_id: str) -> Job:
    job = request.app.state.store.get(job_id)
    if job is None:
        raise HTTPException(status_code=404, detail="no such run")
    return job


def job_view(job: Job) -> dict:
    """What the live page shows (and ``status.json`` returns): status, progress, log tail, error line."""
    lines = log_lines(job.log)
    steps = progress(lines) if job.status in ("queued", "running") else {
        **progress(lines), "stage": {"done": "finished"}.get(job.status, job.status), "step": None, "eta": None}
    return {"id": job.id, "label": job.state.get("label"), "status": job.status,
            "created": job.state.get("created"), "has_report": job.has_report, **steps,
            "resumable": job.is_ui and job.status in RESUMABLE, "error": error_line(lines) or job.state.get("error"),
            "log": lines[-LOG_TAIL:], "ui": job.is_ui, "exportable": job.exportable,
            "command": job.state.get("command", "audit")}


def create_app(settings: Settings) -> FastAPI:
    """The application; its worker starts (and interrupted jobs are marked) in the lifespan."""
    store = JobStore(settings.runs_dir)
    worker = Worker(store)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        worker.start()
        yield
        worker.stop()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.store, app.state.worker, app.state.pages = settings, store, worker, Pages()
    app.add_exception_handler(HTTPException, _plain_error)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _job_routes(app)
    from dpaudit.ui.report_pages import add_report_routes

    add_report_routes(app)
    app.add_middleware(Guard, token=settings.token, max_body=settings.max_upload + FORM_OVERHEAD)
    return app


async def _plain_error(request: Request, exc: HTTPException) -> PlainTextResponse:
    """Refusals as one plain line (``403: missing or wrong CSRF token; …``), escaped by being text."""
    return PlainTextResponse(f"{exc.status_code}: {exc.detail}", status_code=exc.status_code)


def _job_routes(app: FastAPI) -> None:
    pages: Pages = app.state.pages

    @app.get("/", response_class=HTMLResponse)
    def runs(request: Request):
        return pages.render(request, "runs.html", jobs=[job_view(j) for j in app.state.store.all()],
                            runs_dir=app.state.settings.runs_dir)

    @app.get("/new", response_class=HTMLResponse)
    def new_form(request: Request):
        return _form_page(request, {}, None)

    @app.post("/new")
    async def new_audit(request: Request):
        form = await posted_form(request)
        try:
            job = await _create_job(request, form)
        except forms.FormError as err:
            return _form_page(request, form, str(err), status_code=400)
        app.state.worker.submit(job)
        return RedirectResponse(f"/runs/{job.id}", status_code=303)

    @app.get("/runs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: str):
        return pages.render(request, "job.html", job=job_view(job_or_404(request, job_id)))

    @app.get("/runs/{job_id}/status.json")
    def job_status(request: Request, job_id: str):
        return JSONResponse(job_view(job_or_404(request, job_id)))

    @app.post("/runs/{job_id}/cancel")
    async def cancel(request: Request, job_id: str):
        await posted_form(request)
        app.state.worker.cancel(job_or_404(request, job_id))
        return RedirectResponse(f"/runs/{job_id}", status_code=303)

    @app.post("/runs/{job_id}/resume")
    async def resume(request: Request, job_id: str):
        await posted_form(request)
        job = job_or_404(request, job_id)
        if not job.is_ui or job.status not in RESUMABLE:
            raise HTTPException(status_code=409, detail=f"a {job.status} run cannot be resumed")
        app.state.worker.submit(job)
        return RedirectResponse(f"/runs/{job_id}", status_code=303)


def _form_page(request: Request, form, error: str | None, status_code: int = 200) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    values = {k: form.get(k) for k in form.keys() if k not in ("csrf", "data_file")} if form else {}
    return request.app.state.pages.render(request, "new.html", status_code=status_code, error=error,
                                          values=values, roots=settings.roots, models=_model_dirs(settings.roots),
                                          presets=forms.PRESETS, references=forms.REFERENCES,
                                          max_upload_mb=settings.max_upload / (1 << 20))


def _model_dirs(roots: list[Path], depth: int = 3, limit: int = 50) -> list[str]:
    """Folders holding a ``config.json`` under the allowed roots (a few levels deep; for the picker)."""
    found: list[str] = []
    for root in roots:
        for level in range(1, depth + 1):
            for cfg in sorted(root.glob("/".join(["*"] * level) + "/config.json")):
                if len(found) < limit and not any(p.startswith(".") for p in cfg.relative_to(root).parts):
                    found.append(str(cfg.parent))
    return found


async def _create_job(request: Request, form) -> Job:
    """Save the upload (0600) into a new job folder and validate the arguments; the folder is removed
    again when anything is refused."""
    settings: Settings = request.app.state.settings
    upload = form.get("data_file") if str(form.get("data_source")) == "upload" else None
    job = request.app.state.store.new([], label=forms.label_of(form), data_name=None)
    try:
        data_path = None
        if upload is not None:
            if not getattr(upload, "filename", None):
                raise forms.FormError("choose a data file to upload, or pick the embedded data.")
            data = await upload.read(settings.max_upload + 1)
            data_path = str(forms.save_upload(upload.filename, data, job.folder / UPLOADS, limit=settings.max_upload))
            job.state["data_name"] = upload.filename
        elif str(form.get("data_source")) == "upload":
            raise forms.FormError("choose a data file to upload, or pick the embedded data.")
        argv = forms.audit_argv(form, data_path=data_path, roots=settings.roots)
        job.state["notes"] = forms.validate(argv, job.run_dir)
        job.state["argv"] = argv
        job.save()
        return job
    except BaseException:
        shutil.rmtree(job.folder, ignore_errors=True)
        raise
