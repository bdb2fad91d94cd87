"""Where Readings are kept: one SQL design, SQLite by default, PostgreSQL when a DSN is given.

Exactly once comes from the reading id as primary key: delivery is at least
once, a duplicate insert does nothing, and the per-node aggregates (sequence
span, data used, latest per target) are only touched by rows that were new.

Acknowledgements (docs/delivery.md): `acks` holds per node the seqs stored so
far (`upto` and the ranges above it), merged in each batch's own transaction,
so the acks a collector publishes after the commit come from the database, not
from one process's memory, however many collectors share it.

Tables: `readings` (time-ordered; indexes for "node X over the last N hours"
and retention), `latest` (latest per node and target, kept on insert), `nodes`
(site, last seen, sequence span, retained online/offline status), `usage`
(bytes per node and month), `boots` (wall-minus-monotonic offset per boot, to
re-date readings taken before the clock synced), `rejects` (counters per kind)
and `reject_samples` (the latest rejected messages, bounded: what and why).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, Optional

from agent.reading import acks, contract
from agent.reading.validate import Record, Status

log = logging.getLogger(__name__)


class StoreDown(Exception):
    """The database cannot be written now; the caller keeps the batch and retries."""


class StoreRefused(Exception):
    """The database refused a value in the batch: not an outage, and retrying the same batch cannot help.

    The caller stores the batch message by message and quarantines the one refused.
    """


class RejectSample(NamedTuple):
    """One rejected message as kept in `reject_samples`: enough to see what was sent, never all of it."""

    node: str
    why: str
    topic: str
    size: int
    sample: str


SAMPLES_KEPT = 1000  # rows of reject_samples; older ones are deleted as new ones come


def ack_ranges(text: Any) -> list[tuple[int, int]]:
    """The `acks.ranges` column (JSON pairs) as tuples; [] for anything else."""
    try:
        data = json.loads(text) if isinstance(text, (str, bytes)) else text
        return [(int(a), int(b)) for a, b in data]
    except (ValueError, TypeError):
        return []


def _latest_plausible(now: float) -> float:
    """The latest time a stored Reading may carry: the contract's allowance for a synced clock ahead of ours."""
    return now + contract.MAX_FUTURE_S


