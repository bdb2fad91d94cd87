"""Damage inside the spool file (issue 12, finding 6): found at open or when a statement meets it, what
can be read kept with its id, seq and delivery state, the rest counted, the file kept aside, seqs going on.

The damage is real: Readings are written to a real spool, it is checkpointed (closed), and whole pages
holding Readings in the middle of the file are overwritten with garbage at page-size offsets, as a card
that lost power during a block erase leaves them. tests/daemon/test_spool_damage_process.py does the
same to a running `netprobe run`. (agent.publish.recover and spool.rebuild are imported where used,
so that the tests of behaviour also run, and fail, on the code before them.)
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from agent.publish.spool import HWM_FILENAME, SEQ_BLOCK, Spool
from agent.reading.acks import Ack
from agent.reading.model import Identity, Outcome, make_reading
from tests.fixtures.agentd import agent_toml

NODE = "test-node-1"
SITE = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
TOPIC = f"netprobe/sekayu/balai-agung/{NODE}/tcp"
COLUMNS = "id, topic, payload, node, seq, tries, first_sent, sent"  # a row with its delivery state


# -- damage, as a power cut during an erase leaves it (also used by the process test) ----------------------
def page_size(path: Path) -> int:
    with open(path, "rb") as f:
        f.seek(16)
        size = int.from_bytes(f.read(2), "big")
    return 65536 if size == 1 else size


def reading_pages(path: Path) -> list[int]:
    """Page numbers (1 = the header page) whose bytes hold a Reading's JSON: the readings table's leaves."""
    size, data = page_size(path), path.read_bytes()
    return [n + 1 for n in range(1, len(data) // size) if b'"measurement"' in data[n * size : (n + 1) * size]]


def held_by(path: Path, pages: list[int], candidates: dict[int, tuple[Any, ...]]) -> set[int]:
    """The row ids among `candidates` (id -> row) whose Reading sits on one of `pages`."""
    size, data = page_size(path), path.read_bytes()
    chunks = [data[(page - 1) * size : page * size] for page in pages]
    return {rid for rid, row in candidates.items() if any(bytes(row[2]) in chunk for chunk in chunks)}


def overwrite(path: Path, pages: list[int], seed: int = 12) -> None:
    """Garbage over whole pages; the first byte is no b-tree page type, so SQLite cannot take it for one."""
    size, rng = page_size(path), random.Random(seed)
    fd = os.open(path, os.O_WRONLY)
    try:
        for page in pages:
            garbage = bytearray(rng.getrandbits(8) for _ in range(size))
            garbage[0] = 0xEE
            os.pwrite(fd, bytes(garbage), (page - 1) * size)
        os.fsync(fd)
    finally:
        os.close(fd)


def poke(path: Path) -> None:
    """Commit a change that changes nothing from another connection: every other connection then drops
    its cached pages and reads them from the file again, damage and all (WAL mode)."""
    db = sqlite3.connect(path, timeout=10)
    db.execute("UPDATE seqs SET last = last")
    db.commit()
    db.close()


def middle_pages(path: Path, n: int = 3, among: slice = slice(None)) -> list[int]:
    """`n` pages of Readings in the middle of those `among` selects."""
    pages = reading_pages(path)[among]
    assert len(pages) > n + 2, pages
    return pages[len(pages) // 2 - n // 2 :][:n]


def damage_middle(path: Path, n: int = 3, among: slice = slice(None)) -> list[int]:
    """Overwrite `n` Reading pages in the middle of the file (it must be checkpointed)."""
    chosen = middle_pages(path, n, among)
    overwrite(path, chosen)
    return chosen


# -- a spool as the agent leaves it ---------------------------------------------------------------------------
def fill(path: Path, n: int) -> Spool:
    spool = Spool(str(path))
    ident = Identity(NODE, SITE)
    for i in range(n):
        r = make_reading(ident, "tcp", "127.0.0.1:9", Outcome(True, {"connect_avg_ms": 0.1 * i}), time.time(), 1.0,
                         0.001, spool.next_seq(NODE))  # fmt: skip
        spool.append(r, TOPIC)
    return spool


def rows(db: sqlite3.Connection) -> dict[int, tuple[Any, ...]]:
    return {r[0]: tuple(r) for r in db.execute(f"SELECT {COLUMNS} FROM readings ORDER BY id")}


def delivered_spool(path: Path, n: int = 300) -> tuple[dict[int, tuple[Any, ...]], Any]:
    """n Readings: the first 20 confirmed (deleted, counted), the next 80 sent, the rest waiting; closed,
    so the WAL is checkpointed into the file. Returns the rows as they were and the spool's stats."""
    spool = fill(path, n)
    spool.mark_sent([r.id for r in spool.unsent(0, 100)])
    assert spool.confirm(NODE, Ack(20)) == 20
    before, stats = rows(spool.db), spool.stats()
    spool.close()
    assert not Path(f"{path}-wal").exists()  # checkpointed: the pages below are the file's only copy
    return before, stats


