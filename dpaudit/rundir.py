"""Run directories that know what produced each file (docs/design.md, "Run-dir contract").

Every run directory dpaudit writes holds a marker, ``dpaudit-run.json``::

    {"format": "dpaudit-run-1", "command": "train" | "audit",
     "inputs": {...}, "inputs_sha256": "…",           # dataset hash, N, model hash, config, target hashes
     "files": {"membership.npy": {"sha256": "…"}, "signals.npz": {"sha256": "…", "models_sha256": "…"}, …}}

Rules:

* A directory that is not empty and has no marker was not made by dpaudit (a Hugging Face model dir, a
  home directory): it is refused with one line unless the user passes ``--force-run-dir``.
* A rerun whose inputs differ from the recorded ones (another dataset, N, model, target checkpoint,
  member ids or config) is refused with one line: ``use a new --run-dir``. Nothing stale is reused.
* Every file goes through :meth:`RunDir.write`, a two-phase commit: the new file's hash is recorded as
  pending, the file is renamed into place, then the record is finalised. A file whose bytes match
  neither its committed nor its pending hash was changed after dpaudit wrote it and is refused; a file
  with no record is treated as never written (recomputed). A kill at any point therefore leaves every
  recorded file either as committed or as pending — both complete files dpaudit wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dpaudit.errors import ConfigError
from dpaudit.fileio import json_text, refuse_symlink, write_bytes_atomic

MARKER = "dpaudit-run.json"
MARKER_FORMAT = "dpaudit-run-1"
#: Public files (0644): post-processing of the DP-trained model and of values fixed before the data were seen
#: (docs/design.md, "Release boundary"). Everything else in a run directory is private (0600): audit.json,
#: the reports, metrics.json and this marker state functions of the data or of the target's membership.
SUMMARY = "summary.json"
SHAREABLE = frozenset({SUMMARY})
_MAX_MARKER_BYTES = 1 << 20
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")  # dpaudit.fileio.write_bytes_atomic's temporaries


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: Config keys that do not change what a run computes (or are covered by a content hash in the inputs).
#: Keys that are inputs of one stage only (attacks, the target's scores, a user's claim) are recorded with that
#: stage's file instead (dpaudit.pipeline.stage): changing them recomputes that stage and the later ones.
_NOT_INPUTS = {("data", "path"), ("model", "path"), ("train", "device"), ("target", "path"), ("target", "members"),
               ("target", "canaries"),
               ("audit", "score_batch_size"), ("audit", "attacks"), ("audit", "fprs"), ("audit", "significance"),
               ("audit", "loo_targets"), ("audit", "canary_guess_fraction"), ("target", "scores_kind"),
               ("audit", "reference"), ("audit", "canary_score"), ("audit", "canary_delta"),
               ("audit", "reference_lr"), ("audit", "reference_epochs"), ("audit", "reference_batch_size"),
               ("target", "claim_epsilon"), ("target", "claim_delta"), ("target", "claim_noise_multiplier"),
               ("target", "claim_sample_rate"), ("target", "claim_steps"), ("target", "claim_accountant"),
               ("target", "recipe")}


def config_inputs(config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The part of a resolved config (``Config.to_dict()``) that a resumed run must share with the first."""
    return {section: {k: v for k, v in values.items() if (section, k) not in _NOT_INPUTS}
            for section, values in config.items()}


def inputs_digest(inputs: dict[str, Any]) -> str:
    return sha256_bytes(json.dumps(inputs, sort_keys=True, allow_nan=False).encode("utf-8"))


def members_commitment(salt: str, ids: Any) -> str:
    """Keyed commitment to a training set: ``sha256(salt ‖ ":" ‖ ",".join(sorted ids))`` as hex.

    The salt (256 random bits) lives only in the private ``split.json``; the commitment goes into the public
    checkpoint. Without the salt it says nothing about who trained the model (an unkeyed hash would let an
    adversary who knows all but one example test both candidate sets); with it, an audit proves that the ids
    it was given are the ones the model trained on.
    """
    text = salt + ":" + ",".join(str(i) for i in sorted(int(i) for i in ids))
    return sha256_bytes(text.encode("utf-8"))


