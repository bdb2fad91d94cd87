"""The history behind the charts and the SLA: hourly figures and status segments per node, rolled up from readings.

Why: a month of one node is ~130,000 public-target readings (three targets a
minute); the SLA page and a 30-day chart would otherwise read hundreds of
millions of rows per request. The web process (and `netprobe report`, before
it reports) keeps three tables of its own up to date, incrementally:

- `web_hours`: per node and complete hour, the public-target readings and how
  many answered, latency (median over runs of each run's p50 and p90), mean
  loss, median throughput, and the link type last reported;
- `web_segments`: per node, the status segments of `agent.collector.sla` (up,
  down, gaps) with the boot id that tells a power cut from a silence;
- `web_rollup` (per node: the hours done) and `web_meta` (the
  received-time watermark, the evidence rule the segments were made with).

New readings are found by the time the collector received them (an index on
`readings.received`, created here); late ones (a spool emptied after an
outage) re-roll the hours and segments from their own time on. Everything here
is derived: dropping the tables rebuilds them. Writes go through the store's
own transaction hook, so SQLite and PostgreSQL are handled alike.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from agent.collector import sla
from agent.collector.store import Store

log = logging.getLogger(__name__)

HOUR = 3600.0
PATH = ("icmp", "tcp")
KINDS = ("icmp", "tcp", "throughput", "link")
OVERLAP_S = 120.0  # re-read readings received this close to the watermark: commits land out of order
BATCH = 200  # stretches per write transaction
CHUNK_S = 7 * 86400.0  # a first build reads a node a week at a time


def schema(store: Store) -> list[str]:
    pg = store.placeholder != "?"
    real, big = ("DOUBLE PRECISION", "BIGINT") if pg else ("REAL", "INTEGER")
    return [
        f"""CREATE TABLE IF NOT EXISTS web_hours (
            node TEXT NOT NULL, hour {real} NOT NULL, n {big} NOT NULL, n_up {big} NOT NULL,
            p50 {real}, p90 {real}, loss {real}, down_mbps {real}, up_mbps {real}, n_tput {big} NOT NULL,
            link_type TEXT, PRIMARY KEY (node, hour))""",
        f"""CREATE TABLE IF NOT EXISTS web_segments (
            node TEXT NOT NULL, start {real} NOT NULL, stop {real} NOT NULL, status TEXT NOT NULL,
            boot TEXT NOT NULL, PRIMARY KEY (node, start))""",
        f"CREATE TABLE IF NOT EXISTS web_rollup (node TEXT PRIMARY KEY, hours_until {real} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS web_meta (key TEXT PRIMARY KEY, value {real})",
        "CREATE INDEX IF NOT EXISTS readings_received ON readings (received)",
    ]


def num(value: Any) -> Optional[float]:
    """A finite number, or None for anything else a database may hold (text, NaN, a 400-digit integer)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def answered(ok: Any, fields: dict[str, Any]) -> bool:
    """The rule of the live view (fleet.uplink_of): ok and not every packet lost."""
    return bool(ok) and (num(fields.get("loss_pct")) or 0.0) < 100.0


@dataclasses.dataclass(frozen=True)
class Row:
    ts: float
    measurement: str
    target: str
    ok: bool
    boot: str
    fields: dict[str, Any]

    @property
    def public_path(self) -> bool:
        return self.measurement in PATH and self.target != "gateway"


@dataclasses.dataclass(frozen=True)
class Figures:
    """One bucket of a node's chart (an hour in the rollup, or a finer bucket read raw)."""

    start: float
    n: int
    n_up: int
    p50: Optional[float]
    p90: Optional[float]
    loss: Optional[float]
    down_mbps: Optional[float]
    up_mbps: Optional[float]
    n_tput: int
    link_type: Optional[str]


