"""The one maintenance calendar (agent/collector/maintenance.py): pure, then as collector.toml declares it.

Every time here is Asia/Jakarta (WIB, UTC+7 all year, no daylight saving), the regency's
zone, so each expected figure can be counted on a paper calendar.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from agent.collector.incidents.settings import GroupSettings
from agent.collector.maintenance import Calendar, MaintenanceWindow, Place
from agent.collector.settings import CollectorConfig, parse_collector_config
from agent.config import tomllib
from agent.schema import ConfigError

ROOT = Path(__file__).resolve().parents[2]
WIB = dt.timezone(dt.timedelta(hours=7), "WIB")
HOUR = 3600.0
OCTOBER = (dt.datetime(2026, 10, 1, tzinfo=WIB).timestamp(), dt.datetime(2026, 11, 1, tzinfo=WIB).timestamp())
SEKAYU = Place("muba-sekayu-balai-agung-01", "Sekayu", "Balai Agung", "telkom")
LAIS = Place("muba-lais-tanjung-agung-01", "Lais", "Tanjung Agung", "starlink")


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=WIB).timestamp()


def calendar(*windows: dict[str, Any], groups: tuple[GroupSettings, ...] = ()) -> Calendar:
    return Calendar([MaintenanceWindow(**w) for w in windows], WIB, groups)


def hours(spans: list[tuple[float, float]]) -> float:
    return sum(b - a for a, b in spans) / HOUR


# -- one-off and recurring --------------------------------------------------------------------------
def test_a_one_off_window_covers_from_its_start_up_to_not_including_its_end() -> None:
    cal = calendar({"name": "ISP works", "start": "2026-07-01T22:00", "end": "2026-07-02T04:00+07:00"})
    assert cal.covering(SEKAYU, at("2026-07-01T21:59")) is None
    occ = cal.covering(SEKAYU, at("2026-07-01T22:00"))  # no offset: read in the calendar's zone
    assert occ is not None and occ.name == "ISP works"
    assert (occ.start, occ.end) == (at("2026-07-01T22:00"), at("2026-07-02T04:00"))
    assert cal.covering(SEKAYU, at("2026-07-02T03:59")) is not None
    assert cal.covering(SEKAYU, at("2026-07-02T04:00")) is None


def test_a_recurring_window_past_midnight_covers_the_early_hours_of_the_next_day() -> None:
    cal = calendar({"name": "night works", "days": ["fri"], "time_start": "22:00", "time_end": "04:00"})
    assert cal.covering(SEKAYU, at("2026-05-29T21:59")) is None  # Friday, before
    assert cal.covering(SEKAYU, at("2026-05-29T23:00")) is not None
    occ = cal.covering(SEKAYU, at("2026-05-30T03:59"))  # Saturday early: Friday's occurrence
    assert occ is not None and (occ.start, occ.end) == (at("2026-05-29T22:00"), at("2026-05-30T04:00"))
    assert cal.covering(SEKAYU, at("2026-05-30T04:00")) is None
    assert cal.covering(SEKAYU, at("2026-05-30T23:00")) is None  # Saturday night: not a listed day
    assert cal.covering(SEKAYU, at("2026-05-29T02:00")) is None  # Thursday's night is not listed


def test_jakarta_has_no_daylight_saving_every_occurrence_of_a_year_is_the_same_three_hours() -> None:
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    cal = calendar({"name": "pemadaman", "days": every_day, "time_start": "09:00", "time_end": "12:00"})
    year = (at("2026-01-01T00:00"), at("2027-01-01T00:00"))
    spans = cal.intervals(SEKAYU, *year)
    assert len(spans) == 365 and all(b - a == 3 * HOUR for a, b in spans)
    assert {dt.datetime.fromtimestamp(a, dt.timezone.utc).strftime("%H:%M") for a, _ in spans} == {"02:00"}


# -- who a window covers --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("coverage", "covered"),
    [
        ({}, {SEKAYU, LAIS}),  # nothing listed: every node
        ({"nodes": [LAIS.node]}, {LAIS}),
        ({"kecamatan": ["sekayu"]}, {SEKAYU}),  # names ignore case
        ({"desa": ["TANJUNG AGUNG"]}, {LAIS}),
        ({"operator": ["Telkom"]}, {SEKAYU}),
        ({"groups": ["hub-lais"]}, {LAIS}),
        ({"groups": ["hub-lais"], "operator": ["telkom"]}, {SEKAYU, LAIS}),  # lists add up
        ({"nodes": ["someone-else"]}, set()),
    ],
)
def test_a_window_covers_the_nodes_its_lists_name(coverage: dict[str, list[str]], covered: set[Place]) -> None:
    hub = GroupSettings(name="hub-lais", kecamatan=["Lais"])
    cal = calendar({"name": "w", "start": "2026-10-01T00:00", "end": "2026-10-02T00:00", **coverage}, groups=(hub,))
    inside = at("2026-10-01T12:00")
    assert {p for p in (SEKAYU, LAIS) if cal.covering(p, inside) is not None} == covered


# -- the SLA's question: the covered time in a period ----------------------------------------------
def test_a_recurring_window_is_expanded_over_a_month_and_cut_at_its_edges() -> None:
    # October 2026 starts on a Thursday: Tuesdays 6, 13, 20, 27 and Fridays 2, 9, 16, 23, 30.
    cal = calendar({"name": "pemadaman", "days": ["tue", "fri"], "time_start": "09:00", "time_end": "12:00"})
    spans = cal.intervals(SEKAYU, *OCTOBER)
    assert [dt.datetime.fromtimestamp(a, WIB).day for a, _ in spans] == [2, 6, 9, 13, 16, 20, 23, 27, 30]
    assert hours(spans) == 27
    # Wednesday 30 September 22:00 runs 2 h into October; Wednesdays 7, 14, 21, 28 give 4 h each.
    night = calendar({"name": "night", "days": ["wed"], "time_start": "22:00", "time_end": "02:00"})
    spans = night.intervals(SEKAYU, *OCTOBER)
    assert spans[0] == (OCTOBER[0], at("2026-10-01T02:00")) and hours(spans) == 2 + 4 * 4


def test_overlapping_windows_are_merged_and_counted_once() -> None:
    cal = calendar(
        {"name": "daily", "days": ["thu"], "time_start": "09:00", "time_end": "12:00"},
        {"name": "ISP works", "start": "2026-10-01T11:00", "end": "2026-10-01T14:00", "kecamatan": ["Sekayu"]},
        {"name": "adjacent", "start": "2026-10-01T14:00", "end": "2026-10-01T15:00"},
        {"name": "elsewhere", "start": "2026-10-01T16:00", "end": "2026-10-01T17:00", "kecamatan": ["Lais"]},
    )
    day = (at("2026-10-01T00:00"), at("2026-10-02T00:00"))
    assert cal.intervals(SEKAYU, *day) == [(at("2026-10-01T09:00"), at("2026-10-01T15:00"))]
    assert cal.intervals(LAIS, *day) == [
        (at("2026-10-01T09:00"), at("2026-10-01T12:00")),
        (at("2026-10-01T14:00"), at("2026-10-01T15:00")),
        (at("2026-10-01T16:00"), at("2026-10-01T17:00")),
    ]
    occ = cal.covering(SEKAYU, at("2026-10-01T11:30"))  # two windows: the engine waits for the later end
    assert occ is not None and (occ.name, occ.end) == ("ISP works", at("2026-10-01T14:00"))


def test_the_report_lists_each_window_with_its_stretches_in_the_period() -> None:
    cal = calendar(
        {"name": "pemadaman", "days": ["sun"], "time_start": "23:30", "time_end": "00:30"},
        {"name": "last year", "start": "2025-10-01T00:00", "end": "2025-10-02T00:00"},
    )
    listed = cal.windows_in(*OCTOBER)
    assert [(w.name, len(spans)) for w, spans in listed] == [("pemadaman", 4)]  # Sundays 4, 11, 18, 25


# -- as collector.toml declares it ----------------------------------------------------------------
NEW_FORM = """
[[incidents.groups]]
name = "pop-bayung-lencir"
desa = ["Muara Merang"]

