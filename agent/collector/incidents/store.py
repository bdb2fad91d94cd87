"""The incidents' own tables in the collector's database (SQLite or PostgreSQL), and their queries.

Tables: `incidents` (one row per incident: what, where, when, evidence, and what was
told), `incident_outbox` (messages to deliver: one row per message and recipient, with
its idempotency key, attempts and when it was sent), `incident_meta` (the engine's
lease: one engine per database, whichever collector holds it). An index on
`readings (received)` lets the engine read what arrived since its last pass.

The engine's changes and the messages they cause are written in one transaction, so a
restart neither loses a message nor makes one twice; a delivery attempt and its outcome
(sent, or when to retry) are written in one transaction too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import suppress
from typing import Any, Optional

from agent.collector.incidents.engine import Incident, Obs
from agent.collector.store.base import Store, StoreDown, dumps

log = logging.getLogger(__name__)

INCIDENT_COLUMNS = (
    "id, kind, cause, severity, node, grp, kecamatan, desa, members, started, ended, detected, updated, "
    "evidence, maintenance, parent, state"
)
OUTBOX_COLUMNS = (
    "id, msg_key, incident, event, channel, recipient, lang, subject, body, payload, created, next_attempt, "
    "attempts, sent, failed, last_error"
)
READING_COLUMNS = "id, node, measurement, target, ts, clock_synced, mono_s, boot, ok, error_code, error_message, fields"


def postgres(store: Store) -> bool:
    return store.placeholder == "%s"


def schema_sql(pg: bool) -> list[str]:
    real, jsonb = ("DOUBLE PRECISION", "JSONB") if pg else ("REAL", "TEXT")
    serial = "BIGSERIAL PRIMARY KEY" if pg else "INTEGER PRIMARY KEY AUTOINCREMENT"
    return [
        f"""CREATE TABLE IF NOT EXISTS incidents (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, cause TEXT NOT NULL, severity TEXT NOT NULL,
            node TEXT NOT NULL, grp TEXT NOT NULL, kecamatan TEXT NOT NULL, desa TEXT NOT NULL,
            members {jsonb} NOT NULL, started {real} NOT NULL, ended {real}, detected {real} NOT NULL,
            updated {real} NOT NULL, evidence {jsonb} NOT NULL, maintenance TEXT NOT NULL, parent TEXT NOT NULL,
            state {jsonb} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS incidents_open ON incidents (started) WHERE ended IS NULL",
        "CREATE INDEX IF NOT EXISTS incidents_started ON incidents (started)",
        "CREATE INDEX IF NOT EXISTS incidents_parent ON incidents (parent)",
        f"""CREATE TABLE IF NOT EXISTS incident_outbox (
            id {serial}, msg_key TEXT NOT NULL UNIQUE, incident TEXT NOT NULL, event TEXT NOT NULL,
            channel TEXT NOT NULL, recipient TEXT NOT NULL, lang TEXT NOT NULL, subject TEXT NOT NULL,
            body TEXT NOT NULL, payload {jsonb} NOT NULL, created {real} NOT NULL, next_attempt {real} NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, sent {real}, failed {real}, last_error TEXT)""",
        "CREATE INDEX IF NOT EXISTS incident_outbox_pending ON incident_outbox (id) WHERE sent IS NULL AND failed IS NULL",
        f"CREATE TABLE IF NOT EXISTS incident_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL, until {real})",
    ]


def ensure_schema(store: Store) -> None:
    """Create the incident tables if missing, and the index the engine polls readings by."""
    pg = postgres(store)
    with store._transaction() as cur:
        if pg:  # collectors starting together would race on CREATE ... IF NOT EXISTS: take turns
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('netprobe-incidents-schema'))")
        for statement in schema_sql(pg):
            cur.execute(statement)
        if not pg:
            cur.execute("CREATE INDEX IF NOT EXISTS readings_received ON readings (received)")
    if pg:
        _pg_received_index(store)


def _pg_received_index(store: Store) -> None:
    """CONCURRENTLY: a big readings table stays writable while the index is built (not in a transaction)."""
    import psycopg
    from psycopg import sql

    dsn, schema = getattr(store, "dsn", ""), getattr(store, "schema", "netprobe")
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS readings_received ON readings (received)")
    except psycopg.Error as exc:
        raise StoreDown(f"PostgreSQL: cannot index readings by arrival: {str(exc).strip().splitlines()[0]}") from None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# -- incidents ---------------------------------------------------------------------------------
STATE_KEYS = ("maintenance_end", "cause_since", "told", "told_cause", "told_resolved", "notices")


