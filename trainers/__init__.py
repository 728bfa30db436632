"""DP-BiTFiT training on a BiasBank: K models that share one frozen backbone and differ only in biases.

Data flow (docs/design.md, "DP-BiTFiT, exactly" and "The BiasBank"):

* :mod:`trainers.rules` — per-module-type bias rules (layout of the bias, how to strip it);
* :mod:`trainers.bias_sums` — per-sample bias gradients from output gradients (torch path; fused GPU path
  in :mod:`trainers.fused` when CUDA and Triton are available);
* :mod:`trainers.bank` — the BiasBank that replaces every trainable bias by a (K, p) table;
* :mod:`trainers.head` — mean pooling and the banked task head;
* :mod:`trainers.classifier` — backbone + bank + head as one classifier taking a model index per example;
* :mod:`trainers.dp` — clipping (Abadi / automatic, clipping groups), noise per bank row;
* :mod:`trainers.optim` — optimizer and learning-rate schedule factories;
* :mod:`trainers.loop` — Poisson sampling, micro-batches, the training step, the budget guard;
* :mod:`trainers.checkpoint` — the one atomic checkpoint file, optimizer state, resume checks;
* :mod:`trainers.predict` — batched logits of every model on a population;
* :mod:`trainers.recipe` — from a config to settings, accounting and a trained bank;
* :mod:`trainers.per_sample`, :mod:`trainers.poisson`, :mod:`trainers.private_optim` — the same bias path on a
  user's own model, for :func:`dpaudit.make_private` (hooks, Poisson data loader, the private optimizer).
"""
