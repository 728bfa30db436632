"""Reference-free LM attacks on the target's own likelihood.

* ``lm_loss`` (Yeom et al. 2018, arXiv 1709.01604v5): ``score = −ℓ``, ℓ the text's mean NLL (nats/token).
* ``zlib`` (Carlini et al. 2021, arXiv 2012.07805v2, §5.1 "zlib"): the ratio of the log-perplexity to the
  zlib entropy, ``score = −ℓ / zlib_bits`` — a text that is easy for the model but hard to compress is
  memorised rather than merely simple.
"""

from __future__ import annotations

import numpy as np

from dpaudit.attacks.lm_signals import LMAttack, LMSignals, register_lm_attack

__all__ = ["LMLoss", "ZlibRatio"]


@register_lm_attack("lm_loss")
class LMLoss(LMAttack):
    """−mean NLL of the target on each text."""

    paper = "Yeom et al. 2018, arXiv 1709.01604"

    def _score(self, signals: LMSignals, ref_membership, *, target: int, reference) -> np.ndarray:
        return -signals.mean_nll()[target]


@register_lm_attack("zlib")
class ZlibRatio(LMAttack):
    """−(mean NLL) / (zlib bits)."""

    paper = "Carlini et al. 2021, arXiv 2012.07805"

    def _score(self, signals: LMSignals, ref_membership, *, target: int, reference) -> np.ndarray:
        return -signals.mean_nll()[target] / np.maximum(signals.zlib, 1.0)
