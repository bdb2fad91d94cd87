"""The store on SQLite and on the real PostgreSQL: exactly once, re-dating, latest, usage, retention."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import Store, open_store
from agent.reading.validate import Record, Status, check_message
from tests.fixtures.collector import reading, split_pg, topic_for

NODE = "muba-sekayu-balai-agung-01"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = open_store(path=str(tmp_path / "c.db"))
    else:
        dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
        s = open_store(dsn=dsn, pg_schema=schema)
    yield s
    s.close()


def rec(seq: int, **kw: Any) -> Record:
    data = reading(NODE, seq, **kw)
    out = check_message(topic_for(data), json.dumps(data).encode())
    assert isinstance(out, Record), out
    return out


def test_a_reading_delivered_many_times_is_stored_once(store: Store) -> None:
    batch = [rec(1), rec(2)]
    assert store.write(batch + batch[:1]) == 2
    assert store.write(batch) == 0
    assert store.count() == 2
    node = store.nodes()[0]
    assert (node["seq_min"], node["seq_max"], node["seq_count"]) == (1, 2, 2)  # duplicates did not count twice


def test_skipped_sequence_numbers_show_as_gap_ranges(store: Store) -> None:
    store.write([rec(s) for s in (1, 2, 5, 6, 9)])
    assert store.gap_ranges(NODE) == [(3, 4), (7, 8)]


def test_unsynced_readings_are_redated_by_a_synced_reading_of_the_same_boot(store: Store) -> None:
    # Booted with a stale clock (2020), NTP synced later; mono_s ticks on regardless.
    early = rec(1, clock_synced=False, mono_s=40.0, boot="b001", ts="2020-01-01T00:00:00.000Z")
    synced = rec(2, clock_synced=True, mono_s=100.0, boot="b001", ts="2026-11-28T10:00:00.000Z")
    late = rec(3, clock_synced=False, mono_s=130.0, boot="b001", ts="2020-01-01T00:01:30.000Z")
    other_boot = rec(4, clock_synced=False, mono_s=10.0, boot="b002", ts="2020-01-01T00:00:10.000Z")
    store.write([early])
    store.write([synced])  # re-dates `early` after the fact
    store.write([late, other_boot])  # dated on arrival
    rows = dict((s, (ts, bool(fixed))) for s, ts, fixed in store.query("SELECT seq, ts, clock_fixed FROM readings"))
    base = 1795860000.0  # 2026-11-28T10:00:00Z
    assert rows[1] == (base - 60.0, True)
    assert rows[2] == (base, False)
    assert rows[3] == (base + 30.0, True)
    assert rows[4][1] is False  # no synced reading of that boot yet: kept as stamped


def test_latest_per_target_keeps_the_newest_even_when_an_older_arrives_later(store: Store) -> None:
    now = time.time()
    store.write([rec(2, epoch=now, fields={"rtt_p50_ms": 30.0, "loss_pct": 0.0})])
    store.write([rec(1, epoch=now - 600, fields={"rtt_p50_ms": 900.0, "loss_pct": 50.0})])  # a spooled backlog
    (row,) = store.latest()
    assert row["fields"]["rtt_p50_ms"] == 30.0


def test_data_used_is_summed_per_month_from_new_readings_only(store: Store) -> None:
    t = rec(1, measurement="throughput", target="speed", fields={"download_mbps": 10.0, "bytes_used": 5_000_000},
            ts="2026-11-28T10:00:00.000Z")  # fmt: skip
    u = rec(2, measurement="throughput", target="speed", fields={"download_mbps": 12.0, "bytes_used": 7_000_000},
            ts="2026-11-29T10:00:00.000Z")  # fmt: skip
    store.write([t, u, t])
    store.write([u])
    assert store.usage("2026-11") == {NODE: 12_000_000}


def test_retention_deletes_old_readings_and_recounts_gaps(store: Store) -> None:
    now = time.time()
    store.write([rec(s, epoch=now - 90 * 86400 + s) for s in (1, 2)] + [rec(s, epoch=now) for s in (4, 5)])
    assert store.purge(now - 30 * 86400) == 2
    assert store.count() == 2
    node = store.nodes()[0]
    assert (node["seq_min"], node["seq_max"], node["seq_count"]) == (4, 5, 2)


def test_status_and_rejections_are_kept_per_node_and_kind(store: Store) -> None:
    status = Status(node=NODE, state="offline", ts=None, info={"version": "0.1"})
    store.write([], [(status, {"kecamatan": "sekayu", "desa": "balai-agung"})], {"spoofed": (2, NODE, "forged")})
    store.write([rec(1)], [], {"spoofed": (1, NODE, "forged"), "malformed": (1, "", "not JSON")})
    node = store.nodes()[0]
    assert node["status"] == "offline" and node["kecamatan"] == "Sekayu"  # readings bring the real names
    assert node["status_info"] == {"version": "0.1"}
    assert store.rejects() == {"spoofed": 3, "malformed": 1}


@pytest.mark.parametrize("synced_first", [True, False])
def test_an_unsynced_reading_is_never_redated_into_the_future(store: Store, synced_first: bool) -> None:
    # A hostile (or broken) node's monotonic clock: a century of uptime in one boot. Re-dating it by
    # the boot's offset would put its row ahead of every other and make it the node's latest for ever.
    now = time.time()
    synced = rec(1, clock_synced=True, mono_s=10.0, boot="b001", epoch=now)
    hostile = rec(2, clock_synced=False, mono_s=3.0e9, boot="b001", epoch=now)
    honest = rec(3, clock_synced=False, mono_s=70.0, boot="b001", epoch=now - 3600)
    for batch in ([synced], [hostile, honest]) if synced_first else ([hostile, honest], [synced]):
        store.write(batch)
    rows = dict((s, (ts, bool(fixed))) for s, ts, fixed in store.query("SELECT seq, ts, clock_fixed FROM readings"))
    assert rows[2][0] <= time.time() + 1 and rows[2][1] is False  # kept as received, not re-dated
    assert rows[3] == (pytest.approx(now + 60.0, abs=0.01), True)  # its honest neighbour still is
