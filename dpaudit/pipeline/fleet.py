"""The sharded shadow fleet: stage 3 on W ranks under ``torchrun`` (docs/design.md, "Scale").

The M bank rows (target + K shadows, or K shadows) are split into contiguous shares
(:func:`dpaudit.distributed.shard_rows`); each rank trains its share as one bank with the shadow recipe,
with no communication during training, and keeps the rows' seeds (and a target's secret randomness) of the
one-process run, so a seeded sharded audit equals the one-process audit with the same seeds.

Files and the two-phase commit. Rank 0 alone writes ``dpaudit-run.json``. The stage starts with rank 0
committing ``fleet.json`` (the world size, the row shares, a random fleet id) as a stage file; every rank
then trains against a marker of its own, ``dpaudit-run.rank{r}of{W}.json``, bound to that fleet id, the
stage's inputs and its rows, through the same two-phase commit as the run marker (:class:`ShardRun`): its
checkpoint ``models.rank{r}of{W}.safetensors`` is resumable after a kill of that rank or of all. A shard
marker bound to anything else (another run directory, other settings, ``--rerun shadows``: a new fleet id)
is discarded, so a stale per-rank file is never reused; one whose bytes differ from their record is refused.
When a share is trained, its logits and its files' bytes are gathered to rank 0, which checks that every
rank sent exactly its rows, commits each per-rank file under its name (``models.rank{r}of{W}.safetensors``,
with the rows it holds) and the assembled ``model_logits.npy`` in the original row order.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import struct
from pathlib import Path

import numpy as np

from dpaudit.distributed import Collective, check_world_size, shard_rows
from dpaudit.errors import ConfigError, DataError
from dpaudit.fileio import refuse_symlink
from dpaudit.pipeline.shadows import SHADOW_RECIPES, ShadowJob
from dpaudit.pipeline.stage import commit, normalised, npy_bytes, reusable
from dpaudit.rundir import MARKER_FORMAT, RunDir, inputs_digest, sha256_bytes

FLEET_FILE = "fleet.json"
LOGITS_FILE = "model_logits.npy"


def rank_name(name: str, rank: int, world_size: int) -> str:
    """``models.safetensors`` → ``models.rank{rank}of{world_size}.safetensors``."""
    p = Path(name)
    return f"{p.stem}.rank{rank}of{world_size}{p.suffix}"


class ShardRun(RunDir):
    """One rank's view of the run directory: the files a recipe writes get the rank's suffix and are
    recorded, two-phase, in the rank's own marker ``dpaudit-run.rank{r}of{W}.json`` (never in rank 0's)."""

    def __init__(self, path: Path, record: dict, rank: int, world_size: int) -> None:
        super().__init__(path, record)
        self.rank, self.world_size = rank, world_size

    @classmethod
    def open(cls, path: Path, rank: int, world_size: int, binding: dict) -> "ShardRun":
        """The rank's marker in ``path`` if it is bound to ``binding``; else a fresh one (nothing reused).

        Raises:
            ConfigError: the marker or the directory is a link, or the marker is unreadable.
        """
        refuse_symlink(path)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        own = re.compile(rf"^\..*\.rank{rank}of{world_size}\..*\.[0-9a-f]{{16}}\.tmp$")
        for entry in path.iterdir():  # this rank's uncommitted temporaries only (peers may be writing theirs)
            if own.match(entry.name):
                entry.unlink(missing_ok=True)
        marker = path / rank_name("dpaudit-run.json", rank, world_size)
        refuse_symlink(marker)
        binding = normalised(binding)
        record = cls._read_marker(marker) if marker.is_file() else None
        shard = cls(path, record or {}, rank, world_size)
        if record is None or record.get("inputs") != binding:
            shard.record = {"format": MARKER_FORMAT, "command": "audit-shard", "inputs": binding,
                            "inputs_sha256": inputs_digest(binding), "files": {}}
            shard._save()
        return shard

    def file(self, name: str) -> Path:
        return self.path / rank_name(name, self.rank, self.world_size)

    def committed(self) -> dict[str, bytes]:
        """Every file of this shard, verified against its record, by its unsuffixed name."""
        out = {}
        for name in sorted(self.record["files"]):
            path = self.verified(name)
            if path is not None:
                out[name] = path.read_bytes()
        return out

    def _save(self) -> None:
        from dpaudit.fileio import json_text, write_bytes_atomic

        write_bytes_atomic(self.path / rank_name("dpaudit-run.json", self.rank, self.world_size),
                           json_text(self.record).encode("utf-8"), private=True)


def pack(files: dict[str, bytes]) -> np.ndarray:
    """``files`` as one uint8 array: a length-prefixed JSON header (name → [size, sha256]) then the bytes."""
    header = json.dumps({k: [len(v), sha256_bytes(v)] for k, v in files.items()}).encode("utf-8")
    blob = struct.pack("<Q", len(header)) + header + b"".join(files.values())
    return np.frombuffer(blob, dtype=np.uint8)


def unpack(array: np.ndarray, *, rank: int) -> dict[str, bytes]:
    """Inverse of :func:`pack`; every file's bytes must match the hash its rank sent.

    Raises:
        DataError: the bytes do not match (a rank sent a damaged or altered file).
    """
    blob = array.tobytes()
    (size,) = struct.unpack("<Q", blob[:8])
    header, at, out = json.loads(blob[8:8 + size].decode("utf-8")), 8 + size, {}
    for name, (length, sha) in header.items():
        data = blob[at:at + length]
        if sha256_bytes(data) != sha:
            raise DataError(f"rank {rank}'s '{name}' arrived damaged (hash mismatch); rerun the same command.")
        out[name], at = data, at + length
    return out


def assemble(parts: list[np.ndarray], shape: tuple[int, int, int], world_size: int) -> np.ndarray:
    """Stack the ranks' logits in rank order (= row order); each rank must hold exactly its share.

    Raises:
        DataError: a rank sent another number of rows (or models of another shape): its rows would be lost.
    """
    m, n, c = shape
    for r, part in enumerate(parts):
        lo, hi = shard_rows(m, r, world_size)
        if part.shape != (hi - lo, n, c):
            raise DataError(f"rank {r} of {world_size} returned logits of shape {part.shape}, expected its rows "
                            f"{lo}..{hi - 1} as {(hi - lo, n, c)}; rerun the same command (nothing was committed).")
    return np.concatenate(parts) if parts else np.zeros(shape, np.float32)


def _fleet(run: RunDir, inputs: dict, m: int, world_size: int) -> dict:
    """The committed ``fleet.json`` of this stage's inputs, or a new one with a fresh id."""
    path = reusable(run, FLEET_FILE, inputs)
    if path is not None:
        fleet = json.loads(path.read_text(encoding="utf-8"))
        check_world_size(fleet.get("world_size"), world_size, where=str(run.path))
        return fleet
    fleet = {"world_size": world_size, "rows": [list(shard_rows(m, r, world_size)) for r in range(world_size)],
             "id": secrets.token_hex(16)}
    commit(run, FLEET_FILE, json.dumps(fleet, sort_keys=True).encode("utf-8"), inputs)
    return fleet