[[maintenance]]
name = "pemadaman bergilir Sekayu"
kecamatan = ["Sekayu"]
days = ["tue", "fri"]
time_start = "09:00"
time_end = "12:00"

[[maintenance]]
name = "ISP works, POP Bayung Lencir"
groups = ["pop-bayung-lencir"]
start = "2026-10-15T22:00:00+07:00"
end = "2026-10-16T04:00:00+07:00"

[[maintenance]]
name = "fiber splice"
note = "fiber splice"
operator = ["telkom"]
start = "2026-10-20T01:00:00"
end = "2026-10-20T03:00:00"
"""
OLD_FORM = """
[[incidents.groups]]
name = "pop-bayung-lencir"
desa = ["Muara Merang"]

[[incidents.maintenance]]
name = "pemadaman bergilir Sekayu"
kecamatan = ["Sekayu"]
days = ["tue", "fri"]
time_start = "09:00"
time_end = "12:00"

[[incidents.maintenance]]
name = "ISP works, POP Bayung Lencir"
groups = ["pop-bayung-lencir"]
start = "2026-10-15T22:00:00+07:00"
end = "2026-10-16T04:00:00+07:00"

[[sla.maintenance]]
start = "2026-10-20T01:00:00"
end = "2026-10-20T03:00:00"
scope = "operator:telkom"
note = "fiber splice"
"""


def config(text: str) -> CollectorConfig:
    return parse_collector_config(tomllib.loads(text), "collector.toml")


def test_the_old_tables_load_into_the_same_calendar_and_say_once_they_are_deprecated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    new = config(NEW_FORM)
    with caplog.at_level(logging.WARNING):
        old = config(OLD_FORM)
    assert sorted(old.maintenance, key=repr) == sorted(new.maintenance, key=repr)
    warned = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warned) == 2 and all("[[maintenance]]" in m for m in warned)
    assert any("[[sla.maintenance]]" in m for m in warned) and any("[[incidents.maintenance]]" in m for m in warned)
    muara = Place("muba-bayung-lencir-muara-merang-01", "Bayung Lencir", "Muara Merang", "indosat")
    for place, expected_hours in ((SEKAYU, 27 + 2), (muara, 6), (LAIS, 0)):
        assert hours(old.calendar().intervals(place, *OCTOBER)) == expected_hours, place
        assert old.calendar().intervals(place, *OCTOBER) == new.calendar().intervals(place, *OCTOBER)


def test_times_without_an_offset_are_read_in_the_web_timezone() -> None:
    cfg = config(NEW_FORM + '[web]\ntimezone = "Asia/Makassar"\n')  # WITA, UTC+8
    occ = cfg.calendar().covering(SEKAYU, at("2026-10-20T00:30"))  # 01:30 WITA
    assert occ is not None and occ.start == dt.datetime(2026, 10, 19, 17, 0, tzinfo=dt.timezone.utc).timestamp()


def test_every_problem_of_every_window_is_reported_at_once_with_its_key_path() -> None:
    bad = """
[[incidents.groups]]
name = "hub-sekayu"
kecamatan = ["Sekayu"]
[[maintenance]]
name = "bad date"
start = "2026-13-01T00:00"
end = "2026-12-01T00:00"
[[maintenance]]
name = "backwards"
start = "2026-10-02T00:00"
end = "2026-10-01T00:00"
[[maintenance]]
name = "bad days and hours"
days = ["monday", "fri"]
time_start = "24:00"
time_end = "9:00"
[[maintenance]]
name = "unknown group"
groups = ["hub-lais"]
days = ["fri"]
time_start = "09:00"
time_end = "09:00"
[[maintenance]]
note = "no name, no times"
[[sla.maintenance]]
start = "2026-10-01T00:00"
end = "2026-10-02T00:00"
scope = "village:Kayuara"
[[incidents.maintenance]]
name = "old"
start = "2026-10-01T00:00"
"""
    with pytest.raises(ConfigError) as caught:
        config(bad)
    lines = caught.value.summary().splitlines()
    expected = [
        "maintenance[0].start: use an ISO 8601 date-time",
        "maintenance[1].end: must be after start",
        "maintenance[2].days: must be one of mon, tue, wed, thu, fri, sat, sun",
        "maintenance[2].time_start: use HH:MM from 00:00 to 23:59",
        "maintenance[2].time_end: use HH:MM",
        "maintenance[3].groups: no group 'hub-lais' in [[incidents.groups]]",
        "maintenance[3]: a recurring window needs days, time_start and a different time_end",
        "maintenance[4].name: missing; this key is required",
        "sla.maintenance[0].scope: expected",
        "incidents.maintenance[0]: a one-off window needs both start and end",
    ]
    for part in expected:
        assert any(part in line for line in lines), (part, lines)
    assert all(line.startswith("collector.toml: ") and "Traceback" not in line for line in lines)


def test_the_packaged_collector_toml_loads_with_its_commented_windows_switched_on() -> None:
    from tests.test_docs import uncommented

    shipped = ROOT / "packaging" / "collector" / "collector.toml"
    cfg = config(uncommented(shipped.read_text(encoding="utf-8")))
    assert [w.name for w in cfg.maintenance] == ["pemadaman bergilir Sekayu", "fiber splice"]
    assert hours(cfg.calendar().intervals(SEKAYU, *OCTOBER)) == 27  # telkom's splice is in November
