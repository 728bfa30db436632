"""Spread gradient canaries inside dpaudit's own training step (white-box mechanism check).

:class:`CanaryTrainer` is :class:`dpaudit.trainers.loop.Trainer` — the same Poisson sampling
(``_logical_batch`` with the row's :class:`~dpaudit.trainers.randomness.RandomSource`), the same
micro-batches of real data through the backbone, the same :class:`~dpaudit.trainers.dp.DPAggregator`
clipping, noise and division — with ``m`` pseudo-examples appended to the row's training set.

Canary tables. :data:`PLANES` planes of ``m`` coordinates each, every plane cut into bank tables of at most
:data:`TABLE_SIZE` (``bank.extra_slots``, read by no layer), so they are clipped, noised and divided by the
code that trains models. Pseudo-example j has the per-sample gradient ``G·u_j`` with ``G = 10·C`` and
``u_j = Σ_p e_{p,j} / √P`` (coordinate j of every plane, so ``G/√P = 5·C`` in each of P = 4 different
tables): its norm is spread over several tables exactly as a real example's is over the model's, and only a
clipping that bounds the WHOLE per-sample gradient by C lets through exactly C. A clipping that bounds each
table (or any group of tables) separately by C lets through up to ``√P·C = 2·C``. Real examples have
gradient exactly 0 on the canary tables, and canary j is the only example that ever touches u_j.

View. After each step the auditor reads the canary tables of the update (white-box), multiplies back the
denominator the step used, projects on u_j and divides by the claimed C: ``y[t, j] = b[t, j] + σ·z[t, j]``
under a correct implementation, with ``b[t, j] ~ Bernoulli(q)`` for an included canary (0 otherwise) and
``z`` i.i.d. N(0, 1) (isotropic noise projected on orthonormal u_j).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dpaudit.trainers.bank import Slot
from dpaudit.trainers.loop import Trainer

#: Canary gradient norm in units of its clip threshold: a canary that is not clipped shows up tenfold.
CANARY_NORM = 10.0
#: Tables each canary spreads its gradient over (equal shares CANARY_NORM/√PLANES = 5 > 1, so per-table
#: clipping at C still clips every share and lets √PLANES·C through).
PLANES = 4
#: Coordinates per canary table and canaries per injected micro-batch (bounds the dense (b, s) blocks).
TABLE_SIZE = 2048
CHUNK = 1024
CANARY_PREFIX = "verify_canary_"


def add_canary_tables(classifier, num_canaries: int) -> list[Slot]:
    """Append zero tables for ``num_canaries`` canaries to the bank (read by no layer), plane-major:
    plane p's tables hold coordinate j of canary j for every j, ``TABLE_SIZE`` coordinates per table."""
    bank = classifier.bank
    ref = bank.slots[0].param
    slots = []
    for plane in range(PLANES):
        for start in range(0, num_canaries, TABLE_SIZE):
            size = min(TABLE_SIZE, num_canaries - start)
            param = nn.Parameter(torch.zeros(bank.num_models, size, dtype=ref.dtype, device=ref.device))
            slot = Slot(name=f"{CANARY_PREFIX}{plane}_{start // TABLE_SIZE}", param=param)
            bank.extra_slots.append(slot)
            slots.append(slot)
    return slots


def project(planes: np.ndarray) -> np.ndarray:
    """``⟨u_j, ·⟩`` for every canary: (..., PLANES·m) canary-table coordinates, plane-major → (..., m)."""
    return planes.reshape(*planes.shape[:-1], PLANES, -1).sum(axis=-2) / math.sqrt(PLANES)


class CanaryTrainer(Trainer):
    """A one-row :class:`Trainer` whose training set also holds ``included`` canary pseudo-examples.

    Args:
        classifier: a banked classifier with ONE row whose canary tables were added by
            :func:`add_canary_tables` (before this constructor builds the aggregator).
        encoded, labels, settings: as :class:`Trainer` (settings should fix ``sample_rate`` and ``steps``).
        members: the real training examples' indices.
        included: bool (m,), which canaries are in the training set.
        canary_slots: the tables from :func:`add_canary_tables`.
        seed: ``None`` (OS CSPRNG) or an int (seeded randomness), as ``dpaudit train``.
    """

    def __init__(self, classifier, encoded, labels, settings, *, members: np.ndarray, included: np.ndarray,
                 canary_slots: list[Slot], seed: int | None) -> None:
        self.n_pop = len(encoded)
        self.canary_slots = canary_slots
        self.m = int(sum(s.param.shape[1] for s in canary_slots)) // PLANES
        membership = np.zeros((1, self.n_pop + self.m), dtype=bool)
        membership[0, np.asarray(members)] = True
        membership[0, self.n_pop:] = np.asarray(included, dtype=bool)
        super().__init__(classifier, encoded, labels, membership, settings, seeds=[seed], progress=False)
        self._drawn = np.zeros(0, dtype=np.int64)
        self.observed: list[np.ndarray] = []  # per step: (m,) the update projected on each u_j, × denom / C
        self.denominators: list[float] = []
        finalize = self.agg.finalize

        def observed_finalize(*, expected_batch_size, step):
            self._inject()
            finalize(expected_batch_size=expected_batch_size, step=step)
            denom = float(expected_batch_size[0])
            grads = np.concatenate([s.param.grad[0].detach().double().cpu().numpy() for s in self.canary_slots])
            self.observed.append(project(grads) * denom / self.canary_threshold)
            self.denominators.append(denom)

        self.agg.finalize = observed_finalize

    @property
    def canary_threshold(self) -> float:
        """The CLAIMED clip threshold C (all-layer clipping), not the aggregator's: the canary is defined
        by the claim, so an aggregator whose thresholds are broken cannot rescale it away."""
        return float(self.settings.clipping.max_grad_norm)

    def _logical_batch(self) -> tuple[np.ndarray, np.ndarray]:
        examples, models = super()._logical_batch()
        canary = examples >= self.n_pop
        self._drawn = examples[canary] - self.n_pop
        return examples[~canary], models[~canary]

    def _inject(self) -> None:
        """Clip and sum this step's drawn canaries through :meth:`DPAggregator.accumulate`: every canary's
        share goes into its table's per-sample gradient and its squared norm into that table's clipping group."""
        bank = self.clf.bank
        share = CANARY_NORM * self.canary_threshold / math.sqrt(PLANES)
        per_plane = len(self.canary_slots) // PLANES
        chunk_of = self._drawn // TABLE_SIZE
        for c in range(per_plane):
            cols = self._drawn[chunk_of == c] - c * TABLE_SIZE
            tables = self.canary_slots[c::per_plane]  # the P tables holding this chunk's canaries
            for lo in range(0, len(cols), CHUNK):
                chunk = torch.as_tensor(cols[lo:lo + CHUNK], device=self.device)
                b, rows = len(chunk), torch.arange(len(chunk), device=self.device)
                with bank.use(torch.zeros(b, dtype=torch.long, device=self.device)):
                    for slot in tables:
                        grad = torch.zeros(b, slot.param.shape[1], dtype=bank.sqnorm.dtype, device=self.device)
                        grad[rows, chunk] = share
                        slot.per_sample = grad
                        bank.sqnorm[slot.group] += share * share
                    self.agg.accumulate()
        self._drawn = np.zeros(0, dtype=np.int64)
