"""Config: defaults with no file, every problem at once with its key path, the example file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.config import DEFAULT_TARGETS, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(p) for p in info.value.problems]


def test_no_file_gives_sensible_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NETPROBE_CONFIG", str(tmp_path / "absent.toml"))
    cfg = load_config()
    assert cfg.source == "(built-in defaults)"
    assert [t.target for t in cfg.targets] == [t["target"] for t in DEFAULT_TARGETS]
    gateway = cfg.targets[0]
    assert gateway.target == "gateway" and gateway.interval == 60.0 and gateway.timeout == 2.0
    assert {"1.1.1.1", "8.8.8.8"} <= {t.target for t in cfg.targets}
    assert cfg.node.resolved_id()  # the host name stands in until a node id is set
    assert cfg.mqtt.broker == ""


def test_example_config_parses_and_matches_the_defaults() -> None:
    cfg = load_config(str(ROOT / "config.example.toml"))
    assert cfg.node.id == "muba-sekayu-balai-agung-01"
    assert cfg.site.as_dict()["desa"] == "Balai Agung"
    defaults = parse_config({})
    assert [(t.kind, t.target, t.options) for t in cfg.targets] == [
        (t.kind, t.target, t.options) for t in defaults.targets
    ]


def test_three_mistakes_are_all_reported_with_paths() -> None:
    found = problems(
        {
            "node": {"id": "Balai Agung"},
            "targets": [{"kind": "icmp", "target": "1.1.1.1", "cuont": 3}, {"kind": "tcp", "target": "x", "timeout": "5"}],
        }
    )
    assert len(found) == 3, found
    assert any(p.startswith("node.id: ") and "'Balai Agung'" in p for p in found)
    assert "targets[0].cuont: unknown key; did you mean 'count'?" in found
    assert any(p.startswith("targets[1].timeout: expected a number") and "'5'" in p for p in found)


def test_unknown_section_suggests_the_close_one() -> None:
    assert problems({"mqt": {}}) == ["mqt: unknown key; did you mean 'mqtt'?"]


def test_unknown_key_without_a_close_match_lists_what_is_allowed() -> None:
    (found,) = problems({"site": {"zzz": "1"}})
    assert found.startswith("site.zzz: unknown key; allowed: desa, kabupaten, kecamatan, lat, lon, tags")


@pytest.mark.parametrize(
    "target, expected",
    [
        ({"kind": "ping", "target": "x"}, "targets[0].kind: must be one of"),
        ({"kind": "icmp"}, "targets[0].target: missing; this key is required"),
        ({"kind": "icmp", "target": "x", "count": 0}, "targets[0].count: must be at least 1 (got 0 (integer))"),
        ({"kind": "icmp", "target": "x", "count": True}, "targets[0].count: expected an integer, got True (boolean)"),
        ({"kind": "dns", "target": "x", "record": "AX"}, "targets[0].record: must be one of A, AAAA"),
        ({"kind": "icmp", "target": "x", "timeout": 90}, "targets[0].timeout: must be shorter than interval (60 s)"),
        ({"kind": "http", "target": "x", "ok_status": [200, "x"]}, "targets[0].ok_status[1]: expected an integer"),
    ],
)
def test_each_bad_value_names_its_path_and_what_is_allowed(target: dict, expected: str) -> None:
    found = problems({"targets": [target]})
    assert any(p.startswith(expected) for p in found), found


def test_duplicate_target_names_are_refused() -> None:
    found = problems({"targets": [{"kind": "icmp", "target": "a", "name": "x"}, {"kind": "tcp", "target": "b:1", "name": "x"}]})
    assert found == ["targets[1].name: 'x' is already used by targets[0]"]


def test_invalid_toml_is_one_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[node\nid = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert len(info.value.problems) == 1
    assert "invalid TOML" in info.value.summary() and str(path) in info.value.summary()


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "missing.toml"))


def test_config_digest_changes_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[node]\nid = "a"\n')
    first = load_config(str(path)).digest
    path.write_text('[node]\nid = "b"\n')
    assert first and first != load_config(str(path)).digest
    os.remove(path)
