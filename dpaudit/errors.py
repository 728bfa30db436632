"""Error hierarchy. Every user-facing problem is a :class:`DpauditError` whose message is one line that
names the problem and the fix; the CLI prints it as ``error: <message>`` and exits with ``exit_code``.
"""

from __future__ import annotations


class DpauditError(Exception):
    """Base class: a problem the user can fix. ``str(err)`` is a single line."""

    exit_code = 2


class ConfigError(DpauditError, ValueError):
    """An invalid option, config file or combination of options (a ``ValueError``: ``except ValueError`` catches it)."""


class UnknownNameError(ConfigError, LookupError):
    """A key no registry entry has (attack, accountant, estimator, ...); the message lists the known keys."""


class DuplicateNameError(ConfigError):
    """A registry key registered twice without ``force=True``."""


class DataError(DpauditError, ValueError):
    """A dataset that is missing, empty, malformed, or too small for what was asked; also every array of the
    wrong shape or dtype (scores, masks, logits): one wrong shape raises this one type everywhere."""


class ModelError(DpauditError):
    """A model directory that is missing, unreadable, or unsuitable (e.g. has no biases)."""


class UnsupportedModuleError(ModelError):
    """A module holds a trainable bias but no bias-gradient rule is registered for its type."""


class CheckpointError(DpauditError):
    """A checkpoint that is corrupt, incomplete, or belongs to another backbone."""


class PrivacyError(DpauditError):
    """An impossible privacy request: ε ≤ 0, ε unreachable, δ ≥ 1/N without ``--force``."""


class TrainingDivergedError(DpauditError):
    """The loss became NaN/inf; the last good checkpoint is kept."""
