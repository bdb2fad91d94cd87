"""docs/architecture.md names every module where it lives, so a newcomer finds each one there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"


def named_modules(text: str) -> set[str]:
    """`agent/x/` bullets and the backticked file names after them, as paths."""
    found: set[str] = set()
    for block in re.split(r"\n- \*\*", text.split("## Packages and modules", 1)[1]):
        head = re.match(r"`(agent/[a-z_/]*)`", block)
        if not head:
            continue
        folder = head.group(1)
        for sub in re.findall(r"`([a-z_]+/)` \(", block):  # a sub-package such as store/
            folder_sub = folder + sub
            for name in re.findall(r"`([a-z0-9_]+\.py)`", block.split(f"`{sub}`", 1)[1].split(")", 1)[0]):
                found.add(folder_sub + name)
        for name in re.findall(r"`([a-z0-9_]+\.py)`", re.sub(r"`[a-z_]+/` \([^)]*\)", "", block)):
            found.add(folder + name)
    return found


def test_every_module_is_named_in_the_architecture_doc() -> None:
    actual = {str(p.relative_to(ROOT)) for p in (ROOT / "agent").rglob("*.py")}
    actual = {p for p in actual if not p.endswith("/__init__.py") or p.count("/") > 1}
    actual |= {"agent/__init__.py"}
    named = named_modules(DOC.read_text())
    packages = {p for p in actual if p.endswith("/__init__.py")}
    missing = sorted(actual - named - packages)
    assert missing == [], f"add these to docs/architecture.md: {missing}"
    stale = sorted(named - actual)
    assert stale == [], f"docs/architecture.md names modules that do not exist: {stale}"


def test_every_package_has_a_line_in_the_layer_table() -> None:
    text = DOC.read_text().split("## Packages and modules", 1)[0]
    for init in (ROOT / "agent").glob("*/__init__.py"):
        assert f"`agent.{init.parent.name}`" in text, init.parent.name
