"""The spool's side of delivery (docs/delivery.md): states, the schema upgrade, seqs that never repeat,
crash safety of every state change, and the ack codec they rest on. No broker needed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.publish.spool import HWM_FILENAME, NOT_CONFIRMED, SEQ_BLOCK, VERSION, Spool, delivery_state
from agent.reading import acks
from agent.reading.acks import Ack
from agent.reading.model import Identity, Outcome, make_reading
from tests.fixtures.agentd import ROOT

SITE = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
TOPIC = "netprobe/sekayu/balai-agung/node-a/icmp"


def reading(spool: Spool, node: str = "node-a", seq: int | None = None):
    seq = spool.next_seq(node) if seq is None else seq
    return make_reading(Identity(node, SITE), "icmp", "1.1.1.1", Outcome(True, {"rtt_avg_ms": 1.0}), time.time(), 1.0,
                        0.01, seq)  # fmt: skip


def fill(spool: Spool, n: int, node: str = "node-a") -> list[int]:
    return [spool.append(reading(spool, node), TOPIC) or spool.last_seqs()[node] for _ in range(n)]


def seqs_in(spool: Spool) -> list[int]:
    return [json.loads(r.payload)["seq"] for r in spool.pending(0, 100_000)]


# -- the spool written by the agent before acknowledgements (schema 0), frozen here as it was --------------
V0_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS seqs (node TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stats (
    k INTEGER PRIMARY KEY CHECK (k = 0),
    rows INTEGER NOT NULL, bytes INTEGER NOT NULL, dropped INTEGER NOT NULL
);
INSERT OR IGNORE INTO stats VALUES (0, 0, 0, 0);
CREATE TRIGGER IF NOT EXISTS readings_in AFTER INSERT ON readings BEGIN
    UPDATE stats SET rows = rows + 1, bytes = bytes + length(NEW.payload) WHERE k = 0;
END;
CREATE TRIGGER IF NOT EXISTS readings_out AFTER DELETE ON readings BEGIN
    UPDATE stats SET rows = rows - 1, bytes = bytes - length(OLD.payload) WHERE k = 0;
END;
"""


