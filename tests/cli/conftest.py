"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import pytest

from dpaudit.trainers.loop import Trainer


@pytest.fixture
def train_steps(monkeypatch) -> list[int]:
    """Records one entry per optimizer step of any Trainer (the number of models it trains)."""
    calls: list[int] = []
    original = Trainer._train_step

    def spy(self):
        calls.append(self.clf.num_models)
        return original(self)

    monkeypatch.setattr(Trainer, "_train_step", spy)
    return calls
