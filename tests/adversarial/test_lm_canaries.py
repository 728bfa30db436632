"""Secret canaries for causal LMs. Power: with the noise off (σ = 0: a model that memorises what it trains on) the
one-run bound and the exposure show it; a target that ignores its canaries (what DP promises in the limit) shows
nothing. At CPU-test scale a bias-only tiny random Llama does not memorise 4-digit secrets (measured: 40 canaries,
100 non-private epochs, canary AUC 0.54), so the trained model is replaced by its NLLs, through the stage function
the audit calls (:func:`dpaudit.pipeline.lm_audit.canary_results`). Exposure against a hand computation; the
secrets come from the OS CSPRNG (not reproducible from any seed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dpaudit.lm_canaries import TEMPLATE, exposure, make_lm_canaries
from dpaudit.pipeline.lm_audit import canary_results

M, S = 200, 200


def _nlls(memorise: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    included = rng.random(M) < 0.5
    base = rng.normal(40.0, 2.0, M)
    target = base - rng.normal(0.2, 0.3, M) - (12.0 * included if memorise else 0.0)
    candidates = rng.normal(40.0, 2.0, S)
    return target, base, candidates, included


def _results(memorise: bool):
    target, base, cand, inc = _nlls(memorise)
    return canary_results(target, base, cand, inc, space_bits=6 * math.log2(10), delta=1e-5, significance=0.025,
                          guess_fraction=0.2)


def test_noise_off_target_shows_a_bound_and_exposure():
    section, exp = _results(memorise=True)
    lb = section["epsilon_lb"]
    assert section["auc"] > 0.95 and lb["status"] == "ok" and 0.5 < lb["epsilon_lb"] <= section["cap"]
    assert exp["included"]["mean"] > 19.0 > 3.0 > exp["excluded"]["mean"]  # log2|R| ≈ 19.9 bits when memorised


def test_a_target_that_ignores_its_canaries_shows_nothing():
    section, exp = _results(memorise=False)
    assert section["epsilon_lb"]["epsilon_lb"] == 0.0 and abs(section["auc"] - 0.5) < 0.15
    assert abs(exp["included"]["mean"] - exp["excluded"]["mean"]) < 1.0


def test_exposure_by_hand():
    cand = np.array([1.0, 2.0, 3.0, 4.0])
    got = exposure(np.array([0.5, 2.5, 9.0]), cand, space_bits=10.0)
    for e, beaten in zip(got, (0, 2, 4)):
        assert e == pytest.approx(10.0 - math.log2(1 + (2 ** 10 - 1) * beaten / 4))


def test_secrets_are_distinct_fresh_and_outside_the_candidates():
    a, b = make_lm_canaries(50, digits=6), make_lm_canaries(50, digits=6)
    assert len(set(a.secrets)) == 50 and set(a.secrets) != set(b.secrets)
    assert all(t == TEMPLATE + s and len(s) == 6 and s.isdigit() for t, s in zip(a.texts, a.secrets))
    assert not set(a.texts) & set(a.candidates)


def test_the_secrets_are_saved_private_and_round_trip(tmp_path):
    """lm_canaries.json (what the audit writes beside membership.npy) is 0600 and gives back the same secrets,
    candidates and columns, so exposure and the one-run bound can be recomputed; a tampered record is refused."""
    import json
    import stat

    from dpaudit.errors import DataError
    from dpaudit.lm_canaries import CANARIES_FILE, canaries_record, read_canaries_record
    from dpaudit.rundir import RunDir

    canaries = make_lm_canaries(8, candidates=16)
    rundir = RunDir.claim(tmp_path / "run", command="audit")
    path = rundir.write_json(CANARIES_FILE, canaries_record(canaries, 40))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text(encoding="utf-8"))
    assert read_canaries_record(data) == (canaries, 40)
    for bad in ({**data, "secrets": data["secrets"][:-1] + data["candidates"][:1]},  # a secret among candidates
                {**data, "secrets": [s[:-1] for s in data["secrets"]]}, {**data, "format": "x"},
                {**data, "first_column": -1}):
        with pytest.raises(DataError):
            read_canaries_record(bad)