def _train_share(job: ShadowJob, header: dict, comm: Collective) -> tuple[np.ndarray, ShadowJob, ShardRun]:
    m = len(job.membership)
    lo, hi = shard_rows(m, comm.rank, comm.world_size)
    binding = {"fleet": header["fleet"], "inputs_sha256": header["inputs_sha256"], "rows": [lo, hi],
               "rank": comm.rank, "world_size": comm.world_size}
    shard = ShardRun.open(Path(header["path"]), comm.rank, comm.world_size, binding)
    # q and the step count are those of all M rows (batch_size / mean size), not of this share's rows
    settings = dataclasses.replace(job.settings, sample_rate=job.plan.sample_rate, steps=job.plan.steps)
    share = dataclasses.replace(job, membership=job.membership[lo:hi], seeds=list(job.seeds[lo:hi]),
                                settings=settings, run=shard, progress=job.progress and comm.is_main, facts={})
    logits = np.ascontiguousarray(SHADOW_RECIPES.get(job.cfg.audit.shadow_recipe)(share), dtype=np.float32)
    return logits, share, shard


def fleet_stage(run: RunDir | None, job: ShadowJob, inputs: dict | None,
                comm: Collective) -> tuple[np.ndarray | None, dict]:
    """Stage 3 on every rank (``run`` and ``inputs`` on rank 0 only): the assembled logits (M, N, C) and the
    recipe's facts on rank 0, ``(None, {})`` elsewhere; reused whole if ``model_logits.npy`` is committed.

    Raises:
        ConfigError: more ranks than rows, or a run directory started with another world size.
    """
    m, n, c = len(job.membership), len(job.dataset), job.dataset.num_classes
    header, cached = None, None
    if comm.is_main:
        if comm.world_size > m:
            raise ConfigError(f"{m} models cannot be shared by {comm.world_size} processes; start at most {m} "
                              f"(torchrun --nproc-per-node) or raise audit.num_shadows.")
        path = reusable(run, LOGITS_FILE, inputs)
        if path is not None:
            cached = (np.load(path, allow_pickle=False), dict((run.entry(LOGITS_FILE) or {}).get("facts") or {}))
        fleet = None if cached else _fleet(run, inputs, m, comm.world_size)
        header = b"" if cached else json.dumps({"path": str(run.path), "fleet": fleet["id"],
                                                 "inputs_sha256": inputs_digest(normalised(inputs))}).encode()
    blob = comm.broadcast_bytes(header)
    if not blob:
        return cached if comm.is_main else (None, {})
    logits, share, shard = _train_share(job, json.loads(blob.decode("utf-8")), comm)
    parts = comm.gather_to_rank0(logits)
    files = comm.gather_to_rank0(pack(shard.committed()))
    if not comm.is_main:
        return None, {}
    model_logits = assemble(parts, (m, n, c), comm.world_size)
    for r, array in enumerate(files):
        lo, hi = shard_rows(m, r, comm.world_size)
        for name, data in unpack(array, rank=r).items():
            run.write(rank_name(name, r, comm.world_size), data, rows=[lo, hi], stage_inputs_sha256=inputs_digest(
                normalised(inputs)))
    commit(run, LOGITS_FILE, npy_bytes(model_logits), inputs, facts=share.facts)
    return model_logits, dict(share.facts)