def v0_spool(path: Path, n: int, delivered: int) -> list[str]:
    """A spool as the agent before acknowledgements left it: n appended, the first `delivered` deleted on PUBACK."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V0_SCHEMA)
    ids = []
    for seq in range(1, n + 1):
        r = make_reading(Identity("node-a", SITE), "icmp", "1.1.1.1", Outcome(True, {}), time.time(), 1.0, 0.01, seq)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO readings (topic, payload) VALUES (?, ?)", (TOPIC, r.to_json().encode()))
        db.execute(
            "INSERT INTO seqs VALUES ('node-a', ?) ON CONFLICT (node) DO UPDATE SET last = excluded.last", (seq,)
        )
        db.execute("COMMIT")
        ids.append(r.id)
    db.execute("DELETE FROM readings WHERE id <= ?", (delivered,))
    db.execute("UPDATE stats SET dropped = 2")
    db.close()
    return ids[delivered:]


def test_a_spool_written_before_acknowledgements_is_upgraded_in_place_and_loses_no_reading(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    kept = v0_spool(path, 30, delivered=10)
    spool = Spool(str(path))
    assert spool.db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    assert [json.loads(r.payload)["id"] for r in spool.pending(0, 100)] == kept  # every reading, in order
    stats = spool.stats()
    assert (stats.rows, stats.waiting, stats.sent, stats.confirmed, stats.dropped) == (20, 20, 0, 0, 2)
    assert [r.seq for r in spool.unsent(0, 100)] == list(range(11, 31))  # waiting, with their seq known
    assert spool.next_seq("node-a") == 31 and not spool.is_fresh()  # the counter goes on
    spool.close()
    again = Spool(str(path))  # a second open does nothing more
    assert again.stats().rows == 20
    assert again.confirm("node-a", Ack(15)) == 5 and again.stats().confirmed == 5
    again.close()


def test_a_spool_from_a_newer_agent_is_refused_not_taken_for_damage(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    Spool(str(path)).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {VERSION + 1}")
    db.close()
    try:
        Spool(str(path))
    except sqlite3.OperationalError as exc:
        assert "newer than this agent" in str(exc)
    else:
        raise AssertionError("opened a spool of a newer schema")


# -- states ------------------------------------------------------------------------------------------------
def test_a_reading_goes_waiting_sent_confirmed_and_only_the_confirmed_leave(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "spool.sqlite3"))
    fill(spool, 10)
    fill(spool, 2, node="node-b")
    rows = spool.unsent(0, 100)
    spool.mark_sent([r.id for r in rows[:8]], now=1000.0)
    stats = spool.stats()
    assert (stats.rows, stats.sent, stats.waiting, stats.oldest_sent) == (12, 8, 4, 1000.0)
    assert [r.seq for r in spool.unsent(0, 100)] == [9, 10, 1, 2]
    # An ack covers seqs of one node; it may cover waiting rows too (stored from an earlier send).
    assert spool.confirm("node-a", Ack(3, ((5, 6), (9, 9)))) == 6
    assert spool.confirm("node-a", Ack(3)) == 0  # applying it again changes nothing
    assert seqs_in(spool) == [4, 7, 8, 10, 1, 2]
    stats = spool.stats()
    assert (stats.rows, stats.sent, stats.confirmed) == (6, 3, 6)
    assert delivery_state("collector", 600, stats, now=1000.0 + 599) == "confirmed"
    assert delivery_state("collector", 600, stats, now=1000.0 + 600) == NOT_CONFIRMED
    assert delivery_state("broker", 600, spool.stats(), now=1001.0) == "broker"


def test_only_a_lost_reading_or_one_probe_is_sent_again(tmp_path: Path) -> None:
    """Overdue = sent `timeout` ago and sent before a confirmed one; a clock set back never strands a row."""
    spool = Spool(str(tmp_path / "spool.sqlite3"))
    fill(spool, 6)
    ids = [r.id for r in spool.unsent(0, 10)]
    for i, at in zip(ids, (100.0, 101.0, 102.0, 103.0, 104.0, 5000.0)):
        spool.mark_sent([i], now=at)
    assert [r.seq for r in spool.overdue(200.0, 50.0, 10)] == [1, 2, 3, 4, 5]
    spool.clamp_clock(149.0)  # 5000: stamped before the clock was set back; it counts from now
    assert [r.seq for r in spool.overdue(200.0, 50.0, 10)] == [1, 2, 3, 4, 5, 6]
    assert spool.overdue(200.0, 50.0, 10, before=spool.confirmed_sent()) == []  # nothing confirmed yet: no proof
    assert spool.confirm("node-a", Ack(0, ((3, 3),))) == 1  # seq 3, sent at 102, is stored
    assert spool.confirmed_sent() == 102.0
    assert [r.seq for r in spool.overdue(200.0, 50.0, 10, before=spool.confirmed_sent())] == [1, 2]
    assert spool.overdue(140.0, 50.0, 10, before=spool.confirmed_sent()) == []  # not yet 50 s ago


def test_a_full_spool_drops_the_oldest_unconfirmed_whatever_their_state(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "spool.sqlite3"), max_rows=100)
    fill(spool, 100)
    spool.mark_sent([r.id for r in spool.unsent(0, 60)])
    fill(spool, 30)
    stats = spool.stats()
    assert (stats.rows, stats.dropped, stats.sent) == (100, 30, 30)
    assert seqs_in(spool) == list(range(31, 131))


# -- seqs never repeat -----------------------------------------------------------------------------------
def test_losing_the_spool_never_restarts_the_sequence(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(str(path))
    fill(spool, 25)
    assert json.loads((tmp_path / HWM_FILENAME).read_text()) == {"node-a": SEQ_BLOCK}  # reserved ahead, in blocks
    spool.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    spool = Spool(str(path))
    assert not spool.is_fresh() and spool.next_seq("node-a") == SEQ_BLOCK + 1
    spool.close()


def test_an_old_copy_of_the_spool_continues_above_the_high_water_mark(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(str(path))
    fill(spool, 5)
    spool.close()
    backup = path.read_bytes()
    spool = Spool(str(path))
    fill(spool, SEQ_BLOCK + 10)  # seq 1015; the mark moved on to 2 * SEQ_BLOCK
    spool.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(backup)  # restored from an image taken early on
    spool = Spool(str(path))
    assert spool.next_seq("node-a") == 2 * SEQ_BLOCK + 1  # not 6: seqs 6-1015 were used


def test_an_ack_from_an_earlier_install_renumbers_what_it_would_wrongly_confirm(tmp_path: Path) -> None:
    """The whole state directory went (a reinstall): seq starts at 1 again, while the broker still
    holds the old retained ack. Raising the floor renumbers the spool above it, and the writer,
    racing with it, never stores a used seq."""
    writer = Spool(str(tmp_path / "spool.sqlite3"))
    assert writer.is_fresh()
    fill(writer, 5)
    publisher = Spool(str(tmp_path / "spool.sqlite3"), durable=False)
    r = reading(writer)  # seq 6 taken before the publisher acts...
    assert publisher.raise_floor("node-a", 1000) == 5
    writer.append(r, TOPIC)  # ...and stored after: re-keyed above the floor
    assert seqs_in(writer) == [1001, 1002, 1003, 1004, 1005, 1006]
    assert [json.loads(p.payload)["id"] for p in writer.pending(0, 10)][-1] == r.id  # the same reading
    assert publisher.confirm("node-a", Ack(1000)) == 0  # the old ack confirms none of them
    assert writer.next_seq("node-a") == 1007
    assert publisher.confirm("node-a", Ack(1003)) == 3


# -- crash safety: kill -9 at any point of the state changes ----------------------------------------------
WORKER = r"""
import random, sys, time
sys.path.insert(0, sys.argv[2])
from agent.reading.model import Outcome
from agent.publish.spool import Spool
from agent.reading.acks import Ack
from agent.reading.model import Identity, make_reading
writer, publisher = Spool(sys.argv[1]), Spool(sys.argv[1], durable=False)
rng, ident = random.Random(7), Identity("node-a", {})
print("ready", flush=True)
while True:
    for _ in range(rng.randint(1, 5)):
        r = make_reading(ident, "icmp", "x", Outcome(True, {}), time.time(), 1.0, 0.0, writer.next_seq("node-a"))
        writer.append(r, "t")
    rows = publisher.unsent(0, rng.randint(1, 6))
    publisher.mark_sent([x.id for x in rows])
    sent = [x.seq for x in publisher.pending(0, 50) if x.tries]
    if sent:
        publisher.confirm("node-a", Ack(0, ((sent[0], sent[rng.randrange(len(sent))]),)))
