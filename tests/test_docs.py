"""The docs agree with the code: generated sections, the example config, the man page, links.

What the code declares (settings, probes, commands, exit codes, the Reading's keys) is the
truth; these tests fail when README.md, docs/, config.example.toml or packaging/netprobe.1
drift from it. `tools/gen-reference` rewrites the generated parts (see docs/testing.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.machinery
import importlib.util
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import pytest

from agent.config import Config, TargetConfig, parse_config, tomllib

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT / "tools" / "gen-reference"
EXAMPLE = ROOT / "config.example.toml"
MAN = ROOT / "packaging" / "netprobe.1"
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Written by others in the same change; links to them are checked once they exist.
WRITTEN_ELSEWHERE = ("docs/install.md", "docs/security.md", "docs/architecture.md")


def gen_reference() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("gen_reference", str(GEN))
    spec = importlib.util.spec_from_loader("gen_reference", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def commands() -> set[str]:
    from agent.cli import build_parser

    parser = build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert subs, "the parser has no commands"
    return set(subs[0].choices)


def probes() -> dict[str, Any]:
    from agent.probes import registry

    return registry()


# --- (a) the generated sections ------------------------------------------------------------


def test_generated_sections_are_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        f"{proc.stderr}\n{proc.stdout[-4000:]}\nrun: .venv/bin/python tools/gen-reference, and commit docs/"
    )


def test_every_field_a_probe_documents_appears_in_the_code() -> None:
    # The field lists in docs/reading.md come from the probes' docstrings; a docstring that
    # names a field no code writes any more is caught here.
    gen = gen_reference()
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "agent").rglob("*.py")))
    stale = []
    for kind, probe in probes().items():
        module = gen.probe_module(probe)
        text = gen.fields_paragraph(module)
        code = source.replace(module.__doc__ or "", "")
        braces = re.compile(r"[a-z][a-z0-9_]*\{([^}]*)\}([a-z0-9_]*)")
        for match in braces.finditer(text):  # rtt_{min,avg}_ms: the code builds these from parts
            stale += [
                f"{kind}: {match.group(0)} ({a})" for a in match.group(1).split(",") if a + match.group(2) not in code
            ]
        for name in set(re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", braces.sub(" ", text))):
            if name not in code:
                stale.append(f"{kind}: {name}")
    assert not stale, f"documented in a probe's docstring, written by no code: {sorted(stale)}"


# --- (b) config.example.toml against the code's settings -----------------------------------

HEADER_OR_KEY = re.compile(r"^#\s?\s*(\[\[?[A-Za-z0-9_.]+\]\]?|[A-Za-z_][A-Za-z0-9_]*\s*=.*)$")


def is_toml(fragment: str) -> bool:
    try:
        tomllib.loads(fragment)
    except tomllib.TOMLDecodeError:
        return False
    return True


def uncommented(text: str) -> str:
    """The example with its commented-out tables and `# key = value` lines made live."""
    out = []
    for line in text.splitlines():
        match = HEADER_OR_KEY.match(line)
        out.append(match.group(1) if match and is_toml(match.group(1)) else line)
    return "\n".join(out) + "\n"


def settings(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("internal")}


def item_type(tp: Any) -> Optional[type]:
    if typing.get_origin(tp) in (list, tuple):
        args = typing.get_args(tp)
        if args and dataclasses.is_dataclass(args[0]):
            return typing.cast(type, args[0])
    return None


def declared(cls: type, prefix: str = "") -> set[str]:
    """Every setting's dotted path under `cls`; `targets` per kind: targets.<key>, targets.<kind>.<option>."""
    hints = typing.get_type_hints(cls)
    paths = set()
    for name in settings(cls):
        tp, path = hints[name], f"{prefix}{name}"
        if cls is Config and name == "targets":
            paths |= {f"targets.{k}" for k in settings(TargetConfig)}
            for kind, probe in probes().items():
                paths |= {f"targets.{kind}.{k}" for k in settings(probe.options)}
        elif dataclasses.is_dataclass(tp):
            paths |= declared(tp, path + ".")  # type: ignore[arg-type]
        elif item_type(tp) is not None:
            paths |= declared(item_type(tp), path + ".")  # type: ignore[arg-type]
        else:
            paths.add(path)
    return paths


def walk(cls: type, data: dict[str, Any], prefix: str, found: set[str], unknown: list[str]) -> None:
    """Record each key of `data` as a path, and every key the dataclass does not declare."""
    hints = typing.get_type_hints(cls)
    fields = settings(cls)
    for key, value in data.items():
        path = f"{prefix}{key}"
        if cls is Config and key == "targets":
            for i, target in enumerate(value):
                options = probes()[target["kind"]].options
                for k in target:
                    if k in settings(TargetConfig):
                        found.add(f"targets.{k}")
                    elif k in settings(options):
                        found.add(f"targets.{target['kind']}.{k}")
                    else:
                        unknown.append(f"targets[{i}].{k}")
            continue
        if key not in fields:
            unknown.append(path)
            continue
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            walk(tp, value, path + ".", found, unknown)  # type: ignore[arg-type]
        elif item_type(tp) is not None:
            for item in value:
                walk(item_type(tp), item, path + ".", found, unknown)  # type: ignore[arg-type]
        else:
            found.add(path)


