"""Issue 11, data-parallel DP-BiTFiT, tried as an adversary would: is the noise in the update exactly once?

* Seeded: two gloo ranks train the same model as one process; the tables must equal the single-process
  ones. A rank that also adds noise (noise on every rank), or splits it with its own stream, changes the
  tables by at least one noise draw and fails; so does a sampler that draws an example on two ranks or none.
* Secure: with nothing accumulated, the update is the noise alone; over ~10⁴ coordinates its variance
  must be σ²C² — not W·σ²C² (every rank adds the full noise) nor σ²C²/W (only one rank's share of a split).

Float64 models, so "equal" is exact up to the order of the sum over ranks. Nothing is timed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dpaudit.trainers.loop import Trainer
from tests.trainers import _distributed as dd
from tests.trainers._tiny import tiny_population


def _single_process_tables(seed: int) -> dict[str, torch.Tensor]:
    enc, labels = tiny_population(dd.N)
    clf = dd.classifier()
    Trainer(clf, enc, labels, np.ones((1, dd.N), bool), dd.SETTINGS, seeds=[seed], progress=False).run()
    return clf.trainable_state()


def test_two_ranks_train_the_single_process_model_with_noise_added_once(tmp_path):
    dd.run_world(dd.train_tables, tmp_path, 11)
    ranks = [load_file(str(tmp_path / f"rank{r}.st")) for r in range(2)]
    for name in ranks[0]:  # every rank holds the same model, bit for bit
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    reference = _single_process_tables(11)
    moved = 0.0
    for name, value in reference.items():
        torch.testing.assert_close(ranks[0][name], value, rtol=0, atol=1e-10)
        moved = max(moved, float((value - dd.classifier().trainable_state()[name]).abs().max()))
    assert moved > 1e-3  # the comparison is not vacuous: training moved the tables


@pytest.mark.slow
def test_secure_noise_variance_is_sigma_squared_c_squared_exactly_once(tmp_path):
    std = 3.0  # σ·C with C = 1
    dd.run_world(dd.noise_only_updates, tmp_path, 40, std)
    ranks = [load_file(str(tmp_path / f"rank{r}.st"))["noise"] for r in range(2)]
    assert torch.equal(ranks[0], ranks[1])
    z = ranks[0].numpy().ravel()
    ratio = float(np.mean(z**2)) / std**2
    # sd of the ratio is sqrt(2/n) ≈ 0.015 at n ≈ 10⁴; W = 2 gives 2.0 (noise per rank) or 0.5 (a split share)
    assert z.size > 8000
    assert abs(ratio - 1.0) < 0.1, ratio
    assert abs(float(np.mean(z))) < 0.15


@pytest.mark.slow
def test_secure_noise_differs_between_steps_and_runs(tmp_path):
    dd.run_world(dd.noise_only_updates, tmp_path / "a", 2, 1.0)
    dd.run_world(dd.noise_only_updates, tmp_path / "b", 2, 1.0)
    a, b = (load_file(str(tmp_path / x / "rank0.st"))["noise"] for x in ("a", "b"))
    assert not torch.equal(a[0], a[1]) and not torch.equal(a, b)


@pytest.mark.slow
def test_a_resumed_data_parallel_run_equals_the_uninterrupted_single_process_run(tmp_path):
    """Rank 0 alone checkpoints; on resume it broadcasts the checkpoint, so rank 1 cannot continue from its
    own (fresh) state: both must end on the single-process tables."""
    dd.run_world(dd.train_interrupted_then_resumed, tmp_path, 11, 5)
    reference = _single_process_tables(11)
    for r in range(2):
        tables = load_file(str(tmp_path / f"rank{r}.st"))
        for name, value in reference.items():
            torch.testing.assert_close(tables[name], value, rtol=0, atol=1e-10)
