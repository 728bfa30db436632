"""Several processes, one job: ``torchrun`` (or Slurm around it) starts them; this module joins them.

dpaudit builds nothing of its own to launch processes. ``torchrun`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`session` reads them and joins the default
``torch.distributed`` process group (gloo for CPU tensors, NCCL for CUDA tensors when CUDA is present).
Without those variables (a plain ``dpaudit …``) it yields :data:`SINGLE`, a one-process
:class:`Collective` whose operations are the identity, so a single process runs exactly as before.

What travels between ranks (docs/design.md, "Scale"): the flat clipped sums of the trainable tensors
(:meth:`Collective.all_reduce_sum_`), the data split and a resumed checkpoint from rank 0
(:meth:`Collective.broadcast_bytes`, safetensors bytes — nothing is pickled), arrays gathered to rank 0
(:meth:`Collective.gather_to_rank0`) and one digest per rank to check that every rank got the same inputs
(:meth:`Collective.agree`). The wire is inside the trust boundary: the per-rank partial sums crossing it are
not noised (the noise is added once, to the total; see :mod:`trainers.dp`).

Errors: a rank that meets a :class:`~dpaudit.errors.DpauditError` prints its one line (prefixed with its
rank) and exits 2; its peers, blocked in a collective, see the broken connection and stop with
:class:`PeerFailedError` without printing, and ``torchrun`` ends the job non-zero.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from dpaudit.errors import ConfigError, DpauditError

#: The torchrun variables read by :func:`env_world`.
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class PeerFailedError(DpauditError):
    """Another rank stopped (its own error line says why); this rank stops too, silently."""


@dataclass(frozen=True)
class WorldInfo:
    """Where this process sits: global ``rank`` in ``[0, world_size)``, ``local_rank`` on its node."""

    rank: int
    world_size: int
    local_rank: int


def env_world(environ: Mapping[str, str] | None = None) -> WorldInfo | None:
    """The torchrun placement from ``environ`` (default ``os.environ``); None outside torchrun.

    Raises:
        ConfigError: the variables are present but inconsistent (a hand-made launcher got them wrong).
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env and "RANK" not in env:
        return None
    try:
        world, rank = int(env.get("WORLD_SIZE", "1")), int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers, got RANK={env.get('RANK')!r}, "
                          f"WORLD_SIZE={env.get('WORLD_SIZE')!r}; start the job with torchrun.") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"RANK must be in [0, WORLD_SIZE), got RANK={rank!r}, WORLD_SIZE={world!r}; start the "
                          f"job with torchrun.")
    return WorldInfo(rank, world, local)