def test_the_example_config_loads_as_it_is() -> None:
    cfg = parse_config(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")), source=str(EXAMPLE))
    assert cfg.node.id and cfg.targets


def test_the_example_config_loads_with_every_commented_key_switched_on() -> None:
    # The commented-out examples must be right too: the same loader checks them.
    parse_config(tomllib.loads(uncommented(EXAMPLE.read_text(encoding="utf-8"))), source="(uncommented example)")


def test_every_key_in_the_example_exists_in_the_code() -> None:
    found: set[str] = set()
    unknown: list[str] = []
    walk(Config, tomllib.loads(uncommented(EXAMPLE.read_text(encoding="utf-8"))), "", found, unknown)
    assert not unknown, f"config.example.toml has keys the code does not declare: {unknown}"


def test_every_setting_in_the_code_appears_in_the_example() -> None:
    found: set[str] = set()
    walk(Config, tomllib.loads(uncommented(EXAMPLE.read_text(encoding="utf-8"))), "", found, [])
    missing = sorted(declared(Config) - found)
    assert not missing, f"config.example.toml lacks (add them, commented out, with their help text): {missing}"


def test_the_uncommenting_sees_commented_tables_and_keys() -> None:
    text = '[a]\nx = 1\n# y = "z"   # help\n# [[b]]\n# c = [1, 2]\n# prose, not toml = x\n#   lat = -2.5\n'
    assert tomllib.loads(uncommented(text)) == {"a": {"x": 1, "y": "z"}, "b": [{"c": [1, 2], "lat": -2.5}]}


# --- (c) the command line in the man page and the README -----------------------------------


def man_section(name: str) -> list[str]:
    lines = MAN.read_text(encoding="utf-8").splitlines()
    start = lines.index(f".SH {name}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(".SH ")), len(lines))
    return lines[start + 1 : end]


def groff_text(line: str) -> str:
    """A macro line's words, without the macro, quotes and font escapes."""
    line = re.sub(r"^\.[A-Z]{1,2}\s*", "", line)
    line = re.sub(r"\\f[BIRP]", "", line).replace("\\-", "-").replace('"', " ")
    return line.strip()


def test_the_man_page_lists_every_command() -> None:
    section = man_section("COMMANDS")
    listed = {groff_text(section[i + 1]).split()[0] for i, line in enumerate(section[:-1]) if line == ".TP"}
    assert listed == commands(), f"packaging/netprobe.1 COMMANDS: {sorted(listed)}; the parser: {sorted(commands())}"


def test_the_readme_command_table_lists_every_command() -> None:
    rows = re.findall(r"^\| `netprobe ([a-z-]+)", README.read_text(encoding="utf-8"), re.M)
    assert set(rows) == commands(), f"README.md's command table: {sorted(rows)}; the parser: {sorted(commands())}"


def test_every_exit_code_is_documented_in_the_readme_and_the_man_page() -> None:
    exitcodes = pytest.importorskip("agent.cli.exitcodes")
    codes = set(exitcodes.DOCUMENTED)
    readme = re.search(r"^Exit codes:.*?(?:\n\n|\Z)", README.read_text(encoding="utf-8"), re.M | re.S)
    assert readme, "README.md has no 'Exit codes:' line"
    man = " ".join(man_section("EXIT STATUS"))
    for where, text in (("README.md", readme.group(0)), ("packaging/netprobe.1", man)):
        said = {int(n) for n in re.findall(r"\b(\d+) [a-z]", text)}
        assert said == codes, f"{where} documents exit codes {sorted(said)}; the code: {sorted(codes)}"


@pytest.mark.skipif(shutil.which("groff") is None, reason="needs groff (apt-get install groff)")
def test_the_man_page_is_valid_groff() -> None:
    proc = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


# --- (d) no notes from outside the repository ----------------------------------------------


def test_nothing_points_at_notes_outside_the_repository() -> None:
    files = [README, *[p for d in ("agent", "packaging", "systemd", "docs") for p in (ROOT / d).rglob("*")]]
    found = []
    for path in files:
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if "shared/notes" in line or "../shared" in line:
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "the notes are not part of the repository; say it here instead:\n" + "\n".join(found)


# --- the docs' own facts: the Reading, error codes, paths and links ------------------------


def test_the_reading_key_table_is_the_contract() -> None:
    from agent.reading.model import Reading

    text = (ROOT / "docs" / "reading.md").read_text(encoding="utf-8")
    table = text[text.index("| key | meaning |") :].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \|", table, re.M)
    keys = {k.strip("`") for row in rows for k in row.split(", ")}
    assert keys == {f.name for f in dataclasses.fields(Reading)}


def test_every_error_code_is_documented() -> None:
    from agent.reading import model

    codes = {v for k, v in vars(model).items() if k.isupper() and isinstance(v, str) and re.fullmatch(r"[a-z_]+", v)}
    text = (ROOT / "docs" / "reading.md").read_text(encoding="utf-8")
    table = text[text.index("## Error codes") : text.index("## ", text.index("## Error codes") + 3)]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))
    assert documented == codes, f"docs/reading.md: {sorted(documented)}; agent/reading/model.py: {sorted(codes)}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not re.match(r"^#{1,6} ", line):
            continue
        base = slug(line.lstrip("#"))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_every_link_and_path_in_the_docs_exists() -> None:
    bad = []
    for doc in [README, *DOCS]:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
            if not path.exists():
                if rel not in WRITTEN_ELSEWHERE:
                    bad.append(f"{doc.name}: link to {target}: no such file")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                bad.append(f"{doc.name}: link to {target}: no such heading")
        for named in re.findall(r"`((?:agent|tests|packaging|systemd|tools|docs)/[^`\s]*)`", text):
            if not re.search(r"[*{<$]", named) and not (ROOT / named).exists() and named not in WRITTEN_ELSEWHERE:
                bad.append(f"{doc.name}: names {named}, which does not exist")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", WRITTEN_ELSEWHERE)
def test_the_docs_written_elsewhere_exist(name: str) -> None:
    if not (ROOT / name).exists():
        pytest.skip(f"{name} is not written yet; README.md and docs/ link to it")
