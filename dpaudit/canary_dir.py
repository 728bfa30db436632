"""The canary directory of ``dpaudit canaries make``: the canaries and their inclusion (both private), bound together.

A model trained by any tool on a training set that dpaudit did not choose gets no theorem: the one-run bound
(Steinke, Nasr, Jagielski 2023, arXiv 2305.08846 v1, Theorem 3) needs each canary IN independently with
probability ½. ``dpaudit canaries make`` flips that coin itself, per canary, from the OS CSPRNG
(:class:`trainers.randomness.SecureRandom`), mixes the included canaries into the user's training file and
writes:

* ``canaries.json`` (0600) — all m canaries (text(s), label trained with, kind, source row, population id),
  the label names, the size of the natural data and a ``run_id``; no inclusion in it. It is private under the
  release boundary (docs/design.md): mislabeled canaries are real records of the user's data, chosen from
  it, so the file is neither post-processing of a DP model nor fixed before the data were seen. Hand it only
  to whoever runs the audit;
* ``inclusion.json`` (0600) — the m coins, a 256-bit salt, the ``run_id`` and the sha256 of the exact
  ``canaries.json`` bytes. ``canaries.json`` holds the keyed commitment ``sha256(salt ‖ ":" ‖ included ids)``
  (:func:`dpaudit.rundir.members_commitment`), which says nothing about the coins without the salt.
  :func:`read_canary_dir` refuses a directory whose ``canaries.json`` was edited (hash), whose coins were
  edited (commitment), whose inclusion comes from another ``make`` (``run_id``), or whose files are malformed.

The training file itself shows which canaries are in it, so it is written 0600 too; the audit never reads it.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpaudit.canaries import CANARY_KINDS, CanarySet
from dpaudit.data import TextDataset, _content_hash
from dpaudit.errors import DataError
from dpaudit.fileio import json_text, refuse_symlink, write_bytes_atomic

__all__ = ["CANARIES_FILE", "FORMAT", "INCLUSION_FILE", "CanaryDir", "draw_inclusion", "read_canary_dir",
           "write_canary_dir"]

FORMAT = "dpaudit-canaries-1"
CANARIES_FILE = "canaries.json"
INCLUSION_FILE = "inclusion.json"
_MAX_FILE_BYTES = 256 << 20


@dataclass(frozen=True)
class CanaryDir:
    """A checked canary directory.

    Attributes:
        path: the directory.
        canaries: the m canaries (population ids ``n_natural + i``).
        included: bool (m,), canary i was mixed into the training file (the secret coin).
        label_names: the class names; label c of a canary is ``label_names[c]``.
        n_natural: natural rows of the training file that dpaudit read (the canaries' ids start there).
        run_id: the ``make`` run that wrote both files; seed: the (public) seed that chose the canaries.
        canaries_sha256, inclusion_sha256: content hashes of the two files (bind an audit's run directory).
    """

    path: Path
    canaries: CanarySet
    included: np.ndarray
    label_names: tuple[str, ...]
    n_natural: int
    run_id: str
    seed: int
    canaries_sha256: str
    inclusion_sha256: str

    @property
    def n_train(self) -> int:
        """Examples the training file holds for dpaudit: natural rows + included canaries."""
        return self.n_natural + int(self.included.sum())

    def dataset(self) -> TextDataset:
        """The m canaries as a population (row i = canary i, with the label it was trained with)."""
        c = self.canaries
        return TextDataset(c.texts, c.labels.copy(), self.label_names, f"canaries ({self.path.name})",
                           str(self.path), _content_hash(c.texts, c.labels, c.pairs), c.pairs)


def draw_inclusion(m: int) -> np.ndarray:
    """m fair coins from the OS CSPRNG (bool (m,)): nothing seeded, nothing stored but the coins themselves."""
    from dpaudit.trainers.randomness import SecureRandom

    return SecureRandom().bernoulli(m, 0.5, step=0)


def _sha256(data: bytes) -> str:
    from dpaudit.rundir import sha256_bytes

    return sha256_bytes(data)


def _canary_rows(canaries: CanarySet, label_names, n_natural: int, file_rows) -> list[dict]:
    rows = []
    for i, text in enumerate(canaries.texts):
        row = {"population_id": n_natural + i, "text": text, "label": int(canaries.labels[i]),
               "label_name": label_names[int(canaries.labels[i])], "source_row": int(canaries.source_index[i]),
               "original_label": int(canaries.original_labels[i]),
               "file_row": None if file_rows is None else file_rows[i]}  # the input file's row (public)
        if canaries.pairs is not None:
            row["pair"] = canaries.pairs[i]
        rows.append(row)
    return rows


def write_canary_dir(out: Path, canaries: CanarySet, included: np.ndarray, *, label_names, n_natural: int,
                     header: dict, file_rows: list[int | None] | None = None) -> tuple[Path, Path]:
    """Write ``canaries.json`` (0644) and ``inclusion.json`` (0600) into ``out``; returns their paths.

    ``header`` adds public facts (source data, columns, seed, training file) to ``canaries.json``.
    """
    from dpaudit.rundir import members_commitment

    run_id, salt = uuid.uuid4().hex, secrets.token_hex(32)
    coins = np.asarray(included, dtype=bool)
    doc = {**header, "format": FORMAT, "run_id": run_id, "kind": canaries.kind, "count": len(canaries),
           "inclusion_commitment": members_commitment(salt, np.flatnonzero(coins)),
           "label_names": list(label_names), "n_natural": int(n_natural), "pairs": canaries.pairs is not None,
           "canaries": _canary_rows(canaries, list(label_names), n_natural, file_rows)}
    data = json_text(doc).encode("utf-8")
    secret = {"format": FORMAT, "run_id": run_id, "canaries_sha256": _sha256(data), "salt": salt,
              "included": [int(x) for x in coins]}
    listing = write_bytes_atomic(Path(out) / CANARIES_FILE, data, private=True)
    private = write_bytes_atomic(Path(out) / INCLUSION_FILE, json_text(secret).encode("utf-8"), private=True)
    return listing, private


def _read(path: Path) -> tuple[bytes, dict]:
    if not path.is_file():
        raise DataError(f"'{path}' does not exist; give the directory written by `dpaudit canaries make` "
                        f"(it holds {CANARIES_FILE} and {INCLUSION_FILE}).")
    refuse_symlink(path)
    if path.stat().st_size > _MAX_FILE_BYTES:
        raise DataError(f"'{path}' is larger than {_MAX_FILE_BYTES >> 20} MB; it is not a canary file.")
    raw = path.read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise DataError(f"'{path}' is not JSON ({str(err)[:120]}); use the file `dpaudit canaries make` wrote."
                        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f"'{path}' is not a {FORMAT} file; use the directory `dpaudit canaries make` wrote.")
    return raw, doc


def _canary_set(doc: dict, where: Path) -> tuple[CanarySet, tuple[str, ...]]:
    """The CanarySet of a ``canaries.json`` document, every field checked."""
    try:
        names = tuple(str(x) for x in doc["label_names"])
        rows, kind, pairs = doc["canaries"], str(doc["kind"]), bool(doc["pairs"])
        if kind not in CANARY_KINDS or not isinstance(rows, list) or len(rows) != int(doc["count"]) or not rows:
            raise ValueError(f"kind {kind!r} or count does not match the canaries")
        texts = tuple(r["text"] for r in rows)
        pair_texts = tuple(r["pair"] for r in rows) if pairs else None
        if not all(isinstance(t, str) for t in texts + (pair_texts or ())):
            raise ValueError("a canary text is not a string")
        arrays = [np.array([int(r[k]) for r in rows], dtype=np.int64)
                  for k in ("label", "source_row", "original_label")]
        ids = [int(r["population_id"]) for r in rows]
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"'{where}' is malformed ({str(err)[:160]}); write the directory again with "
                        f"`dpaudit canaries make`.") from None
    n_natural = int(doc.get("n_natural", -1))
    if len(names) < 2 or arrays[0].min() < 0 or arrays[0].max() >= len(names) or \
            ids != list(range(n_natural, n_natural + len(rows))):
        raise DataError(f"'{where}' has labels outside its {len(names)} classes or population ids not "
                        f"n_natural + i; write the directory again with `dpaudit canaries make`.")
    return CanarySet(kind, texts, arrays[0], arrays[1], arrays[2], pair_texts), names


def _check_commitment(doc: dict, secret: dict, included: np.ndarray, where: Path) -> None:
    from dpaudit.rundir import members_commitment

    salt = secret.get("salt")
    if not isinstance(salt, str) or members_commitment(salt, np.flatnonzero(included)) != doc.get(
            "inclusion_commitment"):
        raise DataError(f"'{where / INCLUSION_FILE}' was changed after `dpaudit canaries make` wrote it (its coins "
                        f"no longer match the commitment in {CANARIES_FILE}); restore it or make the canaries again.")


def read_canary_dir(path: str | Path) -> CanaryDir:
    """Read and check a canary directory (see the module docstring).

    Raises:
        DataError: missing directory or file, malformed content, an edited ``canaries.json`` or an inclusion
            file from another ``make`` run.
    """
    p = Path(path)
    if not p.is_dir():
        raise DataError(f"canary directory '{p}' does not exist; write it with `dpaudit canaries make --out {p}`.")
    raw, doc = _read(p / CANARIES_FILE)
    secret_raw, secret = _read(p / INCLUSION_FILE)
    canaries, names = _canary_set(doc, p / CANARIES_FILE)
    if secret.get("run_id") != doc.get("run_id"):
        raise DataError(f"'{p / INCLUSION_FILE}' belongs to another `dpaudit canaries make` run than "
                        f"'{p / CANARIES_FILE}'; use the two files written together.")
    if secret.get("canaries_sha256") != _sha256(raw):
        raise DataError(f"'{p / CANARIES_FILE}' was changed after `dpaudit canaries make` wrote it (its hash no "
                        f"longer matches {INCLUSION_FILE}); restore it or make the canaries again.")
    coins = secret.get("included")
    if not isinstance(coins, list) or len(coins) != len(canaries) or any(c not in (0, 1) or isinstance(c, bool)
                                                                          for c in coins):
        raise DataError(f"'{p / INCLUSION_FILE}' does not hold one 0/1 coin per canary ({len(canaries)}); "
                        f"restore it or make the canaries again.")
    included = np.array(coins, dtype=bool)
    _check_commitment(doc, secret, included, p)
    return CanaryDir(p, canaries, included, names, int(doc["n_natural"]), str(doc["run_id"]),
                     int(doc.get("seed", 0)),
                     _sha256(raw), _sha256(secret_raw))
