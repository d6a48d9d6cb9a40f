"""The README and docs/ stand alone: every link stays inside the repository and leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# [text](target), <http://…>, and a path in backticks that climbs out of the repository.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)|<(https?://[^>\s]+)>")
OUTSIDE_PATH = re.compile(r"`(\.\./[^`]+)`")
# Addresses of the platform itself, on this machine.
LOCAL = re.compile(r"https?://(127\.0\.0\.1|localhost)[:/]")


def test_readme_and_docs_link_only_inside_the_repository() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    assert len(pages) >= 3
    checked = 0
    for page in pages:
        text = page.read_text()
        assert not OUTSIDE_PATH.findall(text), page
        for match in LINK.finditer(text):
            target = match.group(1) or match.group(2)
            checked += 1
            if re.match(r"https?://", target):
                assert LOCAL.match(target), (page.name, target)
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), (page.name, target)
    assert checked >= 5
