"""``dpaudit verify``: a white-box gradient-canary audit of dpaudit's own DP step (see :mod:`dpaudit.verify.check`)."""

from __future__ import annotations

from dpaudit.verify.check import run_mechanism_check

__all__ = ["run_mechanism_check"]
