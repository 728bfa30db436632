"""Optimizer and learning-rate schedule factories for the trainer.

The schedules are ``transformers.get_scheduler``'s (a multiplicative factor on the base learning rate,
stepped once per optimizer step):

* ``"constant"`` → ``"constant_with_warmup"``;
* ``"linear"``   → ``"linear"``: after warm-up, ``(steps − t) / (steps − w)``;
* ``"cosine"``   → ``"cosine"`` (half a cycle): after warm-up, ``½ (1 + cos(π (t − w) / (steps − w)))``;

with ``w = int(warmup_fraction · steps)`` warm-up steps. During warm-up the factor is ``t / w`` for step
``t = 0, 1, …``: the first optimizer step runs at learning rate 0 (it still spends its share of the privacy
budget, and Adam's moments still see that step's noisy gradient). The hand-written schedule this replaced
used ``(t + 1) / w``; the two agree at every step when ``warmup_fraction = 0`` (the default and every preset)
and, with warm-up, at every step from ``w`` on (``tests/trainers/test_optim.py`` pins both).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "linear", "cosine")

#: Our schedule name → ``transformers.get_scheduler``'s name.
_TRANSFORMERS_SCHEDULE = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


def make_optimizer(params: Iterable[torch.nn.Parameter], *, name: str, lr: float, momentum: float,
                   weight_decay: float, head_params: Iterable[torch.nn.Parameter] = (),
                   head_lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) over ``params``; ``momentum`` is used by SGD only.

    Args:
        params: the bias tables (or every trainable tensor when ``head_params`` is empty), stepped at ``lr``.
        name, lr, momentum, weight_decay: the optimizer and its base learning rate.
        head_params: the task head's tensors, a second parameter group stepped at ``head_lr``.
        head_lr: the head's learning rate; None: ``lr``. The head (weight of H×C plus C biases, zero-initialised)
            learns a linear probe of features that are already useful, and under DP noise its few coordinates
            take a larger step than the ~26k bias coordinates, whose noise a large step turns into a random
            walk of the backbone (issue 13's sweep, ``benchmarks/RESULTS.md`` §2).

    The schedule multiplies both groups' rates by the same factor.
    """
    params, head_params = list(params), list(head_params)
    if head_params:
        params = [{"params": params, "lr": lr},
                  {"params": head_params, "lr": lr if head_lr is None else head_lr}]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, *, schedule: str, warmup_fraction: float,
                   steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning-rate schedule ``schedule`` (one of :data:`SCHEDULES`) over ``steps`` optimizer steps.

    Args:
        optimizer: the optimizer whose learning rate is scaled.
        schedule: ``"constant"``, ``"linear"`` or ``"cosine"`` (see the module docstring for the formulas).
        warmup_fraction: share of ``steps`` spent warming up, in [0, 1); ``int(warmup_fraction · steps)`` steps.
        steps: planned optimizer steps (not epochs).
    """
    from transformers import get_scheduler

    kwargs = {"num_warmup_steps": int(warmup_fraction * steps)}
    if schedule != "constant":
        kwargs["num_training_steps"] = int(steps)
    return get_scheduler(_TRANSFORMERS_SCHEDULE[schedule], optimizer, **kwargs)
