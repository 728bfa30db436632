"""Issue 8, findings 1, 2 and 6, tried as an adversary would: the trainer's side of the privacy statement.

* Finding 1 (noise recovery): a released model's noise cannot be regenerated from anything dpaudit wrote;
  a seeded run (positive control) can, which shows the attack works.
* The secure generator's Gaussian and Bernoulli draws have the right law.
* Finding 2 (crash consistency): an exception, or a SIGKILL of a subprocess, at every write of a checkpoint
  commit, then a resume: steps applied to the released tables = steps recorded = steps accounted.
* Finding 6 (shared modules): ALBERT's per-sample bias gradients and squared norms equal a per-example loop.

Every model is float64 so that "the attack recovers the noiseless sum" and "the resume is bit-identical" are
exact statements. Nothing here is timed.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from scipy import stats
from torch import nn

import dpaudit.fileio as fileio
import dpaudit.rundir as rundir_mod
from dpaudit.rundir import MARKER, RunDir
from tests.trainers._tiny import tiny_bert, tiny_population
from dpaudit.trainers import checkpoint
from dpaudit.trainers.bank import BiasBank
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.dp import ClippingConfig, DPAggregator
from dpaudit.trainers.loop import Trainer, TrainSettings
from dpaudit.trainers.randomness import SecureRandom, SeededRandom

ROOT = Path(__file__).resolve().parents[2]
N = 40


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: these models are tiny, and OpenMP threads spinning on 2 shared cores slow every
    small op (index_add_) down by 10-50x. Restored afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _classifier(dtype=torch.float64) -> BankedClassifier:
    """Tiny BERT + one banked model; the head starts from a fixed, public random init (so gradients flow)."""
    clf = BankedClassifier.from_backbone(tiny_bert(0, dtype), num_models=1, num_labels=2)
    w = torch.randn(1, *clf.head.weight.shape[1:], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        clf.head.weight.copy_(w.expand_as(clf.head.weight))
    return clf.to(dtype)


def _flat(tables: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """Row 0 of every table, in slot order (the order the noise is drawn in), as one float64 vector."""
    return torch.cat([tables[n][0].reshape(-1).to(torch.float64) for n in names])


# =====================================================================================================
# Finding 1: the noise cannot be regenerated from the released files
# =====================================================================================================

SIGMA, CLIP, LR, Q, STEPS = 5.0, 0.1, 0.5, 0.25, 2
TRAIN_SEED = 0  # the config's train.seed, as the CLI records it


def _release(run_path: Path, seeds: list[int | None], monkeypatch) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Train as ``dpaudit train`` would (run dir bound to a config that holds ``train.seed``, config and
    metrics written, checkpoint meta like the CLI's) with plain SGD; returns the public initial parameters,
    the true (secret) noiseless clipped sum over all steps, and the slot order."""
    enc, labels = tiny_population(N)
    clf = _classifier()
    names = [s.name for s in clf.slots]
    theta0 = _flat(clf.trainable_state(), names).clone()  # public: backbone biases + published head init
    true_sums: list[torch.Tensor] = []
    original = DPAggregator.finalize

    def spy(self, *, expected_batch_size, step):  # ground truth only; the adversary never sees this
        true_sums.append(torch.cat([a[0].reshape(-1) for a in self.sums]).clone())
        return original(self, expected_batch_size=expected_batch_size, step=step)

    monkeypatch.setattr(DPAggregator, "finalize", spy)
    settings = TrainSettings(sample_rate=Q, steps=STEPS, batch_size=10, micro_batch_size=16, lr=LR, optimizer="sgd",
                             momentum=0.0, noise_multiplier=SIGMA, clipping=ClippingConfig(max_grad_norm=CLIP))
    config = {"train": {"seed": TRAIN_SEED, "epochs": 1, "noise": "secure" if seeds[0] is None else "seeded"},
              "data": {"max_examples": N}}
    run = RunDir.claim(run_path, command="train")
    run.bind({"config": config, "dataset_sha256": "d" * 64, "n_examples": N, "model_sha256": "m" * 64})
    run.write_json("config.json", config)
    meta = {"backbone_sha256": "m" * 64, "backbone_source": "tiny-bert", "label_names": ["0", "1"],
            "max_length": 16, "dataset_sha256": "d" * 64, "dataset_size": N, "n_train": N}
    out = Trainer(clf, enc, labels, np.ones((1, N), bool), settings, seeds=seeds, run=run, meta=meta,
                  progress=False).run()
    run.write_json("metrics.json", {"steps": out.steps, "sample_rate": out.sample_rate, "seed": TRAIN_SEED,
                                    "noise_multiplier": SIGMA})
    assert out.steps == STEPS and len(true_sums) == STEPS
    return theta0, torch.stack(true_sums).sum(0), names