def daemon_on(tmp_path: Path, state: Path) -> Any:
    from agent.config import load_config
    from agent.daemon.daemon import Daemon

    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(state, tcp="127.0.0.1:9"))
    return Daemon(load_config(str(cfg)), str(cfg), io.StringIO())


# -- at open ------------------------------------------------------------------------------------------------------
def test_damage_inside_is_found_at_open_and_every_readable_reading_is_kept_with_its_state(tmp_path, caplog):
    state = tmp_path / "state"
    path = state / "spool.sqlite3"
    before, stats = delivered_spool(path)
    doomed = held_by(path, middle_pages(path), before)
    damaged = damage_middle(path)

    caplog.set_level(logging.ERROR)
    daemon = daemon_on(tmp_path, state)  # the agent's open
    spool = daemon.spool
    after = rows(spool.db)  # before the fix: "database disk image is malformed" here, and at every session
    assert spool.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    lost = set(before) - set(after)
    assert lost == doomed and len(lost) >= 3 and set(after) <= set(before)  # the three pages' Readings, no more
    assert all(after[i] == before[i] for i in after)  # id, topic, payload, node, seq, tries, first_sent, sent
    assert max(lost) - min(lost) == len(lost) - 1 and min(lost) > min(before)  # one run from the middle
    new = spool.stats()
    assert (new.rows, new.confirmed, new.dropped) == (len(after), stats.confirmed, len(lost))
    assert new.sent == sum(1 for r in after.values() if r[5] > 0)  # the sent ones are still sent
    assert [r.seq for r in spool.unsent(0, 1000)] == sorted(r[4] for r in after.values() if r[5] == 0)

    aside = [p for p in state.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and reading_pages(aside[0])  # the damaged file, kept for a look
    assert all(aside[0].read_bytes()[(page - 1) * page_size(path)] == 0xEE for page in damaged)
    logged = [r.getMessage() for r in caplog.records if "copied into a new spool" in r.getMessage()]
    assert len(logged) == 1, caplog.text  # logged once, with the counts and the unreadable ids
    assert f"{len(after)} reading(s) copied" in logged[0] and f"{len(lost)} could not be read" in logged[0]
    assert f"row ids {min(lost)}-{max(lost)}" in logged[0] and aside[0].name in logged[0]

    # Carries on: the next Reading goes in with the next seq, and a new open finds nothing wrong.
    seq = spool.next_seq(NODE)
    assert seq == 301
    spool.append(make_reading(Identity(NODE, SITE), "tcp", "x", Outcome(True, {}), time.time(), 1.0, 0.0, seq), TOPIC)
    assert spool.last_seqs() == {NODE: 301}
    spool.close()
    Spool(str(path), check=True).close()


def test_unreadable_seqs_continue_above_the_high_water_mark(tmp_path):
    """The seqs table's page is garbage too: every seq up to the mark may have been used, so the new
    spool continues above it, not above the highest seq it could read (an ack could cover the rest)."""
    from agent.publish import recover
    from agent.publish.spool import rebuild

    state = tmp_path / "state"
    path = state / "spool.sqlite3"
    fill(path, 50).close()
    db = sqlite3.connect(path)
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'seqs'").fetchone()
    db.close()
    overwrite(path, [root])
    with pytest.raises(sqlite3.DatabaseError) as exc:
        Spool(str(path), check=True)
    assert recover.is_damage(exc.value)
    spool, saved, _ = rebuild(str(path))
    assert (saved.kept, saved.lost, saved.seqs_from) == (50, 0, "mark")
    assert json.loads((state / HWM_FILENAME).read_text()) == {NODE: SEQ_BLOCK}
    assert spool.next_seq(NODE) == SEQ_BLOCK + 1


def test_a_file_that_is_not_a_database_keeps_nothing_and_seqs_go_on(tmp_path):
    from agent.publish.spool import rebuild

    state = tmp_path / "state"
    path = state / "spool.sqlite3"
    fill(path, 5).close()
    path.write_bytes(b"a power cut ate this" * 300)
    spool, saved, aside = rebuild(str(path))
    assert (saved.kept, spool.stats().rows) == (0, 0) and not saved.counted
    assert Path(aside).read_bytes().startswith(b"a power cut")
    assert spool.next_seq(NODE) == SEQ_BLOCK + 1  # above the mark: seqs 1-5 may be in the collector


def test_a_rebuild_cut_short_leaves_the_damaged_spool_to_be_rebuilt_again(tmp_path):
    from agent.publish.spool import rebuild

    state = tmp_path / "state"
    path = state / "spool.sqlite3"
    before, _ = delivered_spool(path, 120)
    damage_middle(path, 2)
    Path(f"{path}.rebuild").write_bytes(b"half a copy: the power went")  # a crash midway
    spool, saved, _ = rebuild(str(path))
    assert saved.kept + saved.lost == len(before) and saved.lost > 0
    assert not Path(f"{path}.rebuild").exists()
    assert spool.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- met by a statement ------------------------------------------------------------------------------------------
def test_damage_met_by_any_statement_is_told_to_the_files_listeners_and_nothing_else_is(tmp_path):
    from agent.publish import recover

    path = tmp_path / "spool.sqlite3"
    delivered_spool(path)
    spool = Spool(str(path))  # opened before the damage (no check), like the running agent's
    spool.pending(0, 10)  # pages in SQLite's cache now; another connection's write will drop them
    heard: list[BaseException] = []
    elsewhere: list[BaseException] = []
    stop = recover.listen(str(path), heard.append)
    recover.listen(str(tmp_path / "other.sqlite3"), elsewhere.append)
    with pytest.raises(sqlite3.OperationalError):
        spool.db.execute("SELECT nothing FROM nowhere")  # an error, but no damage
    assert heard == []
    damage_middle(path)
    poke(path)
    with pytest.raises(sqlite3.DatabaseError):
        spool.pending(0, 100_000)
    assert len(heard) == 1 and recover.is_damage(heard[0]) and elsewhere == []
    stop()
    with pytest.raises(sqlite3.DatabaseError):
        spool.pending(0, 100_000)
    assert len(heard) == 1
    spool.close()


@pytest.mark.parametrize(
    ("exc", "damage"),
    [
        (sqlite3.DatabaseError("database disk image is malformed"), True),
        (sqlite3.DatabaseError("file is not a database"), True),
        ("Damaged", True),
        (sqlite3.OperationalError("database is locked"), False),
        (sqlite3.OperationalError("attempt to write a readonly database"), False),
        (sqlite3.OperationalError("database or disk is full"), False),
        (sqlite3.ProgrammingError("Cannot operate on a closed database."), False),
        (OSError(5, "Input/output error"), False),
    ],
)
def test_is_damage_tells_damage_from_errors_that_leave_the_file_whole(exc, damage):
    from agent.publish import recover

    if exc == "Damaged":
        exc = recover.Damaged("quick_check: Page 7: btreeInitPage() returns error code 11")
    assert recover.is_damage(exc) is damage


def test_readings_the_damaged_spool_refuses_wait_for_the_rebuilt_one(tmp_path):
    """Damage where every append writes (the counters' page): the Readings the daemon takes meanwhile
    are kept in memory and go into the rebuilt spool, in order, with their seqs; the rebuild happens by
    itself, from the error the writer met."""
    import asyncio

    from agent.config import load_config
    from agent.daemon.daemon import Daemon

    state = tmp_path / "state"
    path = state / "spool.sqlite3"
    fill(path, 30).close()
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(state, tcp="127.0.0.1:9", interval=3600.0))
    out = io.StringIO()
    daemon = Daemon(load_config(str(cfg)), str(cfg), out)
    db = sqlite3.connect(path)
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'stats'").fetchone()
    db.close()

    async def scenario() -> None:
        runner = asyncio.ensure_future(daemon.run())
        await asyncio.sleep(0.3)  # its first Reading is in
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        db.close()
        overwrite(path, [root])
        poke(path)
        ident = daemon.identity
        for _ in range(5):
            seq = daemon.spool.next_seq(NODE)
            reading = make_reading(ident, "tcp", "x", Outcome(True, {}), time.time(), 1.0, 0.0, seq)
            mine.append(reading.id)
            daemon._store(reading)
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list(state.glob("spool.sqlite3.damaged-*")):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert daemon.stopping is not None
        daemon.stopping.set()
        await runner

    mine: list[str] = []
    asyncio.run(scenario())
    aside = [p for p in state.glob("spool.sqlite3.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1  # rebuilt, from the error the writer met
    spool = Spool(str(path))
    kept = spool.pending(0, 1000)
    seqs = [r.seq for r in kept]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 35, seqs  # in order, none lost
    assert [json.loads(r.payload)["id"] for r in kept][-5:] == mine
    assert spool.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