def month_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def schema_sql(real: str, big: str, boolean: str, jsonb: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS readings (
            id TEXT PRIMARY KEY, node TEXT NOT NULL, seq {big}, measurement TEXT NOT NULL,
            target TEXT NOT NULL, ts {real} NOT NULL, ts_agent {real} NOT NULL,
            clock_synced {boolean} NOT NULL, clock_fixed {boolean} NOT NULL,
            mono_s {real}, boot TEXT NOT NULL, duration_ms {real} NOT NULL, ok {boolean} NOT NULL,
            error_code TEXT, error_message TEXT, fields {jsonb} NOT NULL, received {real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS readings_node_ts ON readings (node, ts)",
        "CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts)",
        "CREATE INDEX IF NOT EXISTS readings_unsynced ON readings (node, boot) WHERE NOT clock_synced AND NOT clock_fixed",
        f"""CREATE TABLE IF NOT EXISTS latest (
            node TEXT NOT NULL, measurement TEXT NOT NULL, target TEXT NOT NULL, ts {real} NOT NULL,
            ok {boolean} NOT NULL, error_code TEXT, fields {jsonb} NOT NULL,
            PRIMARY KEY (node, measurement, target))""",
        f"""CREATE TABLE IF NOT EXISTS nodes (
            node TEXT PRIMARY KEY, kabupaten TEXT NOT NULL DEFAULT '', kecamatan TEXT NOT NULL DEFAULT '',
            desa TEXT NOT NULL DEFAULT '', lat {real}, lon {real}, site {jsonb},
            first_seen {real}, last_seen {real}, last_ts {real},
            seq_min {big}, seq_max {big}, seq_count {big} NOT NULL DEFAULT 0,
            status TEXT, status_ts {real}, status_received {real}, status_info {jsonb})""",
        f"""CREATE TABLE IF NOT EXISTS usage (
            node TEXT NOT NULL, month TEXT NOT NULL, bytes {big} NOT NULL, PRIMARY KEY (node, month))""",
        f"""CREATE TABLE IF NOT EXISTS boots (
            node TEXT NOT NULL, boot TEXT NOT NULL, wall_minus_mono {real} NOT NULL, PRIMARY KEY (node, boot))""",
        f"""CREATE TABLE IF NOT EXISTS rejects (
            kind TEXT PRIMARY KEY, count {big} NOT NULL, last_node TEXT, last_why TEXT, last_at {real})""",
        f"""CREATE TABLE IF NOT EXISTS acks (
            node TEXT PRIMARY KEY, upto {big} NOT NULL, ranges TEXT NOT NULL, updated {real} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS reject_samples (
            at {real} NOT NULL, kind TEXT NOT NULL, node TEXT NOT NULL, why TEXT NOT NULL, topic TEXT NOT NULL,
            size {big} NOT NULL, sample TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS reject_samples_at ON reject_samples (at)",
    ]


READING_COLUMNS = (
    "id, node, seq, measurement, target, ts, ts_agent, clock_synced, clock_fixed, mono_s, boot, "
    "duration_ms, ok, error_code, error_message, fields, received"
)


class Store:
    """The shared SQL logic; subclasses open the connection and insert the readings."""

    placeholder = "?"
    greatest = "MAX"
    least = "MIN"
    lock_rows = ""  # PostgreSQL: " FOR UPDATE", so collectors sharing it merge one node's acks in turn

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, str], float] = {}

    # -- subclass hooks -------------------------------------------------
    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Any]:
        raise NotImplementedError
        yield  # pragma: no cover

    def _insert_readings(self, cur: Any, rows: list[tuple[Any, ...]]) -> set[str]:
        """Insert, skipping known ids; returns the ids that were new."""
        raise NotImplementedError

    def _fields(self, value: Any) -> dict[str, Any]:
        """A stored JSON object; {} for anything else a hand edit or an old row may have left."""
        if isinstance(value, (str, bytes)):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                return {}
        return value if isinstance(value, dict) else {}

    def close(self) -> None:
        raise NotImplementedError

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def _many(self, cur: Any, text: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cur.executemany(self.sql(text), rows)

    # -- writing ----------------------------------------------------------
    def write(
        self,
        records: Sequence[Record],
        statuses: Sequence[tuple[Status, dict[str, str]]] = (),
        rejects: Optional[dict[str, tuple[Any, ...]]] = None,
        now: Optional[float] = None,
    ) -> int:
        """Store one batch in one transaction; returns how many readings were new.

        Raises StoreDown when the database cannot take it: nothing of the batch
        is then kept, and the caller retries the same batch later.
        """
        now = time.time() if now is None else now
        with self._transaction() as cur:
            fresh = self._write_readings(cur, records, now)
            self._write_statuses(cur, statuses, now)
            self._write_rejects(cur, rejects or {}, now)
            self._update_acks(cur, records, now)
        return fresh

    def _write_readings(self, cur: Any, records: Sequence[Record], now: float) -> int:
        if not records:
            return 0
        unique: dict[str, Record] = {}
        for r in records:
            unique.setdefault(r.id, r)
        recs = list(unique.values())
        self._learn_offsets(cur, recs, now)
        rows, when = [], {}
        for r in recs:
            ts, fixed = r.ts, False
            if not r.clock_synced and r.mono_s is not None and r.boot:
                offset = self._offset(cur, r.node, r.boot)
                if offset is not None and 0.0 <= r.mono_s + offset <= _latest_plausible(now):
                    ts, fixed = r.mono_s + offset, True
            when[r.id] = ts
            error_code = r.error_code
            rows.append(
                (r.id, r.node, r.seq, r.measurement, r.target, ts, r.ts, r.clock_synced, fixed, r.mono_s, r.boot,
                 r.duration_ms, r.ok, error_code, r.error_message, dumps(r.fields), now)
            )  # fmt: skip
        new_ids = self._insert_readings(cur, rows)
        new = [r for r in recs if r.id in new_ids]
        self._update_aggregates(cur, new, when, now)
        return len(new)

    def _learn_offsets(self, cur: Any, recs: Sequence[Record], now: float) -> None:
        """A synced reading gives its boot's wall-minus-monotonic offset; re-date that boot's unsynced rows
        (those the offset would put before 1970 or into the future keep the time they were received)."""
        found: dict[tuple[str, str], float] = {}
        for r in recs:
            key = (r.node, r.boot)
            if r.clock_synced and r.mono_s is not None and r.boot and key not in self.offsets:
                found.setdefault(key, r.ts - r.mono_s)
        if not found:
            return
        self._many(
            cur, "INSERT INTO boots VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [(*k, v) for k, v in found.items()]
        )
        for (node, boot), offset in sorted(found.items()):
            cur.execute(
                self.sql(
                    "UPDATE readings SET ts = mono_s + ?, clock_fixed = ? "
                    "WHERE node = ? AND boot = ? AND NOT clock_synced AND NOT clock_fixed AND mono_s IS NOT NULL "
                    "AND mono_s + ? BETWEEN 0 AND ?"
                ),
                (offset, True, node, boot, offset, _latest_plausible(now)),
            )
            self.offsets[(node, boot)] = offset

    def _offset(self, cur: Any, node: str, boot: str) -> Optional[float]:
        key = (node, boot)
        if key not in self.offsets:
            cur.execute(self.sql("SELECT wall_minus_mono FROM boots WHERE node = ? AND boot = ?"), key)
            row = cur.fetchone()
            if row is None:
                return None
            self.offsets[key] = float(row[0])
            if len(self.offsets) > 100_000:  # bounded: one entry per node and boot
                self.offsets.pop(next(iter(self.offsets)))
        return self.offsets[key]

    def _update_aggregates(self, cur: Any, new: list[Record], when: dict[str, float], now: float) -> None:
        nodes: dict[str, list[Any]] = {}
        latest: dict[tuple[str, str, str], Record] = {}
        usage: dict[tuple[str, str], int] = {}
        for r in sorted(new, key=lambda r: when[r.id]):
            ts = when[r.id]
            site = r.site
            lat, lon = site.get("lat"), site.get("lon")
            seqs = [r.seq] if r.seq is not None else []
            agg = nodes.get(r.node)
            if agg is None:
                nodes[r.node] = agg = [
                    str(site.get("kabupaten", "")), site["kecamatan"], site["desa"], lat, lon, dumps(site),
                    ts, now, ts, None, None, 0,
                ]  # fmt: skip
            agg[0:6] = [str(site.get("kabupaten", "")), site["kecamatan"], site["desa"], lat, lon, dumps(site)]
            agg[6], agg[8] = min(agg[6], ts), max(agg[8], ts)
            if seqs:
                agg[9] = min([*seqs, agg[9]] if agg[9] is not None else seqs)
                agg[10] = max([*seqs, agg[10]] if agg[10] is not None else seqs)
                agg[11] += 1
            latest[(r.node, r.measurement, r.target)] = r
            used = r.fields.get("bytes_used")
            if isinstance(used, (int, float)) and not isinstance(used, bool) and used > 0:
                key = (r.node, month_of(ts))
                usage[key] = usage.get(key, 0) + int(used)
        g, s = self.greatest, self.least
        self._many(
            cur,
            "INSERT INTO nodes (kabupaten, kecamatan, desa, lat, lon, site, first_seen, last_seen, last_ts, "
            "seq_min, seq_max, seq_count, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (node) DO UPDATE SET kabupaten = excluded.kabupaten, kecamatan = excluded.kecamatan, "
            "desa = excluded.desa, lat = excluded.lat, lon = excluded.lon, site = excluded.site, "
            f"first_seen = {s}(COALESCE(nodes.first_seen, excluded.first_seen), excluded.first_seen), "
            "last_seen = excluded.last_seen, "
            f"last_ts = {g}(COALESCE(nodes.last_ts, excluded.last_ts), excluded.last_ts), "
            f"seq_min = {s}(COALESCE(nodes.seq_min, excluded.seq_min), COALESCE(excluded.seq_min, nodes.seq_min)), "
            f"seq_max = {g}(COALESCE(nodes.seq_max, excluded.seq_max), COALESCE(excluded.seq_max, nodes.seq_max)), "
            "seq_count = nodes.seq_count + excluded.seq_count",
            [(*agg, node) for node, agg in sorted(nodes.items())],
        )
        self._many(
            cur,
            "INSERT INTO latest VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node, measurement, target) DO UPDATE "
            "SET ts = excluded.ts, ok = excluded.ok, error_code = excluded.error_code, fields = excluded.fields "
            "WHERE excluded.ts >= latest.ts",
            [(*key, when[r.id], r.ok, r.error_code, dumps(r.fields)) for key, r in sorted(latest.items())],
        )
        self._many(
            cur,
            "INSERT INTO usage VALUES (?, ?, ?) ON CONFLICT (node, month) DO UPDATE SET bytes = usage.bytes + excluded.bytes",
            [(*key, used) for key, used in sorted(usage.items())],
        )

    def _write_statuses(self, cur: Any, statuses: Sequence[tuple[Status, dict[str, str]]], now: float) -> None:
        self._many(
            cur,
            "INSERT INTO nodes (node, kecamatan, desa, status, status_ts, status_received, status_info) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node) DO UPDATE SET status = excluded.status, "
            "status_ts = excluded.status_ts, status_received = excluded.status_received, "
            "status_info = excluded.status_info",
            [
                (s.node, where.get("kecamatan", ""), where.get("desa", ""), s.state, s.ts, now, dumps(s.info))
                for s, where in statuses
            ],
        )

    def _write_rejects(self, cur: Any, rejects: dict[str, tuple[Any, ...]], now: float) -> None:
        """Per kind `(count, last node, last why[, samples])`: counters, and the samples kept bounded."""
        self._many(
            cur,
            "INSERT INTO rejects VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind) DO UPDATE SET "
            "count = rejects.count + excluded.count, last_node = excluded.last_node, "
            "last_why = excluded.last_why, last_at = excluded.last_at",
            [(kind, n, node, why[:200], now) for kind, (n, node, why, *_) in sorted(rejects.items())],
        )
        samples = [
            (now, kind, s.node, s.why, s.topic, s.size, s.sample)
            for kind, (_, _, _, *more) in sorted(rejects.items())
            for s in (more[0] if more else ())
        ]
        if samples:
            self._many(cur, "INSERT INTO reject_samples VALUES (?, ?, ?, ?, ?, ?, ?)", samples)
            cur.execute(
                self.sql(
                    "DELETE FROM reject_samples WHERE at < (SELECT at FROM reject_samples "
                    "ORDER BY at DESC LIMIT 1 OFFSET ?)"
                ),
                (SAMPLES_KEPT - 1,),
            )

    # -- upkeep -----------------------------------------------------------
    def purge(self, older_than: float) -> int:
        """Retention: drop readings older than the cut, then re-derive each node's sequence span."""
        with self._transaction() as cur:
            cur.execute(self.sql("DELETE FROM readings WHERE ts < ?"), (older_than,))
            gone = int(cur.rowcount or 0)
            if gone:
                cur.execute(
                    "UPDATE nodes SET seq_min = (SELECT MIN(seq) FROM readings r WHERE r.node = nodes.node), "
                    "seq_max = (SELECT MAX(seq) FROM readings r WHERE r.node = nodes.node), "
                    "seq_count = (SELECT COUNT(seq) FROM readings r WHERE r.node = nodes.node)"
                )
                cur.execute(self.sql("DELETE FROM usage WHERE month < ?"), (month_of(older_than),))
        return gone

    # -- reading ----------------------------------------------------------
    def query(self, text: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction(write=False) as cur:
            cur.execute(self.sql(text), tuple(params))
            return list(cur.fetchall())

    def count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM readings")[0][0])

    def nodes(self) -> list[dict[str, Any]]:
        cols = (
            "node, kabupaten, kecamatan, desa, lat, lon, first_seen, last_seen, last_ts, seq_min, seq_max, "
            "seq_count, status, status_ts, status_received, status_info"
        )
        names = [c.strip() for c in cols.split(",")]
        out = []
        for row in self.query(f"SELECT {cols} FROM nodes ORDER BY kecamatan, desa, node"):
            item = dict(zip(names, row))
            item["status_info"] = self._fields(item["status_info"]) if item["status_info"] else {}
            out.append(item)
        return out

    def latest(self) -> list[dict[str, Any]]:
        rows = self.query("SELECT node, measurement, target, ts, ok, error_code, fields FROM latest")
        return [
            {"node": n, "measurement": m, "target": t, "ts": ts, "ok": bool(ok), "error_code": code,
             "fields": self._fields(f)}
            for n, m, t, ts, ok, code, f in rows
        ]  # fmt: skip

    def usage(self, month: str) -> dict[str, int]:
        rows = self.query("SELECT node, bytes FROM usage WHERE month = ?", (month,))
        return {str(n): b for n, b in rows if isinstance(b, int)}

    def rejects(self) -> dict[str, int]:
        return {str(k): n for k, n in self.query("SELECT kind, count FROM rejects") if isinstance(n, int)}

    def reject_samples(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest rejected messages, newest first."""
        rows = self.query(
            "SELECT at, kind, node, why, topic, size, sample FROM reject_samples ORDER BY at DESC LIMIT ?", (limit,)
        )
        names = ("at", "kind", "node", "why", "topic", "size", "sample")
        return [dict(zip(names, row)) for row in rows]

    def series(self, since: float, measurement: str = "icmp") -> list[tuple[str, float, str, dict[str, Any]]]:
        """Readings of one kind since a time, for the 24 h charts."""
        rows = self.query(
            "SELECT node, ts, target, fields FROM readings WHERE ts >= ? AND measurement = ? ORDER BY node, ts",
            (since, measurement),
        )
        return [(n, ts, t, self._fields(f)) for n, ts, t, f in rows if isinstance(ts, (int, float))]

    # -- acknowledgements -------------------------------------------------
    def _update_acks(self, cur: Any, records: Sequence[Record], now: float) -> None:
        """Merge the batch's seqs into each node's ack state. Duplicates count too: the reading
        with that id is stored, whichever copy came first (and a re-send must be answered)."""
        seqs: dict[str, list[int]] = {}
        for r in records:
            if r.seq is not None:
                seqs.setdefault(r.node, []).append(r.seq)
        if not seqs:
            return
        nodes = sorted(seqs)  # one lock order for every collector: no deadlock between them
        self._many(
            cur, "INSERT INTO acks VALUES (?, 0, '[]', ?) ON CONFLICT (node) DO NOTHING", [(n, now) for n in nodes]
        )
        marks = ", ".join(["?"] * len(nodes))
        cur.execute(
            self.sql(f"SELECT node, upto, ranges FROM acks WHERE node IN ({marks}) ORDER BY node{self.lock_rows}"),
            nodes,
        )
        changed = []
        for node, upto, ranges in cur.fetchall():
            before = (int(upto), ack_ranges(ranges))
            after = acks.merge(*before, seqs[node])
            if after != before:
                changed.append((after[0], dumps(after[1]), now, node))
        self._many(cur, "UPDATE acks SET upto = ?, ranges = ?, updated = ? WHERE node = ?", changed)

    def ack_states(self, nodes: Sequence[str]) -> dict[str, tuple[int, list[tuple[int, int]]]]:
        """Each node's committed ack state: (upto, the stored ranges above it)."""
        out: dict[str, tuple[int, list[tuple[int, int]]]] = {}
        nodes = list(nodes)
        for i in range(0, len(nodes), 500):
            chunk = nodes[i : i + 500]
            marks = ", ".join(["?"] * len(chunk))
            for node, upto, ranges in self.query(f"SELECT node, upto, ranges FROM acks WHERE node IN ({marks})", chunk):
                out[str(node)] = (int(upto), ack_ranges(ranges))
        return out

    def gap_ranges(self, node: str, limit: int = 20) -> list[tuple[int, int]]:
        """Missing sequence numbers of one node, as (first, last) ranges."""
        rows = self.query(
            "SELECT prev + 1, seq - 1 FROM (SELECT seq, LAG(seq) OVER (ORDER BY seq) AS prev FROM readings "
            "WHERE node = ? AND seq IS NOT NULL) t WHERE seq > prev + 1 ORDER BY seq LIMIT ?",
            (node, limit),
        )
        return [(int(a), int(b)) for a, b in rows]
