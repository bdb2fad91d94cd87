"""[incidents] and [notify] in collector.toml: the example loads, every problem is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collector.settings import load_collector_config, parse_collector_config
from agent.config import tomllib
from agent.schema import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "packaging" / "collector" / "incidents.example.toml"


def test_the_packaged_example_loads() -> None:
    cfg = load_collector_config(str(EXAMPLE))
    assert [g.name for g in cfg.incidents.groups] == ["hub-sekayu", "pop-bayung-lencir"]
    assert cfg.incidents.latency_limit("satellite-geo") == 1000.0 and cfg.incidents.latency_limit("x") == 400.0
    assert cfg.notify.configured() == {"webhook", "telegram", "email", "whatsapp"}
    assert [r.lang for r in cfg.notify.rules] == ["id", "id", "id"]
    assert [w.name for w in cfg.maintenance] == ["pemadaman bergilir Sekayu", "ISP works, POP Bayung Lencir"]


def test_every_problem_is_reported_at_once() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    data["incidents"].update(window=2, timezone="Mars/Base")
    data["maintenance"][0]["time_start"] = "9 pagi"
    data["notify"]["rules"][0]["to"] = ["sms:+62812", "email:nobody"]
    with pytest.raises(ConfigError) as caught:
        parse_collector_config(data, "collector.toml")
    text = caught.value.summary()
    for part in ("incidents.timezone", "maintenance[0].time_start", "'sms:+62812'", "'email:nobody'"):
        assert part in text, text


def test_what_keys_cannot_check_alone_is_checked_for_the_section() -> None:
    data = {
        "incidents": {"window": 2, "open_after": 3},
        "maintenance": [{"name": "x", "groups": ["nope"], "days": ["mon"]}],
        "notify": {"rules": [{"to": ["telegram:-100"]}]},
    }
    with pytest.raises(ConfigError) as caught:
        parse_collector_config(data)
    text = caught.value.summary()
    assert "open_after (3) must be at most window (2)" in text
    assert "no group 'nope'" in text and "a recurring window needs days, time_start and a different time_end" in text
    assert "'telegram:-100' but [notify.telegram] is not configured" in text
