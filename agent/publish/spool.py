"""The store-and-forward spool: SQLite in the state directory, in WAL mode.

Every Reading is written here before anyone tries to publish it, and leaves
only once it is *confirmed* (docs/delivery.md): by the collector's ack (it has
stored it; `mqtt.confirm = "collector"`, the default) or by the broker's PUBACK
(`"broker"`). A row is *waiting* until the broker first takes it, then *sent*
(`tries`, `first_sent`, `sent`) until an ack covers its `seq`; a confirmed row
is deleted in the same transaction that counts it. Rows keep insertion order,
which is the order of replay.

Sequence numbers never repeat for a node, because an ack names seqs: the
per-node counter is committed with each row, and its high-water mark is
reserved ahead, in blocks, in a small file beside the spool (`seq-hwm.json`,
fsynced), so a lost or damaged spool continues above it instead of at 1. A
`floor` per node marks seqs that acks may no longer confirm (left by an earlier
install of the same node id); rows at or below it are renumbered above it.

Durability: the writer (the daemon's measuring side) commits with
`synchronous=FULL`, so an appended Reading survives power loss; the publisher
marks and deletes with `synchronous=NORMAL`, so a power cut can at worst forget
a state change, which means one more send (same `id`), never a loss. `kill -9`
loses nothing in either mode (WAL), and every state change is one transaction.

Bounds: `max_rows` and `max_bytes` (payload bytes). When full, the oldest rows
go, whatever their state (none is confirmed: confirmed rows are gone already),
and `dropped` counts them; the status reports it.

Schema versions (`PRAGMA user_version`): 0 is the spool before acknowledgements
(readings, seqs, stats), migrated in place on open; 1 is this one.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any, Optional

from agent.publish import recover
from agent.reading.acks import Ack
from agent.reading.model import Reading

log = logging.getLogger(__name__)

FILENAME = "spool.sqlite3"
HWM_FILENAME = "seq-hwm.json"
VERSION = 1
SEQ_BLOCK = 1000  # seqs reserved per write of the high-water mark file

TABLES = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    node TEXT,
    seq INTEGER,
    tries INTEGER NOT NULL DEFAULT 0,
    first_sent REAL,
    sent REAL
);
CREATE TABLE IF NOT EXISTS seqs (node TEXT PRIMARY KEY, last INTEGER NOT NULL, floor INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS stats (
    k INTEGER PRIMARY KEY CHECK (k = 0),
    rows INTEGER NOT NULL, bytes INTEGER NOT NULL, dropped INTEGER NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 0, sent INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO stats (k, rows, bytes, dropped) VALUES (0, 0, 0, 0);
"""
# Indexes, triggers and the meta table: the same for a new spool and a migrated one.
UPKEEP = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS readings_node_seq ON readings (node, seq);
CREATE INDEX IF NOT EXISTS readings_first_sent ON readings (first_sent) WHERE first_sent IS NOT NULL;
DROP TRIGGER IF EXISTS readings_in;
DROP TRIGGER IF EXISTS readings_out;
DROP TRIGGER IF EXISTS readings_change;
CREATE TRIGGER readings_in AFTER INSERT ON readings BEGIN
    UPDATE stats SET rows = rows + 1, bytes = bytes + length(NEW.payload), sent = sent + (NEW.tries > 0) WHERE k = 0;
END;
CREATE TRIGGER readings_out AFTER DELETE ON readings BEGIN
    UPDATE stats SET rows = rows - 1, bytes = bytes - length(OLD.payload), sent = sent - (OLD.tries > 0) WHERE k = 0;
END;
CREATE TRIGGER readings_change AFTER UPDATE OF tries, payload ON readings BEGIN
    UPDATE stats SET bytes = bytes + length(NEW.payload) - length(OLD.payload),
                     sent = sent + (NEW.tries > 0) - (OLD.tries > 0) WHERE k = 0;
