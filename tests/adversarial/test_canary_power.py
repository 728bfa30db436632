"""Power: with the noise off (σ = 0, a model that memorises what it trains on) the canary bound shows ε_LB > 0.

At CPU-test scale a BiTFiT model — tiny random-weight BERT or not — does not memorise mislabeled canaries in
under a minute (measured: tiny BERT, 100 natural + 100 canaries, 20 epochs, non-private: canary AUC 0.49), so
the trained model is replaced by its signals: the logits of a target and 4 shadows of which every model that
trained on a canary fits its crafted label (the σ = 0 mutant), through the same stage function the audit calls
(:func:`dpaudit.pipeline.attack.run_attacks`), with the same membership layout (row 0 a fair coin per
example, shadows in complementary pairs). A target whose canary logits do not depend on its inclusion (what DP
promises in the limit) shows ε_LB = 0. The embedded-model numbers are in docs/design.md ("Canaries").
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dpaudit.attacks.membership import make_membership
from dpaudit.attacks.signals import Signals
from dpaudit.config import AuditConfig, Config
from dpaudit.pipeline.attack import run_attacks
from dpaudit.pipeline.canary_audit import CanaryPlan

N_NATURAL, M, MODELS = 200, 200, 5


def _signals(memorise_target: bool, seed: int = 0) -> tuple[Signals, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = N_NATURAL + M
    membership = make_membership(n, MODELS, seed=seed + 1)
    membership[0] = rng.random(n) < 0.5
    labels = rng.integers(0, 2, n)
    logits = rng.normal(size=(MODELS, n, 2)).astype(np.float32)
    canaries = np.arange(N_NATURAL, n)
    for k in range(MODELS):
        fits = membership[k, canaries] if (k > 0 or memorise_target) else np.zeros(M, dtype=bool)
        logits[k, canaries, labels[canaries]] += 3.0 * fits  # a model that trained on a canary fits its label
    return Signals(logits, labels), membership


def _cfg() -> Config:
    return dataclasses.replace(Config(), audit=AuditConfig(num_shadows=MODELS - 1, fprs=(0.1,), loo_targets=1))


@pytest.mark.parametrize("rule", ["lira_offline", "loss"])
def test_noise_off_target_shows_a_canary_bound(rule):
    signals, membership = _signals(memorise_target=True)
    plan = CanaryPlan(n_natural=N_NATURAL, count=M, kind="mislabeled", score_rule=rule)
    results, _, family, canaries = run_attacks(_cfg(), signals, membership, 1e-3, False, plan)
    lb = canaries["epsilon_lb"]
    assert canaries["auc"] > 0.8 and lb["status"] == "ok" and lb["kind"] == "bound"
    assert 0.5 < lb["epsilon_lb"] <= canaries["cap"]
    assert family["epsilon_lb"] >= lb["epsilon_lb"] and family["source"] == "canaries"
    assert all(r.n_members + r.n_nonmembers == N_NATURAL for r in results)  # the attacks never see canaries


def test_a_target_that_ignores_its_canaries_shows_nothing():
    signals, membership = _signals(memorise_target=False)
    plan = CanaryPlan(n_natural=N_NATURAL, count=M, kind="mislabeled", score_rule="lira_offline")
    _, _, _, canaries = run_attacks(_cfg(), signals, membership, 1e-3, False, plan)
    assert canaries["epsilon_lb"]["epsilon_lb"] == 0.0 and abs(canaries["auc"] - 0.5) < 0.15


def test_the_score_never_reads_the_targets_inclusion():
    """Flip the target's canary inclusion: its canary scores stay the same (the attack reads shadow rows only)."""
    from dpaudit.pipeline.canary_audit import canary_scores

    signals, membership = _signals(memorise_target=True)
    plan = CanaryPlan(n_natural=N_NATURAL, count=M, kind="mislabeled", score_rule="lira_offline")
    flipped = membership.copy()
    flipped[0] = ~flipped[0]
    assert np.array_equal(canary_scores(plan, signals, membership), canary_scores(plan, signals, flipped))
