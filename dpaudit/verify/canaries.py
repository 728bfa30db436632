"""Dirac gradient canaries inside dpaudit's own training step (white-box mechanism check).

:class:`CanaryTrainer` is :class:`dpaudit.trainers.loop.Trainer` — the same Poisson sampling
(``_logical_batch`` with the row's :class:`~dpaudit.trainers.randomness.RandomSource`), the same
micro-batches of real data through the backbone, the same :class:`~dpaudit.trainers.dp.DPAggregator`
clipping, noise and division — with ``m`` pseudo-examples appended to the row's training set. Pseudo-example
j has the per-sample gradient ``G·e_j`` (``G = 10·C``, so clipping matters) on coordinate j of canary tables
that no layer of the model reads: real examples have gradient exactly 0 there, and canary j is the only
example that ever touches coordinate j. The canary tables are ordinary bank slots (``bank.extra_slots``), so
they are clipped, noised and divided by the code that trains models. After each step the auditor reads the
canary coordinates of the update (white-box), multiplies back the denominator the step used and divides by
the canary's clip threshold: ``y[t, j] = b[t, j] + σ_eff·z[t, j]`` under a correct implementation, with
``b[t, j] ~ Bernoulli(q)`` for an included canary (0 otherwise) and ``z`` i.i.d. N(0, 1).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dpaudit.trainers.bank import Slot
from dpaudit.trainers.loop import Trainer

#: Canary gradient norm in units of its clip threshold: a canary that is not clipped shows up tenfold.
CANARY_NORM = 10.0
#: Coordinates per canary table and canaries per injected micro-batch (bounds the dense (b, s) block).
TABLE_SIZE = 2048
CHUNK = 1024
CANARY_PREFIX = "verify_canary_"


def add_canary_tables(classifier, num_canaries: int) -> list[Slot]:
    """Append zero tables holding ``num_canaries`` coordinates to the bank (read by no layer)."""
    bank = classifier.bank
    ref = bank.slots[0].param
    slots = []
    for start in range(0, num_canaries, TABLE_SIZE):
        size = min(TABLE_SIZE, num_canaries - start)
        param = nn.Parameter(torch.zeros(bank.num_models, size, dtype=ref.dtype, device=ref.device))
        slot = Slot(name=f"{CANARY_PREFIX}{start // TABLE_SIZE}", param=param)
        bank.extra_slots.append(slot)
        slots.append(slot)
    return slots


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
        self.m = int(sum(s.param.shape[1] for s in canary_slots))
        membership = np.zeros((1, self.n_pop + self.m), dtype=bool)
        membership[0, np.asarray(members)] = True
        membership[0, self.n_pop:] = np.asarray(included, dtype=bool)
        super().__init__(classifier, encoded, labels, membership, settings, seeds=[seed], progress=False)
        self._drawn = np.zeros(0, dtype=np.int64)
        self.observed: list[np.ndarray] = []  # per step: (m,) canary coordinates of the noisy sum / C
        self.denominators: list[float] = []
        finalize = self.agg.finalize

        def observed_finalize(*, expected_batch_size, step):
            self._inject()
            finalize(expected_batch_size=expected_batch_size, step=step)
            denom = float(expected_batch_size[0])
            grads = [s.param.grad[0].detach().double().cpu().numpy() for s in self.canary_slots]
            self.observed.append(np.concatenate(grads) * denom / self.canary_threshold)
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
        """Clip and sum this step's drawn canaries through :meth:`DPAggregator.accumulate`."""
        bank, group = self.clf.bank, self.canary_slots[0].group
        g = CANARY_NORM * self.canary_threshold
        starts = np.cumsum([0] + [s.param.shape[1] for s in self.canary_slots])
        table = np.searchsorted(starts, self._drawn, side="right") - 1
        for t, slot in enumerate(self.canary_slots):
            cols = self._drawn[table == t] - starts[t]
            for lo in range(0, len(cols), CHUNK):
                chunk = torch.as_tensor(cols[lo:lo + CHUNK], device=self.device)
                b = len(chunk)
                with bank.use(torch.zeros(b, dtype=torch.long, device=self.device)):
                    grad = torch.zeros(b, slot.param.shape[1], dtype=bank.sqnorm.dtype, device=self.device)
                    grad[torch.arange(b, device=self.device), chunk] = g
                    slot.per_sample = grad
                    bank.sqnorm[group] += g * g
                    self.agg.accumulate()
        self._drawn = np.zeros(0, dtype=np.int64)