def shard_rows(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(lo, hi)``: rank ``rank``'s contiguous share of ``range(n)``; shares differ in size by at most one
    and the first ``n % world_size`` ranks take the larger ones (``numpy.array_split``'s rule)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got rank={rank!r}.")
    if n < 0:
        raise ValueError(f"n must be in [0, inf), got n={n!r}.")
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


class Collective:
    """The collectives dpaudit uses, on the default process group (``world_size`` 1: identities)."""

    def __init__(self, info: WorldInfo) -> None:
        self.rank, self.world_size, self.local_rank = info.rank, info.world_size, info.local_rank

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that logs, writes files and draws the Gaussian noise."""
        return self.rank == 0

    def _call(self, collective, /, *args, **kwargs):
        try:
            return collective(*args, **kwargs)
        except RuntimeError as err:  # gloo/NCCL: a peer closed its connection or timed out
            raise PeerFailedError(f"rank {self.rank} of {self.world_size}: another rank stopped ({err}); see its "
                                  f"error line.") from err

    def all_reduce_sum_(self, tensor):
        """Sum ``tensor`` over ranks, in place (one collective); returns it."""
        if self.world_size > 1:
            import torch.distributed as dist

            self._call(dist.all_reduce, tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_(self, tensor, src: int = 0):
        """Overwrite ``tensor`` on every rank with rank ``src``'s (same shape and dtype everywhere)."""
        if self.world_size > 1:
            import torch.distributed as dist

            self._call(dist.broadcast, tensor, src=src)
        return tensor

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        """Rank 0's ``data`` on every rank (other ranks pass None); length first, then the bytes."""
        if self.world_size == 1:
            return data or b""
        import torch

        size = torch.tensor([len(data or b"") if self.is_main else 0], dtype=torch.int64)
        self.broadcast_(size)
        buf = torch.zeros(int(size.item()), dtype=torch.uint8)
        if self.is_main and data:
            buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        return bytes(self.broadcast_(buf).numpy().tobytes())

    def broadcast_array(self, array: np.ndarray | None, dtype=np.int64) -> np.ndarray:
        """Rank 0's 1-D ``array`` on every rank (other ranks pass None)."""
        blob = self.broadcast_bytes(None if array is None else np.ascontiguousarray(array, dtype=dtype).tobytes())
        return np.frombuffer(blob, dtype=dtype).copy()

    def gather_to_rank0(self, array: np.ndarray) -> list[np.ndarray] | None:
        """Every rank's ``array`` (any shape, same dtype on all ranks), in rank order, on rank 0; None elsewhere."""
        array = np.ascontiguousarray(array)
        if self.world_size == 1:
            return [array]
        import torch
        import torch.distributed as dist

        shape = torch.tensor(list(array.shape) + [0] * (8 - array.ndim) + [array.ndim], dtype=torch.int64)
        shapes = [torch.zeros_like(shape) for _ in range(self.world_size)]
        self._call(dist.all_gather, shapes, shape)
        sizes = [int(np.prod(s[: int(s[-1])].tolist())) * array.itemsize for s in shapes]
        flat = torch.zeros(max(sizes), dtype=torch.uint8)
        flat[: array.nbytes] = torch.frombuffer(bytearray(array.tobytes()), dtype=torch.uint8)
        bufs = [torch.zeros_like(flat) for _ in range(self.world_size)]
        self._call(dist.all_gather, bufs, flat)
        if not self.is_main:
            return None
        return [np.frombuffer(b[:n].numpy().tobytes(), dtype=array.dtype).reshape(s[: int(s[-1])].tolist())
                for b, n, s in zip(bufs, sizes, shapes)]

    def agree(self, value: str, *, what: str) -> None:
        """Check that every rank holds the same ``value`` (compared by its sha256) of ``what``.

        Raises:
            ConfigError: the first rank whose digest differs from rank 0's, by number.
        """
        if self.world_size == 1:
            return
        import torch
        import torch.distributed as dist

        mine = torch.frombuffer(bytearray(hashlib.sha256(value.encode("utf-8")).digest()), dtype=torch.uint8)
        every = [torch.zeros_like(mine) for _ in range(self.world_size)]
        self._call(dist.all_gather, every, mine)
        for r, other in enumerate(every):
            if not torch.equal(other, every[0]):
                raise ConfigError(f"rank {r} of {self.world_size} has other {what} than rank 0; give every rank "
                                  f"the same files and flags (a path that differs between machines?).")


#: The one-process collective: every operation is the identity; rank 0 of 1.
SINGLE = Collective(WorldInfo(0, 1, 0))
_current: Collective = SINGLE


def current() -> Collective:
    """The collective of the running :func:`session` (:data:`SINGLE` outside one)."""
    return _current


@contextlib.contextmanager
def session(environ: Mapping[str, str] | None = None) -> Iterator[Collective]:
    """Join the torchrun job described by ``environ`` for the duration of the block (no-op outside torchrun).

    Backend: ``cpu:gloo,cuda:nccl`` when CUDA is available (each rank on ``cuda:LOCAL_RANK``), else gloo.
    Non-zero ranks write nothing to stdout (progress and results come from rank 0).
    """
    global _current
    info = env_world(environ)
    if info is None or info.world_size == 1:
        yield SINGLE
        return
    import torch
    import torch.distributed as dist

    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    if environ is not None:  # the env:// rendezvous reads os.environ
        os.environ.update({k: str(environ[k]) for k in ENV_VARS if k in environ})
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    _current = Collective(info)
    quiet = None if _current.is_main else open(os.devnull, "w", encoding="utf-8")
    try:
        with contextlib.redirect_stdout(quiet) if quiet else contextlib.nullcontext():
            yield _current
    finally:
        _current = SINGLE
        if quiet:
            quiet.close()
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def check_world_size(recorded: int | None, world_size: int, *, where: str) -> None:
    """Refuse to continue a run directory started with another number of processes (sharded runs, whose
    per-rank files depend on it).

    Raises:
        ConfigError: ``recorded`` is set and differs from ``world_size``.
    """
    if recorded is not None and int(recorded) != int(world_size):
        raise ConfigError(f"run directory '{where}' was started with {recorded} processes, not {world_size}; rerun "
                          f"with torchrun --nproc-per-node/--nnodes giving {recorded} processes, or use a new --run-dir.")
