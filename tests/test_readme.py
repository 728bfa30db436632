"""The README is the newcomer's page (issue 24): short, opening with the two commands, showing the shipped
policy file itself, and linking only to files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_short_and_opens_with_the_two_commands():
    assert len(README.splitlines()) <= 200
    first = re.search(r"```bash\n(.*?)```", README, re.S).group(1).splitlines()
    assert [line.split()[0] for line in first] == ["scripts/demo.sh", "scripts/test.sh"]
    assert (ROOT / "scripts/demo.sh").is_file() and (ROOT / "scripts/test.sh").is_file()


def test_the_policy_shown_is_the_shipped_file():
    block = re.search(r"```toml\n(.*?)```", README, re.S).group(1)
    assert block == (ROOT / "configs/policy.toml").read_text(encoding="utf-8")


def test_every_relative_link_and_image_exists():
    targets = re.findall(r"\]\(((?!https?:)[^)#\s]+)", README)
    assert targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing
