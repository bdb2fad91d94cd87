"""Check incoming broker messages against the Reading contract: pure, never raises.

Anything a node (or an attacker on the broker) sends is outside input. Each
message becomes either an accepted record or a rejection of one `kind`, which
the collector counts; nothing here may throw on hostile bytes. The rules are
`agent.reading.contract`'s, the ones the agent meets before it sends; only the
topic and the collector's clock are judged here alone: a synced Reading from
the future is rejected (it would hold its node's latest row), an unsynced one
is dated as received.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Optional, Union

from agent.reading import batch, contract
from agent.reading.contract import MAX_FIELDS, MAX_PAYLOAD_BYTES, MAX_TEXT, parse_ts, printable
from agent.reading.model import SCHEMA
from agent.reading.topics import NODE_ID_RE, parse_topic

__all__ = [
    "MAX_FIELDS", "MAX_PAYLOAD_BYTES", "MAX_TEXT", "Checked", "Record", "Rejected", "Status", "check_batch",
    "check_message", "is_batch_topic",
]  # fmt: skip

# Rejection kinds, counted and logged once each.
OVERSIZED = "oversized"
MALFORMED = "malformed"  # not JSON (NaN and Infinity are not JSON), or not a JSON object
UNKNOWN_SCHEMA = "unknown_schema"
INVALID = "invalid"  # breaks the Reading contract (agent.reading.contract): a key, a type or a bound
SPOOFED = "spoofed"  # node in the payload differs from the node in the topic
BAD_TOPIC = "bad_topic"
FUTURE = "future"  # a synced Reading stamped ahead of the collector's clock
UNSTORABLE = "unstorable"  # valid, yet the database refused it (the collector quarantines it)

STATES = ("online", "offline")
MAX_LEVEL = 128  # characters in a topic's kecamatan and desa levels
SAMPLE_BYTES = 512  # of a rejected payload, kept for the operator


@dataclasses.dataclass(frozen=True)
class Record:
    """A valid Reading, flattened for storage.

    `ts` is epoch seconds as the agent stamped it, except for an unsynced stamp in the future or
    before 1970, which is the time it was received.
    """

    id: str
    node: str
    site: dict[str, Any]
    seq: Optional[int]
    measurement: str
    target: str
    ts: float
    clock_synced: bool
    mono_s: Optional[float]
    boot: str
    duration_ms: float
    ok: bool
    error_code: Optional[str]
    error_message: Optional[str]
    fields: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Status:
    """The retained online/offline message of a node (its last will says offline)."""

    node: str
    state: str
    ts: Optional[float]
    info: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Rejected:
    kind: str
    why: str
    node: str = ""


# What one broker message turns out to be.
Checked = Union[Record, Status, Rejected]


def _record(data: dict[str, Any], ts: float) -> Record:
    error = data.get("error") or {}
    mono = data.get("mono_s")
    return Record(
        id=data["id"],
        node=data["node"],
        site=data["site"],
        seq=data["seq"],
        measurement=data["measurement"],
        target=data["target"],
        ts=ts,
        clock_synced=data["clock_synced"],
        mono_s=float(mono) if mono is not None else None,
        boot=data.get("boot") or "",
        duration_ms=float(data["duration_ms"]),
        ok=data["ok"],
        error_code=error.get("code"),
        error_message=error.get("message"),
        fields=data["fields"],
    )


# What a node's retained status may tell the collector (agent/publish/mqtt.py status_payload):
# delivery health (sent, unconfirmed_s, delivery) included, so the office sees a node whose
# Readings are never confirmed. Other keys are dropped, not stored.
STATUS_KEYS = (
    "version", "uptime_s", "config", "spool_depth", "dropped", "sent", "unconfirmed_s", "delivery",
    "data_mb", "data_level",
)  # fmt: skip


def _status(node: str, data: dict[str, Any], now: float) -> Checked:
    state = data.get("state")
    if state not in STATES:
        return Rejected(INVALID, "status: 'state' must be online or offline", node)
    claimed = data.get("node", node)
    if claimed != node:
        return Rejected(SPOOFED, f"status for '{node}' claims node '{str(claimed)[:64]}'", node)
    info = {k: v for k, v in data.items() if k in STATUS_KEYS}
    info = {k: v for k, v in info.items() if contract.is_number(v) or not contract.text_problem(v, 128)}
    ts = parse_ts(data.get("ts"))
    if ts is not None and ts > now + contract.MAX_FUTURE_S:
        ts = None  # a status from the future would say nothing true about when
    return Status(node=node, state=state, ts=ts, info=info)


def _topic_problem(kecamatan: str, desa: str, node: str, measurement: str) -> Optional[str]:
    if len(kecamatan) > MAX_LEVEL or len(desa) > MAX_LEVEL:
        return f"kecamatan and desa levels are at most {MAX_LEVEL} characters"
    if not NODE_ID_RE.match(node):
        return "the node level is not a node id"
    if not contract.NAME_RE.match(measurement):
        return "the measurement level is not a probe name"
    return None


def sample_of(payload: bytes, limit: int = SAMPLE_BYTES) -> str:
    """The start of a payload as text any store holds: bad bytes and NUL shown as escapes."""
    text = payload[:limit].decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    return text + ("…" if len(payload) > limit else "")


def check_message(
    topic: str,
    payload: bytes,
    prefix: str = "netprobe",
    max_bytes: int = MAX_PAYLOAD_BYTES,
    now: Optional[float] = None,
) -> Checked:
    """One broker message in, one verdict out. `now` is the collector's clock (default: the time now)."""
    verdict = _check(topic, payload, prefix, max_bytes, time.time() if now is None else now)
    if isinstance(verdict, Rejected):  # its words end up in logs, a database and a terminal
        return Rejected(verdict.kind, printable(verdict.why, 200), printable(verdict.node, 64))
    return verdict


