"""The library names (docs/library.md) load lazily: ``import dpaudit`` imports no torch, each name resolves."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_import_dpaudit_imports_no_torch_and_names_resolve_lazily():
    code = ("import sys, dpaudit; assert 'torch' not in sys.modules and 'transformers' not in sys.modules; "
            "import dpaudit.private; assert 'torch' not in sys.modules; "
            "names = [dpaudit.make_private, dpaudit.PrivacyEngine, dpaudit.PrivateTrainer, dpaudit.export_run]; "
            "print(len(names))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "4"


def test_an_unknown_name_is_an_attribute_error():
    import dpaudit

    with pytest.raises(AttributeError, match="no_such_name"):
        dpaudit.no_such_name  # noqa: B018
