"""The new-audit form → the ``dpaudit audit`` arguments, validated with the CLI's own parser and checks.

Every field becomes a CLI flag; the flags are parsed by ``dpaudit``'s argparse parser, resolved by
:func:`dpaudit.cli.audit.audit_config` and checked by :func:`dpaudit.pipeline.run.check_audit_config` and
:func:`dpaudit.cli.common.check_inputs` — the checks ``dpaudit audit`` runs before torch — so a bad field
is refused with the CLI's one-line message before a job starts. Paths typed in (a model directory, a data
file) must resolve inside an allowed root (:func:`dpaudit.ui.security.under_roots`).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from dpaudit.errors import DpauditError
from dpaudit.sanitize import clean_text
from dpaudit.ui.security import safe_filename, under_roots

DATA_TYPES = {".csv": "text", ".tsv": "text", ".jsonl": "text", ".parquet": "parquet", ".zip": "images"}
PRESETS = ("high", "balanced", "utility")
REFERENCES = ("none", "non-private", "full-non-private")
#: form field → CLI flag, passed through as text (argparse converts and refuses, in the CLI's words).
NUMBER_FLAGS = (("shadows", "--shadows"), ("canaries", "--canary-count"), ("epochs", "--epochs"),
                ("batch_size", "--batch-size"), ("max_examples", "--max-examples"), ("max_length", "--max-length"),
                ("seed", "--seed"))
TEXT_FLAGS = (("text_column", "--text-column"), ("label_column", "--label-column"))


class FormError(ValueError):
    """A field the form refuses: one line, shown above the form (400)."""


def check_upload(name: str, data: bytes, *, limit: int) -> str:
    """The sanitised file name of an accepted data upload; ``FormError`` for a wrong type or size."""
    clean = safe_filename(name, default="data.csv")
    suffix = Path(clean).suffix.lower()
    if suffix not in DATA_TYPES:
        raise FormError(f"data file type '{suffix or clean}' is not accepted; upload "
                        f"{', '.join(DATA_TYPES)}.")
    if len(data) > limit:
        raise FormError(f"the upload has {len(data)} bytes, at most {limit}; upload a smaller file.")
    if not data:
        raise FormError("the uploaded file is empty; upload the data file.")
    if DATA_TYPES[suffix] == "images" and not data.startswith(b"PK\x03\x04"):
        raise FormError(f"'{clean}' is not a zip archive (no PK header); zip the image folder and upload it.")
    if DATA_TYPES[suffix] == "parquet" and not data.startswith(b"PAR1"):
        raise FormError(f"'{clean}' is not a Parquet file (no PAR1 header); upload the real file.")
    if DATA_TYPES[suffix] == "text":
        head = data[: 1 << 16]
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as err:
            if err.start < len(head) - 4:  # a multi-byte character cut at the boundary is fine
                raise FormError(f"'{clean}' is not UTF-8 text; save it as UTF-8 and upload it again.") from None
        if b"\x00" in head:
            raise FormError(f"'{clean}' holds NUL bytes: not a text file; upload a CSV, TSV or JSONL file.")
    return clean


def save_upload(name: str, data: bytes, folder: Path, *, limit: int) -> Path:
    """Save an accepted data upload into the job's ``folder`` (0600) and return what ``--data`` names: a data
    file as sent, a zip of an image folder extracted into ``folder/STEM/`` (:mod:`dpaudit.ui.uploads`; the
    class folders' parent). ``FormError`` for anything refused."""
    from dpaudit.fileio import write_bytes_atomic

    clean = check_upload(name, data, limit=limit)
    if DATA_TYPES[Path(clean).suffix.lower()] != "images":
        return write_bytes_atomic(folder / clean, data, private=True)
    from dpaudit.ui.uploads import UnsafeArchive, extract_image_zip

    try:
        return extract_image_zip(data, folder / Path(clean).stem)
    except UnsafeArchive as err:
        raise FormError(f"error: {clean_text(str(err), max_len=1000)}") from None


def label_of(form) -> str:
    """The job's label: one plain line of at most 200 characters (shown escaped)."""
    return clean_text(" ".join(str(form.get("label") or "").split()), max_len=200) or "audit"


def audit_argv(form, *, data_path: str | None, roots: list[Path]) -> list[str]:
    """The ``dpaudit audit`` arguments the form asks for (without ``--run-dir``); ``FormError`` on a bad path."""
    argv = ["--data", data_path or _path_field(form, "data", roots)]
    argv += ["--model", _path_field(form, "model", roots)]
    privacy = str(form.get("privacy") or "balanced")
    if privacy in PRESETS:
        argv += ["--preset", privacy]
    elif privacy == "epsilon":
        argv += ["--epsilon", str(form.get("epsilon") or "").strip()]
        if str(form.get("delta") or "").strip():
            argv += ["--delta", str(form.get("delta")).strip()]
    elif privacy == "non-private":
        argv += ["--non-private"]
    else:
        raise FormError(f"privacy must be one of {', '.join(PRESETS)}, epsilon or non-private, got {privacy!r}.")
    reference = str(form.get("reference") or "none")
    if reference not in REFERENCES:
        raise FormError(f"reference must be one of {', '.join(REFERENCES)}, got {reference!r}.")
    if reference != "none":
        argv += ["--reference", reference]
    for field, flag in (*NUMBER_FLAGS, *TEXT_FLAGS):
        value = str(form.get(field) or "").strip()
        if value:
            argv += [flag, value]
    return argv + ["--format", "html,md"]


def _path_field(form, kind: str, roots: list[Path]) -> str:
    source = str(form.get(f"{kind}_source") or "embedded")
    if source == "embedded":
        return "embedded"
    if source != "path":
        raise FormError(f"{kind} source must be embedded, upload or path, got {source!r}.")
    text = str(form.get(f"{kind}_path") or "").strip()
    if not text:
        raise FormError(f"give the {kind} path (a folder inside {', '.join(map(str, roots))}) or pick embedded.")
    try:
        return str(under_roots(text, roots))
    except ValueError as err:
        raise FormError(f"{kind} path {err}") from None


def validate(argv: list[str], run_dir: Path) -> list[str]:
    """Run the CLI's checks on ``argv``; returns the preset notes. ``FormError`` with the CLI's message."""
    from dpaudit.cli.audit import audit_config
    from dpaudit.cli.common import check_inputs
    from dpaudit.cli.main import build_parser
    from dpaudit.pipeline.run import check_audit_config

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = build_parser().parse_args(["audit", *argv, "--run-dir", str(run_dir)])
    except SystemExit:
        raise FormError(err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "invalid input"
                        ) from None
    try:
        cfg, notes = audit_config(args)
        check_audit_config(cfg)
        check_inputs(cfg, run_dir, command="audit", force_run_dir=False)
    except (DpauditError, ValueError) as exc:
        raise FormError(f"error: {clean_text(str(exc), max_len=2000)}") from None
    return list(notes)
