"""The optimizer wrapper of :func:`dpaudit.make_private`: clip, sum, noise, divide, step, account.

At every ``step()`` (one logical batch: the forward/backward since the last step):

* per-sample norm over every tracked tensor ``n_i = sqrt(Σ_p ‖g_ip‖²)`` (:class:`trainers.per_sample.PerSampleHooks`);
* clip factor ``c_i = min(1, C / (n_i + 1e-6))`` (Abadi et al. 2016, arXiv 1607.00133 v2, Alg. 1;
  :func:`trainers.dp.clip_factors`);
* ``p.grad = (Σ_i c_i g_ip + N(0, σ²C² I)) / (q·N)`` — the noise from a :class:`~trainers.randomness.RandomSource`
  (the OS CSPRNG unless seeded by name), drawn even for an empty batch;
* the wrapped optimizer's step, then one step recorded in the accountant (``on_step``).

Like opacus' ``DPOptimizer`` it subclasses ``torch.optim.Optimizer`` without its own state: ``param_groups``,
``state`` and ``defaults`` are the wrapped optimizer's, so learning-rate schedulers and the HF Trainer drive it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from dpaudit.trainers.dp import clip_factors
from dpaudit.trainers.per_sample import PerSampleHooks
from dpaudit.trainers.randomness import RandomSource


class PrivateOptimizer(torch.optim.Optimizer):
    """Wraps ``optimizer``; see the module docstring.

    Args:
        optimizer: the user's optimizer over (a subset of) the tracked parameters.
        hooks: the per-sample hooks on the model.
        noise_multiplier: σ ≥ 0 (noise std / C).
        max_grad_norm: C > 0, the per-example L2 bound over all trainable tensors.
        expected_batch_size: q·N, the DP-SGD denominator.
        source: where the Gaussian noise comes from (draw s at optimizer step s).
        on_step: called once after each step (the accountant).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, hooks: PerSampleHooks, *, noise_multiplier: float,
                 max_grad_norm: float, expected_batch_size: float, source: RandomSource,
                 on_step: Callable[[], None]) -> None:
        self.original_optimizer = optimizer
        self.hooks = hooks
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.expected_batch_size = float(expected_batch_size)
        self.source = source
        self.on_step = on_step
        self.steps = 0
        self.last_clip_fraction = 0.0

    # the wrapped optimizer's state is the state (as in opacus' DPOptimizer)
    param_groups = property(lambda self: self.original_optimizer.param_groups,
                            lambda self, v: setattr(self.original_optimizer, "param_groups", v))
    state = property(lambda self: self.original_optimizer.state,
                     lambda self, v: setattr(self.original_optimizer, "state", v))
    defaults = property(lambda self: self.original_optimizer.defaults,
                        lambda self, v: setattr(self.original_optimizer, "defaults", v))

    def __repr__(self) -> str:
        return (f"PrivateOptimizer(σ={self.noise_multiplier}, C={self.max_grad_norm}, "
                f"q·N={self.expected_batch_size:g}, noise={self.source.kind}, {self.original_optimizer!r})")

    def state_dict(self):
        return self.original_optimizer.state_dict()

    def load_state_dict(self, state_dict) -> None:
        self.original_optimizer.load_state_dict(state_dict)

    def add_param_group(self, param_group: dict) -> None:
        self.original_optimizer.add_param_group(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.original_optimizer.zero_grad(set_to_none=set_to_none)
        self.hooks.release()

    def clipped_sums(self) -> list[torch.Tensor]:
        """``Σ_i c_i g_ip`` per tracked tensor (float32 or wider, the parameter's shape) from the per-sample grads."""
        tracked = self.hooks.tracked
        present = [t.per_sample for t in tracked if t.per_sample is not None]
        sums = [torch.zeros(t.param.shape, dtype=torch.promote_types(t.param.dtype, torch.float32),
                            device=t.param.device) for t in tracked]
        if not present or present[0].shape[0] == 0:
            self.last_clip_fraction = 0.0
            return sums
        sq = sum(ps.reshape(ps.shape[0], -1).square().sum(1) for ps in present)
        norms = sq.sqrt()
        factors = clip_factors(norms, self.max_grad_norm, "abadi")
        self.last_clip_fraction = float((norms > self.max_grad_norm).float().mean())
        for t, acc in zip(tracked, sums):
            if t.per_sample is not None:
                acc.add_(torch.einsum("b,b...->...", factors.to(acc.dtype), t.per_sample.to(acc.dtype)))
        return sums

    def privatise(self) -> None:
        """Write the noisy clipped mean into every tracked parameter's ``.grad``."""
        tracked = self.hooks.tracked
        sums = self.clipped_sums()
        std = self.noise_multiplier * self.max_grad_norm
        if std > 0:
            sizes = [t.param.numel() for t in tracked]
            noise = torch.from_numpy(np.asarray(self.source.gaussian(sum(sizes), std, step=self.steps)))
            offset = 0
            for acc, n in zip(sums, sizes):
                acc.add_(noise[offset:offset + n].view(acc.shape).to(acc.device, acc.dtype))
                offset += n
        for t, acc in zip(tracked, sums):
            t.param.grad = (acc / self.expected_batch_size).to(t.param.dtype)
        self.hooks.release()

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.privatise()
        self.original_optimizer.step()
        self.steps += 1
        self.on_step()
        return loss
