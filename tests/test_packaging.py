"""`dpaudit` is the only top-level import name of the built wheel; the checkout (editable install, tests,
`PYTHONPATH=.`) resolves the same names to the stage folders at the repository root."""

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
def installed_wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("dpaudit-*.whl"))
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"dpaudit"}, top
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
        "assert 'gate' in build_parser().format_help()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = os.pathsep.join([str(installed_wheel), deps])
    out = subprocess.run([sys.executable, "-S", "-c", code, str(installed_wheel)], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
