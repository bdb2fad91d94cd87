"""[incidents] and [notify] in collector.toml: the example loads, every problem is reported at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.collector.incidents.maintenance import Window
from agent.collector.incidents.settings import MaintenanceSettings, load_zone
from agent.collector.settings import load_collector_config, parse_collector_config
from agent.config import tomllib
from agent.schema import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "packaging" / "collector" / "incidents.example.toml"
WIB = load_zone("Asia/Jakarta")


def test_the_packaged_example_loads() -> None:
    cfg = load_collector_config(str(EXAMPLE))
    assert [g.name for g in cfg.incidents.groups] == ["hub-sekayu", "pop-bayung-lencir"]
    assert cfg.incidents.latency_limit("satellite-geo") == 1000.0 and cfg.incidents.latency_limit("x") == 400.0
    assert cfg.notify.configured() == {"webhook", "telegram", "email", "whatsapp"}
    assert [r.lang for r in cfg.notify.rules] == ["id", "id", "id"]


def test_every_problem_is_reported_at_once() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    data["incidents"].update(window=2, timezone="Mars/Base")
    data["incidents"]["maintenance"][0]["time_start"] = "9 pagi"
    data["notify"]["rules"][0]["to"] = ["sms:+62812", "email:nobody"]
    with pytest.raises(ConfigError) as caught:
        parse_collector_config(data, "collector.toml")
    text = caught.value.summary()
    for part in ("incidents.timezone", "incidents.maintenance[0].time_start", "'sms:+62812'", "'email:nobody'"):
        assert part in text, text


def test_what_keys_cannot_check_alone_is_checked_for_the_section() -> None:
    data = {
        "incidents": {
            "window": 2,
            "open_after": 3,
            "maintenance": [{"name": "x", "groups": ["nope"], "days": ["mon"]}],
        },
        "notify": {"rules": [{"to": ["telegram:-100"]}]},
    }
    with pytest.raises(ConfigError) as caught:
        parse_collector_config(data)
    text = caught.value.summary()
    assert "open_after (3) must be at most window (2)" in text
    assert "no group 'nope'" in text and "a recurring window needs days, time_start and a different time_end" in text
    assert "'telegram:-100' but [notify.telegram] is not configured" in text


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=WIB).timestamp()


def test_a_recurring_window_past_midnight_covers_the_early_hours_of_the_next_day() -> None:
    w = Window.of(MaintenanceSettings(name="night", kecamatan=["Lais"], days=["fri"], time_start="22:00",
                                      time_end="04:00"), WIB)  # fmt: skip
    assert w.occurrence(at("2026-05-29T23:00")) is not None  # Friday
    occ = w.occurrence(at("2026-05-30T03:59"))  # Saturday early: Friday's window
    assert occ is not None and occ.end == at("2026-05-30T04:00")
    assert w.occurrence(at("2026-05-30T04:00")) is None and w.occurrence(at("2026-05-30T23:00")) is None
    assert w.covers("any-node", "lais", ()) and not w.covers("any-node", "Sekayu", ())


def test_a_one_off_window_without_an_offset_is_read_in_the_configured_zone() -> None:
    w = Window.of(MaintenanceSettings(name="ISP", nodes=["n1"], start="2026-07-01T22:00", end="2026-07-02T04:00"), WIB)
    assert w.start == at("2026-07-01T22:00") and w.occurrence(at("2026-07-02T03:00")) is not None
