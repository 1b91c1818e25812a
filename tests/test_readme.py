"""The README is a user's README (issue 13): short, and every local link and picture it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _local_links(path: Path) -> list[Path]:
    text = path.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)\)", text)
    return [path.parent / t for t in targets if not re.match(r"[a-z]+://", t)]


def test_readme_is_short_and_links_method_and_results():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    for needle in ("## Quick start", "## How to read a verdict", "## Limits", "docs/METHOD.md", "docs/RESULTS.md"):
        assert needle in text, needle


def test_every_local_link_resolves():
    for doc in (ROOT / "README.md", ROOT / "docs" / "METHOD.md", ROOT / "docs" / "RESULTS.md"):
        for target in _local_links(doc):
            assert target.exists(), f"{doc.name} links to missing {target}"
