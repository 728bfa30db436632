"""Fixtures shared with the CLI tests."""

from tests.cli.conftest import train_steps  # noqa: F401  (re-exported fixture)