def figures(start: float, rows: Sequence[Row]) -> Figures:
    path = [r for r in rows if r.public_path]
    p50s = [v for r in path if r.ok for v in [num(r.fields.get("rtt_p50_ms", r.fields.get("connect_p50_ms")))] if v]
    p90s = [v for r in path if r.ok for v in [num(r.fields.get("rtt_p90_ms", r.fields.get("connect_p90_ms")))] if v]
    losses = [v for r in path for v in [num(r.fields.get("loss_pct"))] if v is not None]
    tput = [r for r in rows if r.measurement == "throughput" and r.ok]
    downs = [v for r in tput for v in [num(r.fields.get("download_mbps"))] if v is not None]
    ups = [v for r in tput for v in [num(r.fields.get("upload_mbps"))] if v is not None]
    links = [r.fields["link_type"] for r in rows if isinstance(r.fields.get("link_type"), str)]
    return Figures(
        start=start,
        n=len(path),
        n_up=sum(answered(r.ok, r.fields) for r in path),
        p50=round(statistics.median(p50s), 3) if p50s else None,
        p90=round(statistics.median(p90s), 3) if p90s else None,
        loss=round(statistics.fmean(losses), 3) if losses else None,
        down_mbps=round(statistics.median(downs), 3) if downs else None,
        up_mbps=round(statistics.median(ups), 3) if ups else None,
        n_tput=len(downs),
        link_type=links[-1][:64] if links else None,
    )


def bucketed(rows: Iterable[Row], since: float, width: float) -> list[Figures]:
    groups: dict[float, list[Row]] = {}
    for r in rows:
        start = since + math.floor((r.ts - since) / width) * width
        groups.setdefault(start, []).append(r)
    return [figures(start, group) for start, group in sorted(groups.items())]


def samples(rows: Iterable[Row]) -> list[sla.Sample]:
    return [
        sla.Sample(r.ts, f"{r.measurement}:{r.target}", answered(r.ok, r.fields), r.boot) for r in rows if r.public_path
    ]


def read_rows(
    store: Store, node: str, since: float, until: float = math.inf, kinds: Sequence[str] = KINDS
) -> list[Row]:
    marks = ", ".join("?" * len(kinds))
    sql = f"SELECT ts, measurement, target, ok, boot, fields FROM readings WHERE node = ? AND ts >= ? AND measurement IN ({marks})"
    params: list[Any] = [node, since, *kinds]
    if until != math.inf:
        sql += " AND ts < ?"
        params.append(until)
    out = []
    for ts, m, t, ok, boot, f in store.query(sql + " ORDER BY ts", params):
        fields = store._fields(f)
        out.append(
            Row(float(ts), str(m), str(t), bool(ok), str(boot or ""), fields if isinstance(fields, dict) else {})
        )
    return out


def floor_hour(ts: float) -> float:
    return math.floor(ts / HOUR) * HOUR


