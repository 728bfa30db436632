"""dpaudit: train with DP-BiTFiT, attack with shadow models, report and gate.

The core package holds what every stage shares: config, data and model loading, the privacy math
(:mod:`dpaudit.privacy`), error types and the CLI. Stages live in the top-level packages
``trainers`` → ``attacks`` → ``reports``; imports flow one way, from ``dpaudit`` outwards.
"""

__version__ = "0.1.0"