def incident_row(i: Incident) -> tuple[Any, ...]:
    state = {k: getattr(i, k) for k in STATE_KEYS}
    return (
        i.id, i.kind, i.cause, i.severity, i.node, i.group, i.kecamatan, i.desa, dumps(i.members), i.start, i.end,
        i.detected, i.updated, dumps(i.evidence), i.maintenance, i.parent, dumps(state),
    )  # fmt: skip


def incident_of(row: Sequence[Any]) -> Incident:
    (id_, kind, cause, severity, node, grp, kec, desa, members, start, end, detected, updated, evidence,
     maintenance, parent, state) = row  # fmt: skip
    extra = {k: v for k, v in (_json(state) or {}).items() if k in STATE_KEYS}
    return Incident(
        id=id_, kind=kind, cause=cause, severity=severity, node=node, group=grp, kecamatan=kec, desa=desa,
        members=list(_json(members) or []), start=float(start), end=None if end is None else float(end),
        detected=float(detected), updated=float(updated), evidence=list(_json(evidence) or []),
        maintenance=maintenance, parent=parent, **extra,
    )  # fmt: skip


def upsert_sql() -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in (c.strip() for c in INCIDENT_COLUMNS.split(",")) if c != "id")
    return f"INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES ({', '.join('?' * 17)}) ON CONFLICT (id) DO UPDATE SET {updates}"


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One message to one recipient, as queued."""

    key: str
    incident: str
    event: str
    channel: str
    recipient: str
    lang: str
    subject: str
    body: str
    payload: dict[str, Any]


def save(store: Store, changed: Sequence[Incident], outgoing: Sequence[Outgoing], now: float) -> None:
    """The engine's changes and the messages they cause, in one transaction (or neither)."""
    if not changed and not outgoing:
        return
    with store._transaction() as cur:
        if changed:
            cur.executemany(store.sql(upsert_sql()), [incident_row(i) for i in changed])
        if outgoing:
            cur.executemany(
                store.sql(
                    "INSERT INTO incident_outbox (msg_key, incident, event, channel, recipient, lang, subject, body, "
                    "payload, created, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (msg_key) DO NOTHING"
                ),
                [
                    (o.key, o.incident, o.event, o.channel, o.recipient, o.lang, o.subject, o.body, dumps(o.payload),
                     now, now)
                    for o in outgoing
                ],
            )  # fmt: skip


def load_recent(store: Store, since: float) -> list[Incident]:
    """Open incidents, those ended since `since`, and every member of an open upstream incident."""
    rows = store.query(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE ended IS NULL OR ended >= ? OR parent IN "
        "(SELECT id FROM incidents WHERE ended IS NULL AND node = '')",
        (since,),
    )
    return [incident_of(r) for r in rows]


def listing(
    store: Store,
    open_only: bool = False,
    since: Optional[float] = None,
    kecamatan: Optional[str] = None,
    members: bool = True,
) -> list[Incident]:
    """Incidents newest first; `members=False` leaves out the desa an upstream incident speaks for."""
    where, params = ["1 = 1" if members else "parent = ''"], []
    if open_only:
        where.append("ended IS NULL")
    if since is not None:
        where.append("(started >= ? OR ended IS NULL OR ended >= ?)")
        params += [since, since]
    if not has_tables(store):  # the engine never ran on this database
        return []
    rows = store.query(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {' AND '.join(where)} ORDER BY started DESC", params
    )
    found = [incident_of(r) for r in rows]
    if kecamatan:
        wanted = kecamatan.casefold()
        found = [i for i in found if any(m.get("kecamatan", "").casefold() == wanted for m in i.members)]
    return found


def has_tables(store: Store) -> bool:
    if postgres(store):
        rows = store.query("SELECT to_regclass('incidents') IS NOT NULL")
    else:
        rows = store.query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'incidents'")
    return bool(rows and rows[0][0])


def open_incidents(store: Store) -> list[dict[str, Any]]:
    """Open incidents as plain dicts, oldest first: for the fleet view (text, JSON, HTML)."""
    from agent.collector.incidents.messages import incident_dict

    return [
        incident_dict(i) for i in sorted(listing(store, open_only=True, members=False), key=lambda i: (i.start, i.id))
    ]


# -- what the engine reads ---------------------------------------------------------------------
def node_rows(store: Store) -> list[dict[str, Any]]:
    rows = store.query("SELECT node, kecamatan, desa, site, last_seen, last_ts, status, status_received FROM nodes")
    names = ("node", "kecamatan", "desa", "site", "last_seen", "last_ts", "status", "status_received")
    out = []
    for row in rows:
        item = dict(zip(names, row))
        item["site"] = store._fields(item["site"]) if item["site"] else {}
        out.append(item)
    return out


