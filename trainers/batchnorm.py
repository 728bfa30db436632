"""BatchNorm under per-sample clipping: frozen running statistics, or refused.

In train mode ``BatchNorm`` normalises every example by the mean and variance of its *batch*, so example
j's input changes example i's output and gradient: the per-sample gradient ``g_i`` is then a function of
the whole batch and clipping it to C no longer bounds one example's influence (the sensitivity argument of
DP-SGD, Abadi et al. 2016, arXiv:1607.00133v2 §3.1, assumes ``g_i`` depends on example i alone). In eval
mode with tracked running statistics it is the per-channel affine map
``y = (x − μ_run) / sqrt(σ²_run + ε) · γ + β`` — per-example, like a Conv bias.

dpaudit therefore pins every BatchNorm of a BiasBank backbone in eval mode (:func:`freeze_batchnorm`: the
running statistics are never updated and never read from a batch, whatever ``train()`` is called with) and
refuses a BatchNorm without running statistics (``track_running_stats=False``: it always uses batch
statistics). :class:`trainers.per_sample.PerSampleHooks` (a user's own model) refuses a train-mode BatchNorm
at its forward (:func:`check_batchnorm_eval`) instead of changing the user's module behind their back.
"""

from __future__ import annotations

from torch import nn

from dpaudit.errors import UnsupportedModuleError

_BATCHNORM = nn.modules.batchnorm._BatchNorm  # BatchNorm1d/2d/3d, SyncBatchNorm and the lazy variants


def _pin_eval(module: nn.Module, _args) -> None:
    module.training = False  # a forward pre-hook: every forward runs in eval mode


def _refuse_untracked(name: str, module: nn.Module) -> None:
    if module.running_mean is None or module.running_var is None:
        raise UnsupportedModuleError(
            f"module '{name}' ({type(module).__name__}) has no running statistics (track_running_stats=False), "
            f"so it normalises each example by its batch's statistics and mixes the examples of a batch; "
            f"per-sample clipping cannot bound one example's influence through it — use a checkpoint whose "
            f"BatchNorm layers track running statistics, or one with LayerNorm/GroupNorm.")


def freeze_batchnorm(module: nn.Module) -> list[str]:
    """Pin every BatchNorm inside ``module`` in eval mode (running statistics frozen); their names.

    Raises:
        UnsupportedModuleError: a BatchNorm without running statistics (named).
    """
    names = []
    for name, mod in module.named_modules():
        if isinstance(mod, _BATCHNORM):
            _refuse_untracked(name, mod)
            if not getattr(mod, "_dpaudit_frozen", False):
                mod.register_forward_pre_hook(_pin_eval)
                mod._dpaudit_frozen = True
            mod.eval()
            names.append(name)
    return names


def check_batchnorm_eval(name: str, module: nn.Module) -> None:
    """Raise :class:`UnsupportedModuleError` if BatchNorm ``module`` would use batch statistics."""
    _refuse_untracked(name, module)
    if module.training:
        raise UnsupportedModuleError(
            f"module '{name}' ({type(module).__name__}) is in train mode: it normalises each example by its "
            f"batch's statistics, which mixes the examples of a batch and breaks per-sample clipping — call "
            f"dpaudit.trainers.batchnorm.freeze_batchnorm(model) (running statistics frozen) before training.")
