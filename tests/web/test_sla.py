"""The SLA rules (docs/sla.md): the pure arithmetic, then a month placed by hand in a real database.

The month (October 2026, WIB) has outages, a maintenance window per provider and
one per node, a weekly one past midnight, a power cut (a new boot after a silent gap),
a gap without evidence, a node commissioned mid-month and one that went quiet before
the month's end.
`netprobe report` must give the availability computed by hand, to 0.01 %.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.collector import sla
from agent.collector.sla import DOWN, OFF, UNKNOWN, UP, Sample, Segment
from agent.collector.store import open_store
from agent.reading.validate import Record
from tests.fixtures.collector import ROOT, split_pg

WIB = dt.timezone(dt.timedelta(hours=7))
START = dt.datetime(2026, 10, 1, tzinfo=WIB).timestamp()
MIN = 60.0
DAY = 86400.0
MONTH_MIN = 31 * 24 * 60  # 44,640 minutes in October


def at(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 10, day, hour, minute, tzinfo=WIB).timestamp()


# -- the arithmetic --------------------------------------------------------------------------
def test_a_public_target_answering_is_up_none_answering_is_down_no_reading_is_unknown() -> None:
    samples = [Sample(0, "a", True), Sample(0, "b", False), Sample(300, "a", False), Sample(300, "b", False),
               Sample(600, "a", True), Sample(2000, "a", True)]  # fmt: skip
    segs = sla.status_segments(samples, hold_s=300)
    assert [(s.start, s.stop, s.status) for s in segs] == [
        (0, 300, UP), (300, 600, DOWN), (600, 900, UP), (900, 2000, UNKNOWN), (2000, 2300, UP)
    ]  # fmt: skip


def test_one_target_failing_while_another_answers_is_still_up() -> None:
    samples = [Sample(t, "1.1.1.1", False) for t in range(0, 3600, 60)]
    samples += [Sample(t + 30, "8.8.8.8", True) for t in range(0, 3600, 60)]
    segs = sla.status_segments(samples, hold_s=300)
    assert [s.status for s in segs] == [DOWN, UP] and segs[0].stop == 30  # before the first answer


def test_a_gap_followed_by_a_new_boot_is_a_power_cut_the_same_boot_is_unknown() -> None:
    samples = [Sample(0, "a", True, "b1"), Sample(1000, "a", True, "b1"), Sample(5000, "a", True, "b2")]
    segs = sla.mark_power_off(sla.status_segments(samples, 300))
    assert [(s.start, s.stop, s.status) for s in segs] == [
        (0, 300, UP), (300, 1000, UNKNOWN), (1000, 1300, UP), (1300, 5000, OFF), (5000, 5300, UP)
    ]  # fmt: skip
    # A hole between stored segments (a rebuilt tail) counts the same way.
    holes = sla.mark_power_off([Segment(0, 300, UP, "b1"), Segment(900, 1200, UP, "b2")])
    assert [(s.start, s.stop, s.status) for s in holes] == [(0, 300, UP), (300, 900, OFF), (900, 1200, UP)]


def test_rebuilding_the_tail_from_any_time_gives_the_same_segments() -> None:
    samples = [Sample(t, "a", (t // 600) % 3 != 0, "b1") for t in range(0, 20000, 60)]
    whole = sla.status_segments(samples, 300)
    cut = 7321.0
    head = [s if s.stop <= cut else Segment(s.start, cut, s.status, s.boot) for s in whole if s.start < cut]
    tail = sla.status_segments([s for s in samples if s.ts >= cut - 300], 300, since=cut)
    glued = [*head[:-1], Segment(head[-1].start, tail[0].stop, tail[0].status, tail[0].boot), *tail[1:]]
    assert glued == whole


def test_maintenance_wins_over_off_off_over_measured_and_uncovered_time_is_unknown() -> None:
    segs = [Segment(0, 100, UP, "b"), Segment(100, 200, DOWN, "b"), Segment(200, 300, OFF, "b")]
    t = sla.tally(segs, 0, 400, maintenance=[(150, 250)], power=[(50, 80)])
    assert (t.up_s, t.down_s, t.off_s, t.maintenance_s, t.unknown_s) == (70, 50, 80, 100, 100)
    assert t.availability == pytest.approx(70 / 120)
    assert t.bounds == pytest.approx((70 / 220, 170 / 220))


def test_shortfall_is_what_the_contract_owed_beyond_what_was_delivered() -> None:
    t = sla.Tally(up_s=9900 * MIN, down_s=100 * MIN)
    short = sla.shortfall(t, sla.Contract(99.5, None))
    assert short["met"] is False and short["shortfall_pct"] == pytest.approx(0.5)
    assert short["shortfall_min"] == pytest.approx(50.0)
    assert sla.shortfall(t, sla.Contract(98.0, None))["met"] is True
    assert sla.shortfall(t, sla.Contract(None, None))["met"] is None


# -- a month by hand -------------------------------------------------------------------------
NODES = {  # node: (kecamatan, desa, operator)
    "muba-sekayu-balai-agung-01": ("Sekayu", "Balai Agung", "telkom"),
    "muba-lais-tanjung-agung-01": ("Lais", "Tanjung Agung", "telkom"),
    "muba-sekayu-kayuara-01": ("Sekayu", "Kayuara", "starlink"),
    "muba-lalan-bumi-agung-01": ("Lalan", "Bumi Agung", "starlink"),
    "muba-babat-toman-sugi-waras-01": ("Babat Toman", "Sugi Waras", "indosat"),
}
A, B, C, D, E = NODES


def plan(node: str, t: float) -> tuple[bool, dict[str, bool], str]:
    """(a reading at t?, target -> answered, boot) for each node's scripted month."""
    if node == A:
        down = at(10, 8) <= t < at(10, 10) or at(20, 1) <= t < at(20, 2)  # an outage; down in maintenance too
        return True, {"1.1.1.1": not down}, "b1"
    if node == B:
        if at(15, 12) <= t < at(15, 18) or at(25, 0) <= t < at(25, 3):
            return False, {}, ""  # a power cut, then (same boot later) a gap without evidence
        return True, {"1.1.1.1": True}, "b1" if t < at(15, 18) else "b2"
    if node == C:
        if t < at(5, 0):
            return False, {}, ""  # not yet installed
        gateway_only = at(8, 0) <= t < at(8, 0, 30)
        one_target_down = at(9, 0) <= t < at(10, 0)
        return True, {"1.1.1.1": not gateway_only and not one_target_down, "8.8.8.8": not gateway_only}, "b1"
    if node == E:  # down Sunday 11th 23:00 to Monday 01:00 (the weekly window covers 23:30-00:30), and 14th 10-11
        down = at(11, 23) <= t < at(12, 1) or at(14, 10) <= t < at(14, 11)
        return True, {"1.1.1.1": not down}, "b1"
    if t > at(31, 20):
        return False, {}, ""  # quiet from 20:05 on
    down = at(12, 0) <= t < at(12, 1) or at(3, 10) <= t < at(3, 11)
    return True, {"1.1.1.1": not down}, "b1"