@dataclasses.dataclass
class Progress:
    nodes_done: int = 0
    nodes_total: int = 0
    last_run: Optional[float] = None
    building: bool = False


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to write for one node and one stretch [start, ...): its hours and its segments."""

    node: str
    start: float
    hours_until: float
    hours: list[Figures]
    segs: list[sla.Segment]


class Rollup:
    """Keeps the history tables current; `catch_up` runs in one thread at a time (a lock)."""

    def __init__(self, store: Store, evidence_s: float, history_days: float = 400.0) -> None:
        self.store = store
        self.hold = float(evidence_s)
        self.history_s = history_days * 86400.0
        self.progress = Progress()
        self.lock = threading.Lock()
        self.ready = False

    def prepare(self) -> None:
        """Create the tables; a changed evidence rule makes the segments be rebuilt."""
        with self.store._transaction() as cur:
            for statement in schema(self.store):
                cur.execute(statement)
        if self._meta("evidence_s") not in (None, self.hold):
            log.info("sla.evidence_s changed: rebuilding the status segments")
            with self.store._transaction() as cur:
                cur.execute("DELETE FROM web_segments")
                cur.execute("DELETE FROM web_rollup")
        self._set_meta("evidence_s", self.hold)
        self.ready = True

    def _meta(self, key: str) -> Optional[float]:
        rows = self.store.query("SELECT value FROM web_meta WHERE key = ?", (key,))
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def _set_meta(self, key: str, value: float) -> None:
        with self.store._transaction() as cur:
            cur.execute(self.store.sql("DELETE FROM web_meta WHERE key = ?"), (key,))
            cur.execute(self.store.sql("INSERT INTO web_meta VALUES (?, ?)"), (key, value))

    def catch_up(self, now: Optional[float] = None) -> int:
        """Roll up what arrived since the last call; returns how many nodes were rolled."""
        with self.lock:
            if not self.ready:
                self.prepare()
            now = time.time() if now is None else now
            horizon = floor_hour(now - self.history_s)
            hour_now = floor_hour(now)
            done = {n: float(h) for n, h in self.store.query("SELECT node, hours_until FROM web_rollup")}
            watermark = self._meta("received")
            redo: dict[str, float] = {}  # node -> roll again from here
            if watermark is None:  # first run: everything within the horizon
                top = self.store.query("SELECT MAX(received) FROM readings")[0][0]
                new_mark = None if top is None else float(top)
                redo = {node: horizon for (node,) in self.store.query("SELECT node FROM nodes")}
            else:
                new_mark = watermark
                marks = ", ".join("?" * len(KINDS))
                rows = self.store.query(
                    f"SELECT node, MIN(ts), MAX(received) FROM readings WHERE received > ? "
                    f"AND measurement IN ({marks}) GROUP BY node",
                    (watermark - OVERLAP_S, *KINDS),
                )
                for node, first, received in rows:
                    redo[node] = float(first)
                    new_mark = max(new_mark, float(received))
            for node, until in done.items():  # hours that closed since the last run
                if until < hour_now:
                    redo[node] = min(redo.get(node, until), until)
            todo = sorted(redo.items())
            self.progress = Progress(0, len(todo), self.progress.last_run, watermark is None)
            pending: list[Plan] = []
            for k, (node, first) in enumerate(todo):
                start = max(floor_hour(min(first, done.get(node, first))), horizon)
                for plan in self._plans(node, start, hour_now):
                    pending.append(plan)
                    if len(pending) >= BATCH:
                        self._write(pending)
                        pending = []
                self.progress.nodes_done = k + 1
            self._write(pending)
            if new_mark is not None:
                self._set_meta("received", new_mark)
            self.progress.last_run = now
            self.progress.building = False
            return len(todo)

    def _plans(self, node: str, start: float, hour_now: float) -> Iterable[Plan]:
        """From `start` (an hour boundary) on, in chunks of a week so a year's build stays small in memory."""
        t = start
        while True:
            last = t + CHUNK_S > hour_now
            until = math.inf if last else t + CHUNK_S
            rows = read_rows(self.store, node, t - self.hold, until)
            closed = min(until, hour_now)
            hour_starts = sorted({floor_hour(r.ts) for r in rows if t <= r.ts < closed})
            by_hour: dict[float, list[Row]] = {}
            for r in rows:
                if t <= r.ts < closed:
                    by_hour.setdefault(floor_hour(r.ts), []).append(r)
            hours = [figures(h, by_hour[h]) for h in hour_starts]
            segs = sla.status_segments(samples(rows), self.hold, since=t)
            yield Plan(node, t, closed, hours, segs)
            if last:
                return
            t += CHUNK_S

    def _write(self, plans: Sequence[Plan]) -> None:
        if not plans:
            return
        q = self.store.sql
        with self.store._transaction() as cur:
            for p in plans:
                cur.execute(
                    q("DELETE FROM web_hours WHERE node = ? AND hour >= ? AND hour < ?"),
                    (p.node, p.start, p.hours_until),
                )
                self.store._many(
                    cur,
                    "INSERT INTO web_hours VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(p.node, f.start, f.n, f.n_up, f.p50, f.p90, f.loss, f.down_mbps, f.up_mbps, f.n_tput, f.link_type)
                     for f in p.hours],
                )  # fmt: skip
                # Segments: keep what ends before the stretch, cut the one spanning its start, append, merge at the seam.
                cur.execute(q("DELETE FROM web_segments WHERE node = ? AND start >= ?"), (p.node, p.start))
                cur.execute(
                    q("UPDATE web_segments SET stop = ? WHERE node = ? AND stop > ?"), (p.start, p.node, p.start)
                )
                segs = list(p.segs)
                if segs:
                    cur.execute(
                        q(
                            "SELECT start, stop, status, boot FROM web_segments WHERE node = ? ORDER BY start DESC LIMIT 1"
                        ),
                        (p.node,),
                    )
                    prev = cur.fetchone()
                    first = segs[0]
                    if prev is not None and (float(prev[1]), prev[2], prev[3]) == (
                        first.start,
                        first.status,
                        first.boot,
                    ):
                        cur.execute(
                            q("UPDATE web_segments SET stop = ? WHERE node = ? AND start = ?"),
                            (first.stop, p.node, prev[0]),
                        )
                        segs = segs[1:]
                self.store._many(
                    cur,
                    "INSERT INTO web_segments VALUES (?, ?, ?, ?, ?)",
                    [(p.node, s.start, s.stop, s.status, s.boot) for s in segs],
                )
                cur.execute(q("DELETE FROM web_rollup WHERE node = ?"), (p.node,))
                cur.execute(q("INSERT INTO web_rollup VALUES (?, ?)"), (p.node, p.hours_until))


