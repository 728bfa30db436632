"""``dpaudit.make_private`` and ``dpaudit.PrivacyEngine``: DP-BiTFiT for your own training loop, with opacus'
argument names (``opacus.PrivacyEngine.make_private`` / ``make_private_with_epsilon``), so an opacus script
runs with one changed import (docs/library.md).

``make_private(module=, optimizer=, data_loader=, noise_multiplier= | target_epsilon= + target_delta= +
epochs=, max_grad_norm=)`` returns ``(module, optimizer, data_loader)``:

* the module itself (not wrapped): hooks record per-sample gradients of its trainable set — biases through
  the bias path, the task head's Linear weights on their pooled input (:mod:`trainers.per_sample`); any
  other trainable tensor is refused with one line naming it;
* the optimizer wrapped (:class:`trainers.private_optim.PrivateOptimizer`): per-example clipping at C over
  all trainable tensors, Gaussian noise N(0, σ²C²) from the OS CSPRNG once per step, division by q·N;
* a data loader with Poisson sampling at ``q = 1 / len(data_loader)`` (:mod:`trainers.poisson`).

The engine's accountant (``"prv"`` by default, or ``"rdp"``) records one step per optimizer step and
answers :meth:`PrivacyEngine.get_epsilon`; ε is for add/remove-one-example neighbours by default (as opacus),
or replace-one (``PrivacyEngine(accountant="pld", neighbouring="replace_one")``).
"""

from __future__ import annotations

import math

from dpaudit.errors import ConfigError, PrivacyError

#: opacus arguments whose other values change what is computed; a value here other than the default is refused.
_FIXED = {"batch_first": True, "poisson_sampling": True, "clipping": "flat", "noise_generator": None,
          "grad_sample_mode": "hooks"}
_WHY = {"batch_first": "inputs must be batch-first", "poisson_sampling": "the accountant assumes Poisson sampling",
        "clipping": "DP-BiTFiT clips all trainable tensors together (flat)",
        "noise_generator": "noise comes from the OS CSPRNG (pass seed= for a reproducible, non-release run)",
        "grad_sample_mode": "per-sample gradients come from dpaudit's bias hooks"}


def _check_fixed(kwargs: dict) -> None:
    for key, default in _FIXED.items():
        if key in kwargs and kwargs[key] != default:
            raise ConfigError(f"{key}={kwargs[key]!r} is not supported: {_WHY[key]}; leave {key} at {default!r}.")
    unknown = set(kwargs) - set(_FIXED) - {"wrap_model", "criterion", "rand_on_empty"}
    if unknown:
        raise ConfigError(f"unknown make_private argument(s) {sorted(unknown)}; see docs/library.md.")


def _check_single_process(module) -> None:
    import torch

    wrapped = isinstance(module, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel))
    dist = torch.distributed.is_available() and torch.distributed.is_initialized() and \
        torch.distributed.get_world_size() > 1
    if wrapped or dist:
        raise ConfigError("make_private runs in one process on one device: each rank would add its own noise and "
                          "draw its own batches; for data-parallel DP-BiTFiT use `torchrun -m dpaudit train`.")