def _check(topic: str, payload: bytes, prefix: str, max_bytes: int, now: float) -> Checked:
    where = parse_topic(topic, prefix)
    if where is None:
        return Rejected(BAD_TOPIC, f"topic '{topic[:120]}' is not {prefix}/kecamatan/desa/node/measurement")
    node, measurement = where
    levels = topic.split("/")
    problem = _topic_problem(levels[1], levels[2], node, measurement)
    if problem:
        return Rejected(BAD_TOPIC, f"topic '{topic[:120]}': {problem}", node[:64])
    if len(payload) > max_bytes:
        return Rejected(OVERSIZED, f"{len(payload)} bytes > {max_bytes}", node)
    if measurement == "status" and not payload:
        return Rejected(INVALID, "empty status (a cleared retained message)", node)
    try:
        data = contract.loads(payload)
    except contract.Unrepresentable as exc:
        return Rejected(INVALID, str(exc), node)
    except (ValueError, RecursionError) as exc:
        return Rejected(MALFORMED, f"not JSON: {str(exc)[:80]}", node)
    if not isinstance(data, dict):
        return Rejected(MALFORMED, "JSON but not an object", node)
    if measurement == "status":
        return _status(node, data, now)
    return _reading(data, node, now)


def _reading(data: dict[str, Any], node: str, now: float) -> Checked:
    """A parsed object from `node`'s topic (alone, or one of a batch) judged as a Reading."""
    schema = data.get("schema")
    if schema != SCHEMA or isinstance(schema, bool):
        return Rejected(UNKNOWN_SCHEMA, f"schema {str(schema)[:20]!s} (this collector reads {SCHEMA})", node)
    problem = contract.reading_problem(data)
    if problem:
        return Rejected(INVALID, problem, node)
    if data["node"] != node:
        return Rejected(SPOOFED, f"topic node '{node}' but payload node '{data['node']}'", node)
    ts = parse_ts(data["ts"]) or 0.0
    if ts > now + contract.MAX_FUTURE_S or ts < 0.0:
        if data["clock_synced"] and ts > 0.0:
            ahead = f"{ts - now:.0f} s ahead of the collector's clock"
            return Rejected(FUTURE, f"synced 'ts' {data['ts']} is {ahead}", node)
        # An unsynced clock says nothing: dated as received until a synced Reading of its boot
        # gives the offset (the store re-dates it then). Before 1970 nothing is synced either.
        ts = now
    return _record(data, ts)


def is_batch_topic(topic: str, prefix: str = "netprobe") -> bool:
    """A node's batch topic (`prefix/kecamatan/desa/node/batch`): its payload is `agent.reading.batch`'s."""
    where = parse_topic(topic, prefix)
    return where is not None and where[1] == batch.MEASUREMENT


def check_batch(
    topic: str,
    payload: bytes,
    prefix: str = "netprobe",
    max_bytes: int = MAX_PAYLOAD_BYTES,
    now: Optional[float] = None,
) -> list[tuple[Checked, bytes]]:
    """A batch message in, one verdict per Reading out, each with the bytes to sample if rejected.

    Each Reading of the batch is judged as a single one would be, so a bad one is rejected alone
    and the others are kept; a batch that cannot be read at all is one rejection (the whole payload).
    """
    now = time.time() if now is None else now
    where = parse_topic(topic, prefix)
    if where is None:
        why = f"topic '{topic[:120]}' is not {prefix}/kecamatan/desa/node/batch"
        return [(_rejected(Rejected(BAD_TOPIC, why)), payload)]
    node = where[0]
    levels = topic.split("/")
    problem = _topic_problem(levels[1], levels[2], node, where[1])
    if problem:
        return [(_rejected(Rejected(BAD_TOPIC, f"topic '{topic[:120]}': {problem}", node[:64])), payload)]
    try:
        items = batch.decode(payload, max_wire=max_bytes)
    except batch.BatchError as exc:
        return [(_rejected(Rejected(exc.kind, f"batch: {exc.why}", node)), payload)]
    out: list[tuple[Checked, bytes]] = []
    for item in items:
        sample = _sample_bytes(item)
        if not isinstance(item, dict):
            out.append((_rejected(Rejected(MALFORMED, "a batch item that is not an object", node)), sample))
            continue
        bad = batch.item_problem(item)
        verdict = Rejected(INVALID, bad, node) if bad else _reading(item, node, now)
        out.append((_rejected(verdict) if isinstance(verdict, Rejected) else verdict, sample))
    return out


def _rejected(r: Rejected) -> Rejected:
    return Rejected(r.kind, printable(r.why, 200), printable(r.node, 64))


def _sample_bytes(item: Any) -> bytes:
    """A batch item as JSON text, for the quarantine's sample (what a single message's payload would be)."""
    try:
        return json.dumps(item, separators=(",", ":"), ensure_ascii=False, default=repr).encode("utf-8", "replace")
    except (ValueError, TypeError, RecursionError):
        return repr(item)[:SAMPLE_BYTES].encode("utf-8", "replace")