"""


def test_kill_9_at_any_point_of_the_state_changes_loses_nothing_and_keeps_the_counters_true(tmp_path: Path) -> None:
    path = str(tmp_path / "spool.sqlite3")
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WORKER, path, str(ROOT)], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(0.4 + 0.3 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows, sent, confirmed = db.execute("SELECT rows, sent, confirmed FROM stats").fetchone()
        assert (rows, sent) == db.execute("SELECT count(*), count(*) FILTER (WHERE tries > 0) FROM readings").fetchone()
        last = db.execute("SELECT last FROM seqs").fetchone()[0]
        held = [s for (s,) in db.execute("SELECT seq FROM readings ORDER BY seq")]
        db.close()
        # Every seq issued is still in the spool or was confirmed: nothing vanished, nothing counted twice.
        assert confirmed > 0 and rows + confirmed == last and len(set(held)) == len(held)
    spool = Spool(path)
    assert spool.next_seq("node-a") == last + 1  # and the counter resumes after a crash


# -- the ack codec ------------------------------------------------------------------------------------------
def covered(upto: int, ranges: list[tuple[int, int]]) -> set[int]:
    return set(range(1, upto + 1)).union(*(set(range(a, b + 1)) for a, b in ranges))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sets(st.integers(1, 80), max_size=20), max_size=6))
def test_merging_batches_in_any_order_gives_the_union_normalised(batches: list[set[int]]) -> None:
    upto, ranges = 0, []
    for batch in batches:
        upto, ranges = acks.merge(upto, ranges, batch)
    union = set().union(*batches)
    assert covered(upto, ranges) == union
    assert upto + 1 not in union and all(a <= b for a, b in ranges)
    assert all(b + 1 < c for (_, b), (c, _) in zip(ranges, ranges[1:]))  # sorted, disjoint, not touching
    assert all(a > upto + 1 for a, _ in ranges)


@settings(max_examples=300, deadline=None)
@given(st.sets(st.integers(1, 200), max_size=60), st.sets(st.integers(1, 200), max_size=10))
def test_an_ack_covers_only_stored_seqs_and_the_ones_just_stored_first(stored: set[int], wanted: set[int]) -> None:
    upto, ranges = acks.merge(0, [], stored)
    wanted &= stored
    ack = acks.select(upto, ranges, wanted)
    assert covered(ack.upto, list(ack.also)) <= stored  # never a seq the collector does not hold
    assert len(ack.also) <= acks.WIRE_RANGES
    holding = [r for r in ranges if any(r[0] <= w <= r[1] for w in wanted)]
    if len(holding) <= acks.WIRE_RANGES:
        assert all(ack.covers(w) for w in wanted)
    assert acks.decode(ack.encode()) == ack


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_decode_never_raises_on_hostile_bytes(payload: bytes) -> None:
    ack = acks.decode(payload)
    assert ack is None or isinstance(ack, Ack)


def test_the_ack_is_compact_json() -> None:
    assert Ack(1042).encode() == b'{"upto":1042}'
    assert Ack(1042, ((1050, 1060),)).encode() == b'{"upto":1042,"also":[[1050,1060]]}'
    for bad in (b'{"upto":-1}', b'{"upto":true}', b'{"upto":3,"also":[[5]]}', b'{"upto":3,"also":[[6,5]]}', b"[]"):
        assert acks.decode(bad) is None, bad
    assert acks.decode(b'{"upto":3,"later":1}') == Ack(3)  # unknown keys are for later versions