class PrivacyEngine:
    """Accountant and factory, as ``opacus.PrivacyEngine``.

    Args:
        accountant: ``"prv"`` (default, as opacus), ``"rdp"`` or ``"pld"``.
        neighbouring: ``"add_remove"`` (default: the relation opacus' accountants analyse, so the same σ, q and
            steps give opacus' ε) or ``"replace_one"`` (with ``accountant="pld"``: the relation ``dpaudit train``
            claims, right when the dataset size is published; docs/design.md, "Release boundary").
        secure_mode: accepted for opacus compatibility; dpaudit's noise and sampling always come from the OS
            CSPRNG unless ``seed`` is given to :meth:`make_private`.
    """

    def __init__(self, *, accountant: str = "prv", neighbouring: str = "add_remove", secure_mode: bool = True) -> None:
        from dpaudit.privacy import ACCOUNTANTS

        if accountant not in ACCOUNTANTS:
            raise ConfigError(f"accountant must be one of {sorted(ACCOUNTANTS)}, got {accountant!r}.")
        if neighbouring not in ("add_remove", "replace_one"):
            raise ConfigError(f"neighbouring must be 'add_remove' or 'replace_one', got {neighbouring!r}.")
        self.accountant = accountant
        self.neighbouring = neighbouring
        self.history: list[list] = []  # [[σ, q, steps]] — opacus' accountant history
        self.noise_multiplier: float | None = None
        self.sample_rate: float | None = None
        self.max_grad_norm: float | None = None
        self.noise: str | None = None
        self.hooks = None
        self._restore = None

    def __len__(self) -> int:
        return int(sum(h[2] for h in self.history))

    @property
    def steps(self) -> int:
        """Optimizer steps accounted so far."""
        return len(self)

    def _record_step(self) -> None:
        if self.history and self.history[-1][:2] == [self.noise_multiplier, self.sample_rate]:
            self.history[-1][2] += 1
        else:
            self.history.append([self.noise_multiplier, self.sample_rate, 1])

    def get_epsilon(self, delta: float) -> float:
        """ε (nats) spent so far at ``delta``, an upper bound; 0.0 before the first step."""
        from dpaudit.privacy import epsilon_from_history

        return epsilon_from_history([tuple(h) for h in self.history], delta=delta, accountant=self.accountant,
                                    neighbouring=self.neighbouring)

    def make_private(self, *, module, optimizer, data_loader, max_grad_norm: float,
                     noise_multiplier: float | None = None, target_epsilon: float | None = None,
                     target_delta: float | None = None, epochs: float | None = None, steps: int | None = None,
                     loss_reduction: str = "mean", seed: int | None = None, **kwargs):
        """``(module, optimizer, data_loader)`` ready for private training (see the module docstring).

        Give ``noise_multiplier`` σ, or ``target_epsilon`` with ``target_delta`` and ``epochs`` (or ``steps``,
        the optimizer steps planned) to calibrate σ so that ε after that many steps is ≤ the target.
        ``seed``: reproducible sampling and noise — tests and benchmarks only, never a release.
        """
        from dpaudit.trainers.per_sample import PerSampleHooks
        from dpaudit.trainers.poisson import guard_empty_batches, poisson_loader
        from dpaudit.trainers.private_optim import PrivateOptimizer
        from dpaudit.trainers.randomness import SecureRandom, SeededRandom

        _check_fixed(kwargs)
        _check_single_process(module)
        if self.hooks is not None:
            raise ConfigError("this PrivacyEngine already made a model private; use one engine per model.")
        c = _positive("max_grad_norm", max_grad_norm)
        own = {id(p) for p in module.parameters()}
        if any(id(p) not in own for g in optimizer.param_groups for p in g["params"]):
            raise ConfigError("the optimizer holds parameters that are not the module's; build it from "
                              "[p for p in module.parameters() if p.requires_grad].")
        sampling = SecureRandom() if seed is None else SeededRandom(int(seed))
        noise_src = SecureRandom() if seed is None else SeededRandom(int(seed) + 1)
        loader, q = poisson_loader(data_loader, sampling)
        sigma = self._sigma(noise_multiplier, target_epsilon, target_delta, epochs, steps, q)
        hooks = PerSampleHooks(module, loss_reduction=loss_reduction)
        self._restore = guard_empty_batches(module)
        self.hooks, self.noise_multiplier, self.sample_rate, self.max_grad_norm = hooks, sigma, q, c
        self.noise = noise_src.kind
        private = PrivateOptimizer(optimizer, hooks, noise_multiplier=sigma, max_grad_norm=c,
                                   expected_batch_size=q * len(data_loader.dataset), source=noise_src,
                                   on_step=self._record_step)
        private.privacy_engine = self
        private.get_epsilon = self.get_epsilon
        return module, private, loader

    def make_private_with_epsilon(self, *, module, optimizer, data_loader, target_epsilon: float,
                                  target_delta: float, epochs: float, max_grad_norm: float, **kwargs):
        """:meth:`make_private` with σ calibrated to ``(target_epsilon, target_delta)`` after ``epochs``."""
        return self.make_private(module=module, optimizer=optimizer, data_loader=data_loader,
                                 target_epsilon=target_epsilon, target_delta=target_delta, epochs=epochs,
                                 max_grad_norm=max_grad_norm, **kwargs)

    def _sigma(self, noise_multiplier, target_epsilon, target_delta, epochs, steps, q: float) -> float:
        from dpaudit.privacy import calibrate_noise

        if (noise_multiplier is None) == (target_epsilon is None):
            raise ConfigError("give exactly one of noise_multiplier or target_epsilon (with target_delta and epochs).")
        if noise_multiplier is not None:
            sigma = float(noise_multiplier)
            if not (sigma >= 0 and math.isfinite(sigma)):
                raise PrivacyError(f"noise_multiplier must be in [0, inf), got {noise_multiplier!r}.")
            return sigma
        if target_delta is None or (epochs is None) == (steps is None):
            raise ConfigError("target_epsilon needs target_delta and one of epochs or steps (the steps you will "
                              "train, so that σ is calibrated for them).")
        planned = int(steps) if steps is not None else int(float(epochs) / q)
        return calibrate_noise(target_epsilon=target_epsilon, delta=target_delta, sample_rate=q, steps=planned,
                               accountant=self.accountant, neighbouring=self.neighbouring)

    def detach(self) -> None:
        """Remove the hooks from the model (e.g. before exporting or evaluating it elsewhere)."""
        if self.hooks is not None:
            self.hooks.remove()
        if self._restore is not None:
            self._restore()


def _positive(name: str, value) -> float:
    if isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be one number (flat clipping over all trainable tensors), got a list.")
    v = float(value)
    if not (v > 0 and math.isfinite(v)):
        raise ConfigError(f"{name} must be in (0, inf), got {value!r}.")
    return v


def make_private(*, accountant: str = "prv", **kwargs):
    """``PrivacyEngine(accountant=accountant).make_private(**kwargs)``; the returned optimizer answers
    ``optimizer.get_epsilon(delta)`` and holds its engine as ``optimizer.privacy_engine``."""
    return PrivacyEngine(accountant=accountant).make_private(**kwargs)