END;
"""


@dataclasses.dataclass(frozen=True)
class Row:
    id: int
    topic: str
    payload: bytes
    seq: Optional[int] = None
    tries: int = 0


@dataclasses.dataclass(frozen=True)
class SpoolStats:
    rows: int
    bytes: int
    dropped: int  # dropped by the bounds, never confirmed
    sent: int = 0  # taken by the broker, not yet confirmed
    confirmed: int = 0  # confirmed and deleted, since the spool was created
    oldest_sent: Optional[float] = None  # epoch of the first send of the oldest unconfirmed row

    @property
    def waiting(self) -> int:
        """Rows the broker has not taken yet."""
        return self.rows - self.sent

    def unconfirmed_s(self, now: Optional[float] = None) -> float:
        """How long the oldest sent row has waited for its confirmation (0: none waits)."""
        if self.oldest_sent is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self.oldest_sent)


def spool_path(state_dir: str) -> str:
    return os.path.join(state_dir, FILENAME)


class SeqMark:
    """The per-node sequence high-water marks in `seq-hwm.json`: atomic replace, fsynced, under a lock."""

    def __init__(self, path: str) -> None:
        self.path = path

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def read(self) -> dict[str, int]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read the sequence high-water marks %s: %s", self.path, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): int(v) for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}

    def raise_to(self, node: str, mark: int) -> None:
        """Record that `node`'s seqs up to `mark` may be in use; durable before it returns."""
        directory = os.path.dirname(self.path) or "."
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            marks = self.read()
            if marks.get(node, 0) >= mark:
                return
            marks[node] = mark
            tmp = f"{self.path}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(marks, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class Spool:
    """One connection to the spool; use one per thread (the writer and the publisher each own one)."""

    def __init__(
        self,
        path: str,
        max_rows: int = 100_000,
        max_bytes: int = 50 * 1024 * 1024,
        *,
        durable: bool = True,
        check: bool = False,
    ) -> None:
        """`check`: also run SQLite's quick_check, raising recover.Damaged (the daemon's open: see rebuild())."""
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, mode=0o750, exist_ok=True)
        self.marks = SeqMark(os.path.join(directory, HWM_FILENAME))
        # Watched: damage met by any statement is told to the file's listeners (the daemon rebuilds).
        self.db = recover.watched(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._prepare()
            if check:
                recover.check(self.db)
        except BaseException:
            self.db.close()  # a damaged file is moved aside next: no connection may hold it
            raise
        self._seq: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._next_full_warning = 0.0
        self.dropped_since_warning = 0

    def transaction(self) -> Any:
        return _Transaction(self.db)

    # -- schema -------------------------------------------------------------
    def _version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _prepare(self) -> None:
        """Create a new spool, or migrate an older one in place, in one transaction."""
        if self._version() == VERSION:
            return
        with self.transaction():
            version = self._version()
            if version == VERSION:  # another connection did it meanwhile
                return
            if version > VERSION:
                raise sqlite3.OperationalError(
                    f"spool schema {version} is newer than this agent's ({VERSION}): it was written by a newer netprobe"
                )
            new = self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'readings'").fetchone() is None
            if new:
                for statement in _statements(TABLES):
                    self.db.execute(statement)
            else:
                self._migrate_v0()
            for statement in _statements(UPKEEP):
                self.db.execute(statement)
            if new and not self.marks.exists():
                # Nothing on this disk remembers the node's seqs: acks met before the first
                # publish come from an earlier install (see Publisher; docs/delivery.md).
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('fresh', '1')")
            self.db.execute(f"PRAGMA user_version = {VERSION}")

    def _migrate_v0(self) -> None:
        """The spool before acknowledgements: every row is waiting (it was never PUBACKed, or it would be gone)."""
        for column in ("node TEXT", "seq INTEGER", "tries INTEGER NOT NULL DEFAULT 0", "first_sent REAL", "sent REAL"):
            self.db.execute(f"ALTER TABLE readings ADD COLUMN {column}")
        self.db.execute("ALTER TABLE seqs ADD COLUMN floor INTEGER NOT NULL DEFAULT 0")
        self.db.execute("ALTER TABLE stats ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0")
        self.db.execute("ALTER TABLE stats ADD COLUMN sent INTEGER NOT NULL DEFAULT 0")
        keys = []
        for rid, payload in self.db.execute("SELECT id, payload FROM readings").fetchall():
            try:
                data = json.loads(payload)
                node, seq = data.get("node"), data.get("seq")
            except (ValueError, AttributeError):
                node, seq = None, None
            keys.append((node if isinstance(node, str) else None, seq if isinstance(seq, int) else None, rid))
        self.db.executemany("UPDATE readings SET node = ?, seq = ? WHERE id = ?", keys)
        if keys:
            log.info("spool %s: upgraded to schema %d, %d spooled readings kept", self.path, VERSION, len(keys))

    def is_fresh(self) -> bool:
        """A spool started with no memory of earlier seqs (no high-water mark file): see Publisher."""
        return self.db.execute("SELECT 1 FROM meta WHERE k = 'fresh'").fetchone() is not None

    def clear_fresh(self) -> None:
        self.db.execute("DELETE FROM meta WHERE k = 'fresh'")

    # -- sequence numbers -------------------------------------------------
    def _start(self, node: str) -> int:
        """The last seq `node` used: the spool's counter, unless the high-water mark says the spool is not the latest."""
        row = self.db.execute("SELECT last, floor FROM seqs WHERE node = ?", (node,)).fetchone()
        last, floor = (int(row[0]), int(row[1])) if row else (None, 0)
        mark = self.marks.read().get(node)
        self._reserved[node] = mark or 0
        if mark is not None and (last is None or last <= mark - SEQ_BLOCK):
            log.warning(
                "spool %s: node %s's sequence continues after its high-water mark %d (%s), not %s, "
                "so that no seq repeats (the spool is new, or older than the node's last reading)",
                self.path, node, mark, self.marks.path, last,
            )  # fmt: skip
            return max(mark, floor)
        return max(last or 0, floor)

    def _reserve(self, node: str, seq: int) -> None:
        if seq > self._reserved.get(node, 0):
            mark = seq + SEQ_BLOCK - 1
            self.marks.raise_to(node, mark)
            self._reserved[node] = mark

    def next_seq(self, node: str) -> int:
        """The next sequence number for `node`; persisted by append() in the same transaction as the row.
        append() also reserves it in the high-water mark: that file's fsync stays off the daemon's loop."""
        if node not in self._seq:
            self._seq[node] = self._start(node)
        seq = self._seq[node] + 1
        self._seq[node] = seq
        return seq

    def last_seqs(self) -> dict[str, int]:
        return {str(n): int(s) for n, s in self.db.execute("SELECT node, last FROM seqs ORDER BY node")}

    def issued(self, node: str) -> int:
        """The highest seq `node` has committed to this spool (0: none)."""
        row = self.db.execute("SELECT max(last, floor) FROM seqs WHERE node = ?", (node,)).fetchone()
        return int(row[0]) if row else 0

    def floor(self, node: str) -> int:
        row = self.db.execute("SELECT floor FROM seqs WHERE node = ?", (node,)).fetchone()
        return int(row[0]) if row else 0

    # -- rows --------------------------------------------------------------
    def append(self, reading: Reading, topic: str) -> int:
        """Store a Reading (with its seq) before it is published; returns how many old rows were dropped."""
        if reading.seq is not None:
            self._reserve(reading.node, reading.seq)  # in seq-hwm.json before any row holds the seq
        with self.transaction():
            if reading.seq is not None:
                row = self.db.execute("SELECT last, floor FROM seqs WHERE node = ?", (reading.node,)).fetchone()
                if row and reading.seq <= max(int(row[0]), int(row[1])):
                    # The publisher renumbered above a stale ack meanwhile: never store a used seq.
                    seq = max(int(row[0]), int(row[1])) + 1
                    self._reserve(reading.node, seq)
                    self._seq[reading.node] = seq
                    reading = dataclasses.replace(reading, seq=seq)
            payload = reading.to_json().encode("utf-8")
            self.db.execute(
                "INSERT INTO readings (topic, payload, node, seq) VALUES (?, ?, ?, ?)",
                (topic, payload, reading.node, reading.seq),
            )
            if reading.seq is not None:
                self.db.execute(
                    "INSERT INTO seqs (node, last) VALUES (?, ?) "
                    "ON CONFLICT (node) DO UPDATE SET last = max(last, excluded.last)",
                    (reading.node, reading.seq),
                )
            dropped = self._enforce_bounds()
        if dropped:
            self.dropped_since_warning += dropped
            now = time.monotonic()
            if now >= self._next_full_warning:  # once, then hourly: a long outage must not flood the log
                log.warning(
                    "spool full (max_rows %d, max %.1f MB): dropped %d oldest unconfirmed reading(s); "
                    "the status counts them",
                    self.max_rows, self.max_bytes / 1e6, self.dropped_since_warning,
                )  # fmt: skip
                self._next_full_warning, self.dropped_since_warning = now + 3600.0, 0
        return dropped

    def _enforce_bounds(self) -> int:
        rows, size, _ = self.db.execute("SELECT rows, bytes, dropped FROM stats WHERE k = 0").fetchone()
        excess = max(0, rows - self.max_rows)
        if size > self.max_bytes:
            over, n = size - self.max_bytes, 0
            for (length,) in self.db.execute("SELECT length(payload) FROM readings ORDER BY id LIMIT ?", (rows,)):
                n += 1
                over -= length
                if over <= 0:
                    break
            excess = max(excess, n)
        if excess:
            self.db.execute("DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?)", (excess,))
            self.db.execute("UPDATE stats SET dropped = dropped + ? WHERE k = 0", (excess,))
        return int(excess)

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[Row]:
        return [Row(int(i), str(t), bytes(p), s, int(n)) for i, t, p, s, n in self.db.execute(sql, params)]

    def pending(self, after_id: int = 0, limit: int = 100) -> list[Row]:
        """Rows after `after_id`, oldest first, in any state."""
        return self._rows(
            "SELECT id, topic, payload, seq, tries FROM readings WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )

    def unsent(self, after_id: int = 0, limit: int = 100) -> list[Row]:
        """Waiting rows (the broker never took them) after `after_id`, oldest first."""
        return self._rows(
            "SELECT id, topic, payload, seq, tries FROM readings WHERE id > ? AND tries = 0 ORDER BY id LIMIT ?",
            (after_id, limit),
        )

    def overdue(self, now: float, timeout: float, limit: int, before: Optional[float] = None) -> list[Row]:
        """Sent rows whose last send is `timeout` old and, if `before` is given, earlier than it; oldest first."""
        cut = now - timeout if before is None else min(now - timeout, before - 1e-6)
        return self._rows(
            "SELECT id, topic, payload, seq, tries FROM readings WHERE tries > 0 AND sent <= ? ORDER BY id LIMIT ?",
            (cut, limit),
        )

    def clamp_clock(self, now: float) -> None:
        """Send times in the future (the clock was set back since, e.g. a Pi before NTP) become now,
        so no row waits for the clock to catch up before it can be sent again."""
        with self.transaction():
            self.db.execute("UPDATE readings SET sent = ? WHERE sent > ?", (now, now))
            self.db.execute(
                "UPDATE meta SET v = ? WHERE k = 'confirmed_sent' AND CAST(v AS REAL) > ?", (repr(now), now)
            )

    def confirmed_sent(self) -> float:
        """The latest send (epoch) of any confirmed row: a row sent before it and still unconfirmed
        was most likely lost on the way, not merely slow."""
        row = self.db.execute("SELECT v FROM meta WHERE k = 'confirmed_sent'").fetchone()
        return float(row[0]) if row else 0.0

    def _note_confirmed_sent(self, when: Optional[float]) -> None:
        if when is not None:
            self.db.execute(
                "INSERT INTO meta VALUES ('confirmed_sent', ?) ON CONFLICT (k) DO UPDATE "
                "SET v = max(CAST(v AS REAL), CAST(excluded.v AS REAL))",
                (repr(float(when)),),
            )

    def note_confirmed_sent(self, when: float) -> None:
        """The broker confirmed a re-sent row (`mqtt.confirm = "broker"`): see confirmed_sent()."""
        self._note_confirmed_sent(when)

    def mark_sent(self, ids: list[int], now: Optional[float] = None) -> None:
        """The broker took these (PUBACK): they wait for their confirmation from now."""
        if not ids:
            return
        now = time.time() if now is None else now
        with self.transaction():
            self.db.executemany(
                "UPDATE readings SET tries = tries + 1, sent = ?, first_sent = COALESCE(first_sent, ?) WHERE id = ?",
                [(now, now, i) for i in ids],
            )

    def confirm(self, node: str, ack: Ack) -> int:
        """Delete `node`'s rows that `ack` covers (above the node's floor); returns how many."""
        clauses, params = ["seq <= ?"], [ack.upto]
        for a, b in ack.also:
            clauses.append("seq BETWEEN ? AND ?")
            params += [a, b]
        where = (
            f"node = ? AND seq > (SELECT coalesce(max(floor), 0) FROM seqs WHERE node = ?) AND ({' OR '.join(clauses)})"
        )
        args = (node, node, *params)
        with self.transaction():
            latest = self.db.execute(f"SELECT max(sent) FROM readings WHERE {where}", args).fetchone()[0]
            n = int(self.db.execute(f"DELETE FROM readings WHERE {where}", args).rowcount or 0)
            if n:
                self.db.execute("UPDATE stats SET confirmed = confirmed + ? WHERE k = 0", (n,))
                self._note_confirmed_sent(latest)
        return n

    def delete(self, ids: list[int]) -> None:
        """Confirmed by the broker (`mqtt.confirm = "broker"`): gone, and counted."""
        if not ids:
            return
        with self.transaction():
            cur = self.db.executemany("DELETE FROM readings WHERE id = ?", [(i,) for i in ids])
            self.db.execute("UPDATE stats SET confirmed = confirmed + ? WHERE k = 0", (max(0, cur.rowcount),))

    def raise_floor(self, node: str, top: int) -> int:
        """Acks may no longer confirm `node`'s seqs up to `top`: renumber its rows at or below it
        above everything used so far, as waiting rows. Returns how many were renumbered."""
        with self.transaction():
            row = self.db.execute("SELECT last, floor FROM seqs WHERE node = ?", (node,)).fetchone()
            last, floor = (int(row[0]), int(row[1])) if row else (0, 0)
            floor = max(floor, top)
            seq = max(last, floor)
            moved = self.db.execute(
                "SELECT id, payload FROM readings WHERE node = ? AND seq <= ? ORDER BY id", (node, floor)
            ).fetchall()
            for rid, payload in moved:
                seq += 1
                data = json.loads(payload)
                data["seq"] = seq
                body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
                self.db.execute(
                    "UPDATE readings SET payload = ?, seq = ?, tries = 0, first_sent = NULL, sent = NULL WHERE id = ?",
                    (body, seq, rid),
                )
            self._reserve(node, seq + 1)
            self.db.execute(
                "INSERT INTO seqs (node, last, floor) VALUES (?, ?, ?) "
                "ON CONFLICT (node) DO UPDATE SET last = max(last, excluded.last), floor = max(floor, excluded.floor)",
                (node, seq, floor),
            )
        return len(moved)

    def nodes(self) -> list[str]:
        """Nodes with rows in the spool (normally one; more after a change of node.id)."""
        return [str(n) for (n,) in self.db.execute("SELECT DISTINCT node FROM readings WHERE node IS NOT NULL")]

    def stats(self) -> SpoolStats:
        rows, size, dropped, sent, confirmed = self.db.execute(
            "SELECT rows, bytes, dropped, sent, confirmed FROM stats WHERE k = 0"
        ).fetchone()
        oldest = self.db.execute("SELECT min(first_sent) FROM readings WHERE first_sent IS NOT NULL").fetchone()[0]
        return SpoolStats(int(rows), int(size), int(dropped), int(sent), int(confirmed), oldest)

    def oldest(self) -> Optional[Reading]:
        row = self.db.execute("SELECT payload FROM readings ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        return Reading.from_dict(json.loads(row[0]))

    def close(self) -> None:
        self.db.close()


def rebuild(
    path: str, max_rows: int = 100_000, max_bytes: int = 50 * 1024 * 1024
) -> tuple[Spool, recover.Salvage, str]:
    """A damaged spool: copy what can be read into a new one, keep the damaged file aside
    (`spool.sqlite3.damaged-<time>`, its -wal and -shm with it) and open the new one in its place.
    Returns the new spool, what was saved and where the damaged file went. No connection to the
    spool may be open meanwhile (the daemon stops its publisher and closes its own first).

    The copy is built beside the spool and renamed over it only when complete and synced, so a
    crash midway leaves the damaged spool in place, to be rebuilt again at the next start."""
    directory = os.path.dirname(path)
    tmp = f"{path}.rebuild"
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.lexists(tmp + suffix):
            os.unlink(tmp + suffix)
    fresh = Spool(tmp, max_rows, max_bytes)
    try:
        saved = recover.salvage(path, fresh.db, fresh.marks.read())
        fresh.db.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to rename
    finally:
        fresh.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    aside = recover.aside_name(path)
    recover.move_aside(path, aside)
    os.replace(tmp, path)
    recover.fsync_dir(directory)
    spool = Spool(path, max_rows, max_bytes)
    lost = f"{saved.lost} could not be read and are counted as dropped" if saved.counted else (
        f"{saved.lost} row id(s) could not be read (counted as dropped; the spool's own counts were unreadable "
        "too, so more may be lost)"
    )  # fmt: skip
    log.error(
        "the spool %s was damaged: %d reading(s) copied into a new spool (with their seq and delivery state), %s%s; "
        "the damaged file is kept as %s. The seq continues above %s",
        path, saved.kept, lost, f" (row ids {saved.ranges()})" if saved.unreadable else "", aside,
        "the last one the spool recorded" if saved.seqs_from == "spool" else f"the high-water mark ({HWM_FILENAME})",
    )  # fmt: skip
    return spool, saved, aside


def _statements(script: str) -> Iterator[str]:
    """A script's statements one by one: executescript() would COMMIT the open transaction."""
    buf = ""
    for line in script.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


CONFIRMED, NOT_CONFIRMED, BROKER = "confirmed", "not_confirmed", "broker"


def delivery_state(confirm: str, timeout: float, stats: SpoolStats, now: Optional[float] = None) -> str:
    """`not_confirmed` once a sent Reading has waited `timeout` for its confirmation; else
    `confirmed` (the collector confirms) or `broker` (`mqtt.confirm = "broker"`)."""
    if stats.unconfirmed_s(now) >= timeout:
        return NOT_CONFIRMED
    return BROKER if confirm == "broker" else CONFIRMED
