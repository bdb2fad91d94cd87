"""The one direction of dependency inside `agent/` (docs/architecture.md), checked on the source.

Every `agent.*` import, at module level or inside a function (only `if TYPE_CHECKING:` blocks
are left out: they never run), must point to the importer's own layer or one below it. Probe
plugins are leaves: outside `agent/probes/`, only the registry (`agent.probes`) and the
probe contract (`agent.probes.base`) may be imported.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional

import pytest

AGENT = Path(__file__).resolve().parents[2] / "agent"

# Bottom to top. A module belongs to the first prefix that matches it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("agent", "agent.clock", "agent.stats", "agent.schema", "agent.i18n", "agent.reading", "agent.optional"),
    ("agent.net",),
    ("agent.linktype", "agent.throughput", "agent.usage"),
    ("agent.probes",),
    ("agent.config", "agent.runner"),
    ("agent.diagnose", "agent.daemon", "agent.publish", "agent.collector"),
    ("agent.cli", "agent.__main__"),
)
PLUGIN_CONTRACT = ("agent.probes", "agent.probes.base")


def layer_of(module: str) -> int:
    best: Optional[tuple[int, int]] = None  # (prefix length, layer)
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), level)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return best[1]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, imported agent module) for every import that can run."""
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: list[tuple[int, str]] = []
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "agent"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if base.split(".")[0] != "agent":
                continue
            for alias in node.names:  # `from agent.x import y` may import the module agent.x.y
                candidate = f"{base}.{alias.name}"
                file = root.parent / Path(*candidate.split("."))
                is_module = file.with_suffix(".py").exists() or (file / "__init__.py").exists()
                found.append((node.lineno, candidate if is_module else base))
    return found


def violations(root: Path = AGENT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        me = module_name(path, root)
        for line, target in imports_of(path, root):
            where = f"{path.relative_to(root.parent)}:{line}: {me} imports {target}"
            if layer_of(target) > layer_of(me):
                found.append(f"{where} (layer {layer_of(target)} above {layer_of(me)})")
            elif (
                target.startswith("agent.probes.")
                and target not in PLUGIN_CONTRACT
                and not me.startswith("agent.probes")
            ):
                found.append(f"{where} (a probe plugin: use the registry, agent.probes.get)")
    return sorted(set(found))


def test_every_import_inside_agent_points_down_or_sideways() -> None:
    assert violations() == []


def test_every_agent_module_has_a_layer() -> None:
    for path in AGENT.rglob("*.py"):
        layer_of(module_name(path, AGENT))


@pytest.mark.parametrize(
    ("module", "source", "why"),
    [
        ("reading/model.py", "from agent.config import Config\n", "layer 4 above 0"),
        ("linktype/classify.py", "def f():\n    from agent.probes import icmp\n", "layer 3 above 2"),
        ("diagnose/run.py", "from agent.probes.link import remember\n", "a probe plugin"),
    ],
)
def test_the_check_catches_an_upward_import(tmp_path: Path, module: str, source: str, why: str) -> None:
    fake = tmp_path / "agent"
    (fake / module).parent.mkdir(parents=True)
    (fake / module).write_text(source)
    for real in ("config.py", "probes/__init__.py", "probes/icmp.py", "probes/link.py"):
        (fake / real).parent.mkdir(parents=True, exist_ok=True)
        (fake / real).touch()
    found = violations(fake)
    assert len(found) == 1 and why in found[0], found


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    path = tmp_path / "agent" / "reading" / "model.py"
    path.parent.mkdir(parents=True)
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agent.config import Config\n")
    assert imports_of(path, tmp_path / "agent") == []
