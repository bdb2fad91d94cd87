"""The store-and-forward spool: SQLite in the state directory, in WAL mode.

Every Reading is written here before anyone tries to publish it, and leaves
only when the broker has acknowledged it (PUBACK). Rows keep insertion order,
which is the order of replay. The per-node sequence number lives here too, so
it survives restarts and a collector can spot gaps.

Durability: the writer (the daemon's measuring side) commits with
`synchronous=FULL`, so an appended Reading survives power loss; the publisher
deletes with `synchronous=NORMAL`, so a power cut can at worst forget a delete,
which means one more duplicate (same `id`), never a loss. `kill -9` loses
nothing in either mode (WAL).

Bounds: `max_rows` and `max_bytes` (payload bytes). When full, the oldest rows
go and `dropped` counts them; the status message reports it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import time
from typing import Any, Optional

from agent.reading.model import Reading

log = logging.getLogger(__name__)

FILENAME = "spool.sqlite3"
SCHEMA = """
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


@dataclasses.dataclass(frozen=True)
class Row:
    id: int
    topic: str
    payload: bytes


@dataclasses.dataclass(frozen=True)
class SpoolStats:
    rows: int
    bytes: int
    dropped: int


def spool_path(state_dir: str) -> str:
    return os.path.join(state_dir, FILENAME)


class Spool:
    """One connection to the spool; use one per thread (the writer and the publisher each own one)."""

    def __init__(
        self,
        path: str,
        max_rows: int = 100_000,
        max_bytes: int = 50 * 1024 * 1024,
        *,
        durable: bool = True,
    ) -> None:
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, mode=0o750, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db.executescript(SCHEMA)
        self._seq: dict[str, int] = {}
        self._next_full_warning = 0.0
        self.dropped_since_warning = 0

    def transaction(self) -> Any:
        return _Transaction(self.db)

    # -- sequence numbers -------------------------------------------------
    def next_seq(self, node: str) -> int:
        """The next sequence number for `node`; persisted by append() in the same transaction as the row."""
        if node not in self._seq:
            row = self.db.execute("SELECT last FROM seqs WHERE node = ?", (node,)).fetchone()
            self._seq[node] = int(row[0]) if row else 0
        self._seq[node] += 1
        return self._seq[node]

    def last_seqs(self) -> dict[str, int]:
        return {str(n): int(s) for n, s in self.db.execute("SELECT node, last FROM seqs ORDER BY node")}

    # -- rows --------------------------------------------------------------
    def append(self, reading: Reading, topic: str) -> int:
        """Store a Reading (with its seq) before it is published; returns how many old rows were dropped."""
        payload = reading.to_json().encode("utf-8")
        with self.transaction():
            self.db.execute("INSERT INTO readings (topic, payload) VALUES (?, ?)", (topic, payload))
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
                    "spool full (max_rows %d, max %.1f MB): dropped %d oldest reading(s); the status counts them",
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

    def pending(self, after_id: int = 0, limit: int = 100) -> list[Row]:
        """Rows after `after_id`, oldest first."""
        cur = self.db.execute(
            "SELECT id, topic, payload FROM readings WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [Row(int(i), str(t), bytes(p)) for i, t, p in cur]

    def delete(self, ids: list[int]) -> None:
        if not ids:
            return
        with self.transaction():
            self.db.executemany("DELETE FROM readings WHERE id = ?", [(i,) for i in ids])

    def stats(self) -> SpoolStats:
        rows, size, dropped = self.db.execute("SELECT rows, bytes, dropped FROM stats WHERE k = 0").fetchone()
        return SpoolStats(int(rows), int(size), int(dropped))

    def oldest(self) -> Optional[Reading]:
        row = self.db.execute("SELECT payload FROM readings ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        return Reading.from_dict(json.loads(row[0]))

    def close(self) -> None:
        self.db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