EXPECTED = {  # minutes: up, down, unknown, off, maintenance
    A: (MONTH_MIN - 240, 120, 0, 0, 120),
    B: (MONTH_MIN - 660, 0, 180, 360, 120),
    C: (MONTH_MIN - 5760 - 30, 30, 5760, 0, 0),
    D: (MONTH_MIN - 355, 60, 235, 0, 60),
    # Sundays 4, 11, 18, 25, 23:30-00:30: 240 min excluded, the 60 down inside them too; 60 + 60 down counted.
    E: (MONTH_MIN - 360, 120, 0, 0, 240),
}
CONFIG = f"""
[fleet]
interval_s = 300.0
[web]
timezone = "Asia/Jakarta"
[[maintenance]]
name = "fiber splice"
operator = ["telkom"]
start = "2026-10-20T01:00:00+07:00"
end = "2026-10-20T03:00:00+07:00"
note = "announced"
[[maintenance]]
name = "pemadaman bergilir"
kecamatan = ["Babat Toman"]
days = ["sun"]
time_start = "23:30"
time_end = "00:30"
[[sla.maintenance]]  # the old form still loads, into the same calendar
start = "2026-10-03T10:00:00"
end = "2026-10-03T11:00:00"
scope = "node:{D}"
[sla.providers.telkom]
availability_pct = 99.9
speed_mbps = 20.0
[sla.providers.starlink]
availability_pct = 99.5
"""