def link_rows(store: Store) -> list[tuple[str, dict[str, Any]]]:
    rows = store.query("SELECT node, fields FROM latest WHERE measurement = 'link'")
    return [(n, store._fields(f)) for n, f in rows]


def readings_after(
    store: Store, received: float, after_id: str = "", limit: int = 20000
) -> Iterator[tuple[Obs, float, str]]:
    """(observation, received, id) of readings that arrived after (received, id), in arrival order, page by page."""
    while True:
        rows = store.query(
            f"SELECT {READING_COLUMNS}, received FROM readings WHERE received >= ? AND (received > ? OR id > ?) "
            "ORDER BY received, id LIMIT ?",  # the AND form lets the index bound the scan
            (received, received, after_id, limit),
        )
        for (rid, node, m, target, ts, synced, mono, boot, ok, code, message, fields, rec) in rows:  # fmt: skip
            obs = Obs(
                node, float(ts), m, target, bool(ok), store._fields(fields), boot or "",
                None if mono is None else float(mono), bool(synced), code, message, float(rec),
            )  # fmt: skip
            yield obs, float(rec), rid
        if len(rows) < limit:
            return
        received, after_id = float(rows[-1][-1]), rows[-1][0]


# -- the lease: one engine per database ----------------------------------------------------------
def take_lease(store: Store, holder: str, now: float, ttl_s: float) -> bool:
    """Hold (or renew) the engine's lease; False while another live holder has it."""
    with store._transaction() as cur:
        cur.execute(
            store.sql(
                "INSERT INTO incident_meta (name, value, until) VALUES ('lease', ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET value = excluded.value, until = excluded.until "
                "WHERE incident_meta.value = excluded.value OR incident_meta.until < ?"
            ),
            (holder, now + ttl_s, now),
        )
        cur.execute(store.sql("SELECT value FROM incident_meta WHERE name = 'lease'"))
        row = cur.fetchone()
    return bool(row and row[0] == holder)


def drop_lease(store: Store, holder: str) -> None:
    with suppress(StoreDown), store._transaction() as cur:
        cur.execute(store.sql("DELETE FROM incident_meta WHERE name = 'lease' AND value = ?"), (holder,))


# -- the outbox ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Queued(Outgoing):
    """An Outgoing message as the outbox holds it: its row, age and attempts so far."""

    id: int
    created: float
    next_attempt: float
    attempts: int


def pending(store: Store, limit: int = 500) -> list[Queued]:
    """Unsent messages, oldest first (the sender keeps each recipient's messages in order)."""
    rows = store.query(
        "SELECT id, msg_key, incident, event, channel, recipient, lang, subject, body, payload, created, "
        "next_attempt, attempts FROM incident_outbox WHERE sent IS NULL AND failed IS NULL ORDER BY id LIMIT ?",
        (limit,),
    )
    return [
        Queued(k, inc, ev, ch, rcpt, lang, subj, body, dict(_json(p) or {}), int(i), float(c), float(na), int(n))
        for i, k, inc, ev, ch, rcpt, lang, subj, body, p, c, na, n in rows
    ]


def record_attempt(
    store: Store, row_id: int, now: float, sent: bool, error: str = "", retry_at: Optional[float] = None
) -> None:
    """One attempt and its outcome in one transaction: sent, to retry at `retry_at`, or failed for good."""
    with store._transaction() as cur:
        if sent:
            cur.execute(
                store.sql(
                    "UPDATE incident_outbox SET attempts = attempts + 1, sent = ?, last_error = NULL WHERE id = ?"
                ),
                (now, row_id),
            )
        elif retry_at is not None:
            cur.execute(
                store.sql(
                    "UPDATE incident_outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE id = ?"
                ),
                (retry_at, error[:300], row_id),
            )
        else:
            cur.execute(
                store.sql(
                    "UPDATE incident_outbox SET attempts = attempts + 1, failed = ?, last_error = ? WHERE id = ?"
                ),
                (now, error[:300], row_id),
            )


def outbox_counts(store: Store) -> dict[str, int]:
    """How many messages are sent, waiting and failed: for the logs and `netprobe incidents`."""
    rows = store.query(
        "SELECT SUM(CASE WHEN sent IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN sent IS NULL AND failed IS NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN failed IS NOT NULL THEN 1 ELSE 0 END) FROM incident_outbox"
    )
    sent, waiting, failed = rows[0] if rows else (0, 0, 0)
    return {"sent": int(sent or 0), "waiting": int(waiting or 0), "failed": int(failed or 0)}