def _integers_in(obj, found: set[int]) -> None:
    """Every integer an adversary could read as a seed: JSON ints, integral floats, digit runs in strings."""
    if isinstance(obj, bool) or obj is None:
        return
    if isinstance(obj, int):
        found.add(obj)
    elif isinstance(obj, float):
        if math.isfinite(obj) and obj == int(obj):
            found.add(int(obj))
    elif isinstance(obj, str):
        found.update(int(d) for d in re.findall(r"\d{1,19}", obj))
        try:
            _integers_in(json.loads(obj), found)  # JSON embedded in a string (safetensors metadata)
        except (ValueError, RecursionError):
            pass
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _integers_in(k, found)
            _integers_in(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _integers_in(v, found)


def _adversary_reads(run_path: Path) -> tuple[dict[str, torch.Tensor], dict, set[int]]:
    """Read every file dpaudit wrote; return the released tables, the checkpoint meta and every integer seen."""
    found: set[int] = set(range(11))
    tables, meta = None, None
    files = [p for p in run_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {MARKER, checkpoint.MODELS_FILE, "config.json", "metrics.json"}
    for path in files:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as fh:
                _integers_in(fh.metadata() or {}, found)
                for key in fh.keys():
                    _integers_in(key, found)
                    t = fh.get_tensor(key)
                    vals = t.reshape(-1).tolist()
                    _integers_in([v for v in vals if isinstance(v, int) or (math.isfinite(v) and v == int(v))],
                                 found)
            tables, meta = checkpoint.read_models(path)
        else:
            text = path.read_bytes().decode("utf-8", errors="replace")
            _integers_in(text, found)
    assert tables is not None
    return tables, meta, {s for s in found if 0 <= s < 2**63}


def _attack(run_path: Path, theta0: torch.Tensor, names: list[str]) -> dict[tuple[str, int], torch.Tensor]:
    """For every candidate seed and noise scheme: the implied noiseless clipped sum over all steps.

    Plain SGD, constant lr: θ_T = θ_0 − lr/(qN) Σ_s (sum_s + noise_s),
    so Σ_s sum_s = −(θ_T − θ_0)·qN/lr − Σ_s noise_s.
    """
    tables, meta, seeds = _adversary_reads(run_path)
    std = meta["noise_multiplier"] * CLIP
    denom = meta["sample_rate"] * N
    noisy_total = -(_flat(tables, names) - theta0) * denom / LR
    d = noisy_total.numel()
    implied = {}
    for seed in sorted(seeds):
        new = sum(torch.from_numpy(SeededRandom(seed).gaussian(d, std, step=s)) for s in range(meta["steps"]))
        implied[("SeededRandom", seed)] = noisy_total - new
        for dtype in (torch.float32, torch.float64):  # the scheme at c7a0995: one torch generator per row
            g = torch.Generator().manual_seed(seed)
            old = sum(torch.normal(0.0, std, (d,), generator=g, dtype=dtype).double() for _ in range(meta["steps"]))
            implied[(f"torch.Generator/{dtype}", seed)] = noisy_total - old
    implied[("no noise removed", -1)] = noisy_total
    return implied


def _rms(x: torch.Tensor) -> float:
    return float(x.square().mean().sqrt())


def test_noise_of_a_released_model_cannot_be_regenerated(tmp_path, monkeypatch):
    # Old code (c7a0995): noise came from torch.Generator().manual_seed(train.seed) and the seed was written
    # into models.safetensors; the "torch.Generator" candidate for seed 0 recovered the noiseless sum to ~1e-16.
    theta0, truth, names = _release(tmp_path, [None], monkeypatch)
    _, meta = checkpoint.read_models(tmp_path / checkpoint.MODELS_FILE)
    assert meta["noise"] == ["secure"] and meta["seeds"] == [None]
    implied = _attack(tmp_path, theta0, names)
    std = SIGMA * CLIP
    errors = {key: _rms(v - truth) for key, v in implied.items()}
    # the release carries noise of the right size: Σ over 2 steps of N(0, std²) per coordinate
    baseline = errors.pop(("no noise removed", -1))
    assert 0.75 * math.sqrt(STEPS) * std < baseline < 1.3 * math.sqrt(STEPS) * std, baseline
    assert len(errors) >= 3 * 11
    best = min(errors, key=errors.get)
    # subtracting a wrong guess adds noise: no candidate comes anywhere near the noiseless sum
    assert errors[best] > 0.5 * std, (best, errors[best])


def test_noise_recovery_attack_works_on_seeded_noise(tmp_path, monkeypatch):
    """Positive control: the same attack on a seeded run recovers the noiseless clipped sum exactly."""
    # Old code (c7a0995): every run was like this one (seeded from train.seed, the seed in the checkpoint);
    # this control shows the attack above is strong enough to fail when the noise can be regenerated.
    theta0, truth, names = _release(tmp_path, [7], monkeypatch)
    _, meta = checkpoint.read_models(tmp_path / checkpoint.MODELS_FILE)
    assert meta["noise"] == ["seeded"] and meta["seeds"] == [7]
    implied = _attack(tmp_path, theta0, names)
    errors = {key: _rms(v - truth) for key, v in implied.items()}
    best = min(errors, key=errors.get)
    assert best == ("SeededRandom", 7) and errors[best] < 1e-9, (best, errors[best])
    assert float(truth.abs().max()) > 1e-3  # the recovered sum is not trivially zero


# =====================================================================================================
# The secure generator's draws
# =====================================================================================================


def test_secure_gaussian_and_bernoulli_have_the_right_law():
    # Old code (c7a0995): there was no SecureRandom (noise from torch.Generator().manual_seed(seed)).
    src = SecureRandom()
    x = src.gaussian(200_000, 1.7, step=0)
    assert x.dtype == np.float64 and x.shape == (200_000,)
    assert stats.kstest(x, "norm", args=(0.0, 1.7)).pvalue > 1e-4
    y = src.gaussian(200_000, 1.7, step=0)
    assert not np.array_equal(x, y)  # same step, fresh entropy: two calls differ
    assert np.unique(x).size > 199_000
    b = src.bernoulli(200_000, 0.3, step=0)
    assert b.dtype == bool
    assert abs(b.mean() - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 200_000)


# =====================================================================================================
# Finding 2: a crash at any write of a checkpoint commit
# =====================================================================================================

FAULT_SEED = 3
FAULT_SETTINGS = TrainSettings(epochs=3.0, batch_size=20, micro_batch_size=16, lr=0.05, optimizer="adam",
                               noise_multiplier=1.0, clipping=ClippingConfig(max_grad_norm=0.5))
PLANNED = 6  # epochs / q = 3 / 0.5; a checkpoint commit at steps 2, 4, 6


class InjectedFault(BaseException):
    """Raised at a fault point; a BaseException (like KeyboardInterrupt) so that nothing may swallow it."""


class _OsInFileio:
    """``os`` as dpaudit.fileio sees it, with ``replace`` and ``fsync`` wrapped."""

    def __init__(self, replace: Callable, fsync: Callable) -> None:
        self.replace, self.fsync = replace, fsync

    def __getattr__(self, name: str):
        return getattr(os, name)


@contextmanager
def faults(fault_at: int | None, action: Callable[[], None], events: list) -> Iterator[None]:
    """Every call of ``write_bytes_atomic`` (as dpaudit.rundir and dpaudit.fileio call it) and of ``os.replace``
    and ``os.fsync`` inside dpaudit.fileio gives two events, before and after the real call; ``action`` runs
    at event number ``fault_at``. Events are appended to ``events`` as ``(call, file name, when)``."""
    real_wba, current = fileio.write_bytes_atomic, {"name": "?"}

    def hit(label: tuple) -> None:
        events.append(label)
        if fault_at is not None and len(events) - 1 == fault_at:
            action()

    def wba(path, data, **kw):
        current["name"] = Path(path).name
        hit(("write_bytes_atomic", current["name"], "before"))
        out = real_wba(path, data, **kw)
        hit(("write_bytes_atomic", Path(path).name, "after"))
        return out

    def replace(src, dst):
        hit(("os.replace", Path(dst).name, "before"))
        os.replace(src, dst)
        hit(("os.replace", Path(dst).name, "after"))

    def fsync(fd):
        hit(("os.fsync", current["name"], "before"))
        os.fsync(fd)
        hit(("os.fsync", current["name"], "after"))

    saved = (rundir_mod.write_bytes_atomic, fileio.write_bytes_atomic, fileio.os)
    rundir_mod.write_bytes_atomic, fileio.write_bytes_atomic = wba, wba
    fileio.os = _OsInFileio(replace, fsync)
    try:
        yield
    finally:
        rundir_mod.write_bytes_atomic, fileio.write_bytes_atomic, fileio.os = saved


class _RecordingTrainer(Trainer):
    """Keeps the tables of every committed checkpoint by step (the reference run)."""

    committed: dict[int, dict[str, torch.Tensor]]

    def save(self) -> None:
        super().save()
        tables, _ = checkpoint.read_models(self.rundir.file(checkpoint.MODELS_FILE))
        self.committed[self.step] = tables


def train_once(run_path: str | Path, trainer_cls: type[Trainer] = Trainer):
    """What ``dpaudit train`` does to a run dir: claim, bind, train with seeded rows, checkpoint per epoch."""
    enc, labels = tiny_population(N)
    run = RunDir.claim(run_path, command="train")
    run.bind({"dataset_sha256": "d" * 64, "n_examples": N, "seed": FAULT_SEED})
    clf = _classifier()
    trainer = trainer_cls(clf, enc, labels, np.ones((1, N), bool), FAULT_SETTINGS, seeds=[FAULT_SEED], run=run,
                          meta={"backbone_sha256": "tiny"}, progress=False)
    if isinstance(trainer, _RecordingTrainer):
        trainer.committed = {}
    return trainer, trainer.run()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """An uninterrupted run: its committed tables per step and the write events it makes."""
    events: list = []
    with faults(None, lambda: None, events):
        trainer, out = train_once(tmp_path_factory.mktemp("reference"), _RecordingTrainer)
    assert out.steps == out.planned_steps == PLANNED
    assert sorted(trainer.committed) == [2, 4, 6]  # three checkpoint commits
    return {"committed": trainer.committed, "events": events}


def _check_crash_state(run_path: Path, committed: dict[int, dict[str, torch.Tensor]]) -> str | None:
    """Right after a crash: the checkpoint a resume would load (if any) holds tables that saw exactly the steps
    its meta, its accountant history and the run record state. Returns a failure description or None."""
    marker = run_path / MARKER
    if not marker.is_file():
        return None
    run = RunDir(run_path, json.loads(marker.read_text(encoding="utf-8")))
    path = run.verified(checkpoint.MODELS_FILE)
    if path is None:
        return None
    tables, _, meta = checkpoint.read_checkpoint(path)
    steps = meta["steps"]
    if steps not in committed:
        return f"checkpoint records {steps} steps, never a commit point"
    if meta["accountant_history"][0][2] != steps or run.entry(checkpoint.MODELS_FILE).get("steps") != steps:
        return f"steps {steps}, accounted {meta['accountant_history']}, run record {run.entry(checkpoint.MODELS_FILE)}"
    if not all(torch.equal(tables[k], committed[steps][k]) for k in committed[steps]):
        return f"tables on disk are not those of step {steps} (they saw other steps than recorded)"
    return None


def _check_resumed(run_path: Path, reference: dict) -> str | None:
    """Resume without faults; the result must be the uninterrupted run's, with steps = recorded = accounted."""
    trainer, out = train_once(run_path)
    final = reference["committed"][PLANNED]
    tables, _, meta = checkpoint.read_checkpoint(run_path / checkpoint.MODELS_FILE)
    problems = []
    if not all(torch.equal(tables[k], final[k]) for k in final):
        problems.append("released tables differ from the uninterrupted run's (steps applied != steps recorded)")
    if not all(torch.equal(v.cpu(), final[k]) for k, v in trainer.clf.trainable_state().items()):
        problems.append("in-memory tables differ from the uninterrupted run's")
    if not (meta["steps"] == PLANNED == meta["accountant_history"][0][2]):
        problems.append(f"meta steps {meta['steps']}, accountant {meta['accountant_history']}")
    if not (out.steps == out.planned_steps == PLANNED):
        problems.append(f"outcome steps {out.steps}/{out.planned_steps}")
    return "; ".join(problems) or None


def test_exception_at_every_write_then_resume(reference, tmp_path):
    # Old code (c7a0995): models.safetensors and train_state.safetensors were written one after the other; an
    # exception between them (e.g. at the second os.replace) left tables of step 4 with a train state of step 2,
    # and the resume applied steps 3-4 again on top of them: 8 steps applied while 6 were recorded and accounted.
    events = reference["events"]
    n_commit_events = sum(e[1] == checkpoint.MODELS_FILE and e[0] == "os.replace" for e in events)
    assert n_commit_events == 2 * 3
    assert {e[0] for e in events} == {"write_bytes_atomic", "os.replace", "os.fsync"}
    failures = []
    for i, event in enumerate(events):
        run_path = tmp_path / f"fault-{i}"
        seen: list = []

        def boom() -> None:
            raise InjectedFault

        with faults(i, boom, seen), pytest.raises(InjectedFault):
            train_once(run_path)
        assert seen == events[: i + 1], f"fault {i}: the write sequence is not deterministic"
        problem = _check_crash_state(run_path, reference["committed"]) or _check_resumed(run_path, reference)
        if problem:
            failures.append(f"fault {i} at {event}: {problem}")
    assert not failures, "\n".join(failures)


SCRIPT = """
import os, signal, sys
from tests.adversarial.test_trust_trainer import faults, train_once

run_dir, fault_at = sys.argv[1], int(sys.argv[2])
with faults(fault_at, lambda: os.kill(os.getpid(), signal.SIGKILL), []):
    train_once(run_dir)
sys.exit(3)  # the kill did not happen
"""


def test_sigkill_at_checkpoint_writes_then_resume(reference, tmp_path):
    # Old code (c7a0995): a kill after models.safetensors was renamed into place and before
    # train_state.safetensors was left a newer model with an older train state; the resume re-applied an
    # epoch of steps to the released tables (issue 8: 15 steps applied, 10 recorded and accounted).
    events = reference["events"]
    models_replace = [i for i, e in enumerate(events) if e == ("os.replace", checkpoint.MODELS_FILE, "before")]
    models_after = [i for i, e in enumerate(events) if e == ("os.replace", checkpoint.MODELS_FILE, "after")]
    assert len(models_replace) == len(models_after) == 3
    picks = {
        # first commit: the new checkpoint is written and fsynced, not yet renamed (pending in the record)
        "first commit, before the rename": models_replace[0],
        # middle commit: the phase-1 record is being written (its temporary file is complete, not renamed)
        "middle commit, phase-1 record": max(i for i in range(models_replace[1]) if events[i][0] == "os.replace"
                                             and events[i][2] == "before"),
        # middle commit: the checkpoint is in place, the record still says pending
        "middle commit, after the rename": models_after[1],
        # last commit: the phase-2 record is being written (the checkpoint is already final)
        "last commit, phase-2 record": next(i for i in range(models_after[2] + 1, len(events))
                                            if events[i] == ("os.replace", MARKER, "before")),
    }
    script = tmp_path / "killed_training.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    failures = []
    for label, i in picks.items():
        run_path = tmp_path / f"kill-{i}"
        proc = subprocess.run([sys.executable, str(script), str(run_path), str(i)], cwd=ROOT, env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        assert proc.returncode == -signal.SIGKILL, (label, proc.returncode, proc.stderr[-2000:])
        problem = _check_crash_state(run_path, reference["committed"]) or _check_resumed(run_path, reference)
        if problem:
            failures.append(f"kill at {label} (event {i}, {events[i]}): {problem}")
    assert not failures, "\n".join(failures)


# =====================================================================================================
# Finding 6: a module called several times in one forward (ALBERT's shared layer)
# =====================================================================================================


@pytest.fixture
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _albert():
    from transformers import AlbertConfig, AlbertModel

    cfg = AlbertConfig(hidden_size=32, num_hidden_layers=2, num_hidden_groups=1, inner_group_num=1,
                       embedding_size=16, num_attention_heads=2, intermediate_size=37, vocab_size=50,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.0,
                       max_position_embeddings=32)
    torch.manual_seed(5)
    return AlbertModel(cfg).to(torch.float64).eval()


def _old_collect_bias(self: BiasBank, slot, grad_output: torch.Tensor) -> None:
    """``BiasBank.collect_bias`` at c7a0995: overwrite per call, squared norms of each call added."""
    slot.per_sample = self._kernels.rowsum_sqnorm(grad_output, slot.channel_dim, self.sqnorm[slot.group])


def _banked_per_sample(base, rows, ids, mask, m, y) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    clf = BankedClassifier.from_backbone(copy.deepcopy(base), num_models=2, num_labels=3).to(torch.float64)
    clf.load_trainable_state(rows)
    nn.functional.cross_entropy(clf(ids, mask, m), y, reduction="sum").backward()
    return {s.name: s.per_sample.clone() for s in clf.slots}, clf.bank.sqnorm[0].clone()


def test_albert_shared_layer_per_sample_gradients_match_loop(_float64, monkeypatch):
    # Old code (c7a0995): slot.per_sample was overwritten by each call of the shared layer (it kept the first
    # call's gradient only) while the squared norm summed ‖g_call‖² without the cross terms (rel. error ~0.67).
    base = _albert()
    shared = "encoder.albert_layer_groups.0.albert_layers.0"
    calls = {"n": 0}
    handle = dict(base.named_modules())[shared + ".ffn"].register_forward_hook(
        lambda *_: calls.__setitem__("n", calls["n"] + 1))
    probe = BankedClassifier.from_backbone(copy.deepcopy(base), num_models=2, num_labels=3).to(torch.float64)
    gen = torch.Generator().manual_seed(11)
    rows = {s.name: s.param.detach() + 0.1 * torch.randn(s.param.shape, generator=gen, dtype=torch.float64)
            for s in probe.slots}
    assert any(n.startswith(shared) for n in rows) and "encoder.embedding_hidden_mapping_in" in rows
    b, t = 4, 7
    ids = torch.randint(1, 50, (b, t), generator=gen)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, 5:] = 0
    mask[3, 3:] = 0
    m = torch.tensor([0, 1, 1, 0])
    y = torch.tensor([0, 2, 1, 2])
    per_sample, sqnorm = _banked_per_sample(base, rows, ids, mask, m, y)

    refs = []
    for i in range(b):  # per-example autograd on a plain copy whose biases are bank row m_i, trainable
        k = int(m[i])
        ref = copy.deepcopy(base)
        for p in ref.parameters():
            p.requires_grad_(False)
        biases = {}
        for name, mod in ref.named_modules():
            if name in rows:
                mod.bias = nn.Parameter(rows[name][k].clone().view_as(mod.bias))
                biases[name] = mod.bias
        w = rows["head.weight"][k].clone().requires_grad_(True)
        hb = rows["head.bias"][k].clone().requires_grad_(True)
        calls["n"] = 0
        hidden = ref(input_ids=ids[i : i + 1], attention_mask=mask[i : i + 1]).last_hidden_state
        mk = mask[i : i + 1].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mk).sum(1) / mk.sum(1)
        nn.functional.cross_entropy(pooled @ w.T + hb, y[i : i + 1], reduction="sum").backward()
        refs.append({**{n: p.grad for n, p in biases.items()}, "head.weight": w.grad, "head.bias": hb.grad})
    handle.remove()
    assert calls["n"] == 2, "the shared layer must be called twice per forward for this test to mean anything"
    assert set(refs[0]) == set(per_sample)
    for name, got in per_sample.items():
        for i in range(b):
            torch.testing.assert_close(got[i], refs[i][name].reshape(got[i].shape), rtol=1e-8, atol=1e-13,
                                       msg=lambda s: f"{name}, example {i}: {s}")
    expected_sq = torch.stack([sum(g.square().sum() for g in r.values()) for r in refs])
    torch.testing.assert_close(sqnorm, expected_sq, rtol=1e-8, atol=1e-13)

    # meaningful: the old per-call overwrite gives a far-off gradient and norm on the shared layer
    monkeypatch.setattr(BiasBank, "collect_bias", _old_collect_bias)
    old_per_sample, old_sqnorm = _banked_per_sample(base, rows, ids, mask, m, y)
    shared_names = [n for n in per_sample if n.startswith(shared)]
    worst = max(float((old_per_sample[n] - per_sample[n]).norm() / per_sample[n].norm()) for n in shared_names)
    assert worst > 0.1, worst
    assert float(((old_sqnorm - sqnorm).abs() / sqnorm).max()) > 0.01
    # ... while the layers called once are unaffected
    torch.testing.assert_close(old_per_sample["encoder.embedding_hidden_mapping_in"],
                               per_sample["encoder.embedding_hidden_mapping_in"], rtol=1e-12, atol=0)
