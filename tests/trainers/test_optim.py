"""The optimizer / schedule factories: transformers' schedules against the hand-written one they replaced."""

from __future__ import annotations

import math

import pytest
import torch

from dpaudit.trainers.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_scheduler


def _old_factor(schedule: str, warmup_fraction: float, steps: int, step: int) -> float:
    """The former ``trainers.loop._lr_lambda``, verbatim in its arithmetic (the reference)."""
    warm = int(warmup_fraction * steps)
    if step < warm:
        return (step + 1) / warm
    frac = (step - warm) / max(1, steps - warm)
    if schedule == "linear":
        return max(0.0, 1.0 - frac)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
    return 1.0


def _factors(schedule: str, warmup_fraction: float, steps: int) -> list[float]:
    """Learning-rate factor used by each optimizer step 0 … steps − 1 (base lr 1)."""
    opt = make_optimizer([torch.nn.Parameter(torch.zeros(1))], name="sgd", lr=1.0, momentum=0.0, weight_decay=0.0)
    sched = make_scheduler(opt, schedule=schedule, warmup_fraction=warmup_fraction, steps=steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("steps", [1, 7, 40])
def test_without_warmup_every_step_matches_the_old_schedule(schedule, steps):
    new = _factors(schedule, 0.0, steps)
    old = [_old_factor(schedule, 0.0, steps, t) for t in range(steps)]
    assert new == pytest.approx(old, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_with_warmup_the_documented_difference_and_nothing_else(schedule):
    steps, fraction = 40, 0.25
    warm = int(fraction * steps)
    new = _factors(schedule, fraction, steps)
    old = [_old_factor(schedule, fraction, steps, t) for t in range(steps)]
    # After warm-up: identical.
    assert new[warm:] == pytest.approx(old[warm:], rel=1e-12, abs=1e-15)
    # During warm-up transformers uses t / w where the old schedule used (t + 1) / w: one step later,
    # so the first step runs at learning rate 0 (documented in trainers/optim.py).
    assert new[0] == 0.0 and old[0] == pytest.approx(1 / warm)
    assert new[1:warm] == pytest.approx(old[: warm - 1], rel=1e-12)


def test_spot_values():
    # Cosine over 40 steps: half-way factor ½, linear: 1 − 20/40.
    assert _factors("cosine", 0.0, 40)[20] == pytest.approx(0.5)
    assert _factors("linear", 0.0, 40)[20] == pytest.approx(0.5)
    assert _factors("constant", 0.0, 40) == [1.0] * 40


@pytest.mark.parametrize("name,cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                      ("sgd", torch.optim.SGD)])
def test_optimizer_factory(name, cls):
    assert name in OPTIMIZERS
    opt = make_optimizer([torch.nn.Parameter(torch.zeros(2))], name=name, lr=0.1, momentum=0.5, weight_decay=0.01)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.1 and group["weight_decay"] == 0.01
    if name == "sgd":
        assert group["momentum"] == 0.5


def test_a_checkpoint_written_with_the_old_schedule_resumes():
    """The old LambdaLR state (``lr_lambdas: [None]``, a plain function) loads into transformers' scheduler."""
    opt = make_optimizer([torch.nn.Parameter(torch.zeros(1))], name="adam", lr=1.0, momentum=0.0, weight_decay=0.0)
    sched = make_scheduler(opt, schedule="linear", warmup_fraction=0.0, steps=10)
    old_state = {**sched.state_dict(), "last_epoch": 4, "_step_count": 5, "_last_lr": [0.6], "lr_lambdas": [None]}
    sched.load_state_dict(old_state)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(_old_factor("linear", 0.0, 10, 5))


def test_head_lr_is_a_second_group_that_the_schedule_scales_too():
    bias, head = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
    opt = make_optimizer([bias], head_params=[head], head_lr=0.5, name="adam", lr=0.01, momentum=0.0,
                         weight_decay=0.0)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]
    assert opt.param_groups[0]["params"] == [bias] and opt.param_groups[1]["params"] == [head]
    sched = make_scheduler(opt, schedule="linear", warmup_fraction=0.0, steps=4)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0075, 0.375])
    # Without head_lr the head group runs at lr.
    same = make_optimizer([bias], head_params=[head], name="sgd", lr=0.2, momentum=0.0, weight_decay=0.0)
    assert [g["lr"] for g in same.param_groups] == [0.2, 0.2]


def test_the_trainer_steps_the_head_at_head_lr_and_the_biases_at_lr():
    """head_lr = 0 freezes the head while the biases move; head_lr > 0 moves the head."""
    import numpy as np

    from dpaudit.trainers.classifier import BankedClassifier
    from dpaudit.trainers.loop import Trainer, TrainSettings
    from tests.trainers._tiny import tiny_bert, tiny_population

    enc, labels = tiny_population(40)
    moved = {}
    for head_lr in (0.0, 0.05):
        clf = BankedClassifier.from_backbone(tiny_bert(0), num_models=1, num_labels=2)
        with torch.no_grad():  # a non-zero head, so that the biases get a gradient while it is frozen
            clf.head.weight.normal_(generator=torch.Generator().manual_seed(3))
        before = {s.name: s.param.detach().clone() for s in clf.slots}
        settings = TrainSettings(epochs=1.0, batch_size=10, micro_batch_size=10, lr=0.05, head_lr=head_lr,
                                 non_private=True, noise_multiplier=0.0)
        trainer = Trainer(clf, enc, labels, np.ones((1, 40), bool), settings, seeds=[0], progress=False)
        assert [g["lr"] for g in trainer.opt.param_groups] == [0.05, head_lr]
        trainer.run(resume=False)
        moved[head_lr] = {s.name: bool((s.param.detach() != before[s.name]).any()) for s in clf.slots}
    assert not moved[0.0]["head.weight"] and not moved[0.0]["head.bias"]
    assert moved[0.05]["head.weight"] and moved[0.05]["head.bias"]
    assert all(v for name, v in moved[0.0].items() if not name.startswith("head."))
