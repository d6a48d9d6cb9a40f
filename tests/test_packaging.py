"""Installs are reproducible: every declared dependency is pinned, with hashes, in the lock that
`make` installs from (regenerate it with `make lock`)."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_declared_dependency_is_pinned_with_hashes_in_the_lock() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {
        m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([\w.-]+)==", lock, re.M)
    }
    assert declared <= pinned, sorted(declared - pinned)
    entries = re.findall(r"^[\w.-]+==[^\n]*\\\n((?:\s+--hash=sha256:\w+.*\n)+)", lock, re.M)
    assert len(entries) == len(re.findall(r"^[\w.-]+==", lock, re.M))