def fill_month(store: Any) -> None:
    records = []
    for node, (kec, desa, operator) in NODES.items():
        site = {"kabupaten": "Musi Banyuasin", "kecamatan": kec, "desa": desa, "operator": operator,
                "contract_mbps": "20" if operator == "telkom" else "50"}  # fmt: skip
        seq = 0
        for k in range(MONTH_MIN // 5):
            t = START + k * 300.0
            taken, targets, boot = plan(node, t)
            if not taken:
                continue
            for target, ok in {"gateway": True, **targets}.items():
                seq += 1
                fields = {"sent": 5, "received": 5 if ok else 0, "loss_pct": 0.0 if ok else 100.0}
                if ok:
                    fields["rtt_p50_ms"] = 20.0 + (k % 7)
                records.append(Record(f"{node}-{seq}", node, site, seq, "icmp", target, t, True, t - START, boot, 500.0,
                                      ok, None if ok else "timeout", None if ok else "no reply", fields))  # fmt: skip
    for k in range(0, len(records), 5000):
        store.write(records[k : k + 5000])


def report(conf: Path, fmt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "report", "-c", str(conf), "--month", "2026-10", "--format", fmt, *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def month_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    conf = tmp_path / "collector.toml"
    if request.param == "sqlite":
        store = open_store(path=str(tmp_path / "c.db"))
        conf.write_text(f'[store]\npath = "{tmp_path / "c.db"}"\n' + CONFIG)
    else:
        dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
        store = open_store(dsn=dsn, pg_schema=schema)
        conf.write_text(f'[store]\ndsn = "{dsn}"\npg_schema = "{schema}"\n' + CONFIG)
    fill_month(store)
    store.close()
    return conf


def minutes(item: dict[str, Any]) -> tuple[float, ...]:
    return tuple(round(item[f"{k}_s"] / 60.0, 3) for k in ("up", "down", "unknown", "off", "maintenance"))


@pytest.mark.slow
def test_the_month_report_matches_the_hand_computed_availability(month_db: Path) -> None:
    done = report(month_db, "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    nodes = {n["name"]: n for n in data["nodes"]}
    for node, (up, down, unknown, off, maint) in EXPECTED.items():
        assert minutes(nodes[node]) == (up, down, unknown, off, maint), node
        assert nodes[node]["availability_pct"] == pytest.approx(100 * up / (up + down), abs=0.01), node
    providers = {p["name"]: p for p in data["providers"]}
    telkom_up, telkom_down = EXPECTED[A][0] + EXPECTED[B][0], EXPECTED[A][1] + EXPECTED[B][1]
    assert providers["telkom"]["availability_pct"] == pytest.approx(
        100 * telkom_up / (telkom_up + telkom_down), abs=0.01
    )
    assert providers["telkom"]["met"] is False  # 99.864 % against 99.9 %
    owed = 0.999 * (telkom_up + telkom_down) - telkom_up
    assert providers["telkom"]["shortfall_min"] == pytest.approx(owed, abs=0.1)
    star_up, star_down = EXPECTED[C][0] + EXPECTED[D][0], EXPECTED[C][1] + EXPECTED[D][1]
    assert providers["starlink"]["availability_pct"] == pytest.approx(100 * star_up / (star_up + star_down), abs=0.01)
    assert providers["starlink"]["met"] is True
    assert providers["starlink"]["unknown_s"] / 60 == pytest.approx(5760 + 235)
    kec = {k["name"]: k for k in data["kecamatans"]}
    assert kec["Sekayu"]["nodes"] == 2 and minutes(kec["Sekayu"])[0] == EXPECTED[A][0] + EXPECTED[C][0]
    assert data["rules"]["power_cuts_from"] in ("boots", "incidents+boots")
    assert [(m["name"], m["covers"], len(m["occurrences"])) for m in data["maintenance"]] == [
        ("fiber splice", {"operator": ["telkom"]}, 1),
        ("pemadaman bergilir", {"kecamatan": ["Babat Toman"]}, 4),
        ("announced maintenance", {"nodes": [D]}, 1),
    ]
    assert data["maintenance"][1]["recurring"] == {"days": ["sun"], "time_start": "23:30", "time_end": "00:30"}

    csv_out = report(month_db, "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    rows = {(r["level"], r["name"]): r for r in csv.DictReader(io.StringIO(csv_out.stdout))}
    assert float(rows[("node", A)]["availability_pct"]) == pytest.approx(nodes[A]["availability_pct"])
    assert float(rows[("provider", "telkom")]["down_min"]) == 120.0