# -- reading the history ------------------------------------------------------
def hours(store: Store, node: str, since: float, until: float) -> list[Figures]:
    rows = store.query(
        "SELECT hour, n, n_up, p50, p90, loss, down_mbps, up_mbps, n_tput, link_type FROM web_hours "
        "WHERE node = ? AND hour >= ? AND hour < ? ORDER BY hour",
        (node, since, until),
    )
    return [
        Figures(float(h), int(n), int(u), num(a), num(b), num(c), num(d), num(e), int(t), lt)
        for h, n, u, a, b, c, d, e, t, lt in rows
    ]


def segments(store: Store, since: float, until: float, node: Optional[str] = None) -> dict[str, list[sla.Segment]]:
    """Per node, its segments overlapping [since, until), power cuts marked off.

    The first segment after `until` is read too: whether a gap at the end was a
    power cut is told by the boot that came back.
    """
    where, params = "", []
    if node is not None:
        where, params = " AND node = ?", [node]
    rows = store.query(
        f"SELECT node, start, stop, status, boot FROM web_segments WHERE stop > ? AND start < ?{where} "
        f"UNION ALL SELECT node, start, stop, status, boot FROM web_segments s WHERE start >= ?{where} AND start = "
        "(SELECT MIN(start) FROM web_segments t WHERE t.node = s.node AND t.start >= ?)",
        [since, until, *params, until, *params, until],
    )
    out: dict[str, list[sla.Segment]] = {}
    for n, a, b, status, boot in rows:
        out.setdefault(n, []).append(sla.Segment(float(a), float(b), str(status), str(boot)))
    return {n: sla.mark_power_off(segs) for n, segs in out.items()}


def month_hours(store: Store, since: float, until: float) -> dict[str, list[Figures]]:
    """Every node's hours in [since, until): the SLA's latency, loss and throughput figures."""
    out: dict[str, list[Figures]] = {}
    rows = store.query(
        "SELECT node, hour, n, n_up, p50, p90, loss, down_mbps, up_mbps, n_tput, link_type FROM web_hours "
        "WHERE hour >= ? AND hour < ? ORDER BY node, hour",
        (since, until),
    )
    for node, h, n, u, a, b, c, d, e, t, lt in rows:
        out.setdefault(node, []).append(
            Figures(float(h), int(n), int(u), num(a), num(b), num(c), num(d), num(e), int(t), lt)
        )
    return out
