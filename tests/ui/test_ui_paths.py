"""The two path guards on their own: client file names reduced to one safe component, typed paths kept
inside the allowed roots (``..`` and links out refused, links within allowed)."""

from __future__ import annotations

import pytest

from tests.ui._server import needs_ui

needs_ui()

from dpaudit.ui.security import safe_filename, under_roots  # noqa: E402


@pytest.mark.parametrize("name, expected", [
    ("data.csv", "data.csv"), ("../../etc/passwd", "passwd"), ("..\\..\\win.ini", "win.ini"),
    (".hidden.csv", "hidden.csv"), ("my data (1).csv", "my_data_1_.csv"), ("", "fallback.csv"),
    ("....", "fallback.csv"), ("a" * 200 + ".csv", "a" * 76 + ".csv"),
])
def test_safe_filename(name, expected):
    assert safe_filename(name, default="fallback.csv") == expected


def test_under_roots(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "models" / "m").mkdir(parents=True)
    outside.mkdir()
    (root / "out").symlink_to(outside, target_is_directory=True)
    (root / "in").symlink_to(root / "models", target_is_directory=True)
    assert under_roots(str(root / "models" / "m"), [root]) == (root / "models" / "m").resolve()
    assert under_roots(str(root / "in" / "m"), [root]) == (root / "models" / "m").resolve()
    for bad in (str(root / ".." / "outside"), str(root / "out"), "/etc", str(tmp_path)):
        with pytest.raises(ValueError, match="outside the allowed roots"):
            under_roots(bad, [root])
    with pytest.raises(ValueError, match="does not exist"):
        under_roots(str(root / "nope"), [root])
    with pytest.raises(ValueError, match="outside the allowed roots"):
        under_roots(str(root / "models"), [])