def keyed_dataset_hash(key: str, dataset_sha256: str) -> str:
    """HMAC-SHA256 of a dataset's content hash under the run's secret key, as hex.

    ``key`` is the 256-bit CSPRNG salt of the private ``split.json``. A public file (the checkpoint metadata)
    names its data only this way: an unkeyed content hash would let an adversary who knows every record but
    one hash both candidate datasets and read off which was used (docs/design.md, "Release boundary").
    Whoever holds ``split.json`` can recompute it and check that an audit population is the training data.
    """
    return hmac.new(key.encode("utf-8"), b"dpaudit-dataset-1:" + dataset_sha256.encode("ascii"),
                    hashlib.sha256).hexdigest()


class RunDir:
    """A claimed run directory. Create with :meth:`claim`, then :meth:`bind` the run's inputs."""

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        self.path = path
        self.record = record

    # --- opening -----------------------------------------------------------------------------------
    @classmethod
    def claim(cls, path: str | Path, *, command: str, force: bool = False) -> "RunDir":
        """Open ``path`` for ``command``: create it, adopt an empty one, or reopen one dpaudit made.

        Raises:
            ConfigError: ``path`` is a file or a link, a non-empty directory without a marker (unless
                ``force``), or a run of another command.
        """
        path = Path(path)
        cls.check_claimable(path, command=command, force=force)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        _remove_orphan_temporaries(path)
        marker = path / MARKER
        if marker.is_file():
            return cls(path, cls.check_claimable(path, command=command, force=force))
        rd = cls(path, _empty_record(command))
        rd._save()
        return rd

    @classmethod
    def check_claimable(cls, path: str | Path, *, command: str, force: bool = False) -> dict[str, Any] | None:
        """What :meth:`claim` would refuse, checked without creating or changing anything (the CLI calls it
        before torch is imported). Returns the marker's record of a run to resume, else ``None``."""
        path = Path(path)
        refuse_symlink(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--run-dir '{path}' is a file, not a directory; use a new --run-dir.")
        if not path.exists():
            return None
        marker = path / MARKER
        refuse_symlink(marker)
        if marker.is_file():
            record = cls._read_marker(marker)
            if record.get("command") != command:
                raise ConfigError(f"run directory '{path}' holds a dpaudit {record.get('command')} run, not a "
                                  f"{command} run; use a new --run-dir.")
            return record
        if any(not _TEMPORARY.match(e.name) for e in path.iterdir()) and not force:
            raise ConfigError(f"'{path}' is not empty and was not created by dpaudit (no {MARKER}); use a new "
                              f"--run-dir, or pass --force-run-dir to write into it anyway.")
        return None

    @classmethod
    def open_existing(cls, path: str | Path, *, force: bool = False) -> "RunDir":
        """Reopen a run directory to add files (``dpaudit report``); refuses one dpaudit did not make."""
        path = Path(path)
        refuse_symlink(path)
        marker = path / MARKER
        refuse_symlink(marker)
        if marker.is_file():
            return cls(path, cls._read_marker(marker))
        if not force:
            raise ConfigError(f"'{path}' was not created by dpaudit (no {MARKER}); write the report elsewhere "
                              f"with --out, or pass --force-run-dir.")
        return cls(path, _empty_record("report"))

    @staticmethod
    def _read_marker(marker: Path) -> dict[str, Any]:
        try:
            raw = marker.read_bytes()
            if len(raw) > _MAX_MARKER_BYTES:
                raise ValueError("too large")
            record = json.loads(raw.decode("utf-8"))
            if record.get("format") != MARKER_FORMAT or not isinstance(record.get("files"), dict):
                raise ValueError(f"format {record.get('format')!r}")
        except (OSError, ValueError, AttributeError) as err:
            raise ConfigError(f"'{marker}' is unreadable or not a dpaudit run marker ({err}); use a new --run-dir."
                              ) from None
        return record

    def bind(self, inputs: dict[str, Any]) -> None:
        """Record the run's inputs, or check them against the recorded ones.

        Raises:
            ConfigError: the directory holds a run of other inputs (names the first key that differs).
        """
        inputs = json.loads(json.dumps(inputs, sort_keys=True, allow_nan=False))  # tuples → lists, as recorded
        digest = inputs_digest(inputs)
        recorded = self.record.get("inputs")
        if recorded is None:
            self.record["inputs"], self.record["inputs_sha256"] = inputs, digest
            self._save()
            return
        if self.record.get("inputs_sha256") != digest:
            changed = _first_difference(recorded, inputs)
            raise ConfigError(f"run directory '{self.path}' holds a run of other inputs ({changed} differs); "
                              f"use a new --run-dir (nothing from the old run is reused).")

    def bind_world_size(self, world_size: int) -> None:
        """Record the number of processes the run started with, or refuse another (its shadow fleet's
        per-rank files depend on it; :func:`dpaudit.distributed.check_world_size`)."""
        from dpaudit.distributed import check_world_size

        check_world_size(self.record.get("world_size"), world_size, where=str(self.path))
        if self.record.get("world_size") is None:
            self.record["world_size"] = int(world_size)
            self._save()

    # --- files -------------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    def write(self, name: str, data: bytes, **provenance: Any) -> Path:
        """Write ``name`` atomically (0600 unless shareable) and record its hash and ``provenance``."""
        old = self.record["files"].get(name)
        old = None if old is None else {k: v for k, v in old.items() if k != "previous"}
        entry = {"sha256": sha256_bytes(data), **provenance, "previous": old}
        self.record["files"][name] = entry
        self._save()  # phase 1: the new hash is known before the file appears
        path = write_bytes_atomic(self.file(name), data, private=name not in SHAREABLE)
        entry.pop("previous", None)
        self._save()  # phase 2: committed
        return path

    def write_json(self, name: str, obj: Any, **provenance: Any) -> Path:
        return self.write(name, json_text(obj).encode("utf-8"), **provenance)

    def entry(self, name: str) -> dict[str, Any] | None:
        return self.record["files"].get(name)

    def verified(self, name: str) -> Path | None:
        """The path of ``name`` if dpaudit wrote it and it is unchanged; ``None`` if it was never written.

        Raises:
            ConfigError: the file is a link, or its bytes differ from what dpaudit recorded.
        """
        path = self.file(name)
        refuse_symlink(path)
        entry = self.entry(name)
        if entry is None or not path.is_file():
            return None
        actual = sha256_file(path)
        if actual == entry.get("sha256"):
            return path
        previous = entry.get("previous") or {}
        if actual == previous.get("sha256"):  # killed before the rename: the old, committed file is in place
            self.record["files"][name] = previous
            return path
        raise ConfigError(f"'{path}' was changed after dpaudit wrote it (hash mismatch); use a new --run-dir.")

    def forget(self, name: str) -> None:
        """Drop the record of ``name`` (its content is about to be recomputed)."""
        if self.record["files"].pop(name, None) is not None:
            self._save()

    def _save(self) -> None:
        write_bytes_atomic(self.path / MARKER, json_text(self.record).encode("utf-8"), private=True)


#: Files a run commits before any model trains (drawn in seconds, secret, of no use without the models):
#: a run that fails holding only these has no finished work (:func:`removed_if_unfinished`).
SETUP_FILES = frozenset({"membership.npy", "split.json", "config.json"})


@contextlib.contextmanager
def removed_if_unfinished(path: str | Path, *, owner: bool = True) -> Iterator[None]:
    """Around a command that may create the run directory ``path``: if the command fails (any exception but
    ``KeyboardInterrupt``) and ``path`` did not exist before, remove it, unless it holds finished work.

    Finished work is any committed file outside :data:`SETUP_FILES`, or any file the marker does not record;
    a directory that existed before (a resumed run, a user's folder) is never touched. ``owner``: this process
    owns the directory (rank 0 under torchrun; the other ranks pass ``False``).
    """
    path = Path(path)
    existed = path.exists() or path.is_symlink()
    try:
        yield
    except Exception:
        if owner and not existed:
            _remove_unfinished(path)
        raise


def _remove_unfinished(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        return
    try:
        record = RunDir._read_marker(path / MARKER)
    except ConfigError:
        return
    recorded = set(record["files"])
    entries = {e.name for e in path.iterdir() if not _TEMPORARY.match(e.name)}
    if recorded - SETUP_FILES or entries - recorded - {MARKER}:
        return
    shutil.rmtree(path, ignore_errors=True)


def _empty_record(command: str) -> dict[str, Any]:
    return {"format": MARKER_FORMAT, "command": command, "inputs": None, "inputs_sha256": None, "files": {}}


def _remove_orphan_temporaries(path: Path) -> None:
    """Delete temporaries a killed dpaudit left (``.<name>.<16 hex>.tmp``, never committed).

    An uncommitted checkpoint saw steps the accountant never recorded; left beside the committed one it would
    be a second release of the same data. A leftover also must not make a fresh run dir look foreign.
    """
    for entry in path.iterdir():
        if _TEMPORARY.match(entry.name):
            try:
                entry.unlink()
            except OSError:
                pass


def _first_difference(old: Any, new: Any, prefix: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
    return prefix or "inputs"
