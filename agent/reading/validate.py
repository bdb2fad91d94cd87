"""Check incoming broker messages against the Reading contract: pure, never raises.

Anything a node (or an attacker on the broker) sends is outside input. Each
message becomes either an accepted record or a rejection of one `kind`, which
the collector counts; nothing here may throw on hostile bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any, Optional, Union

from agent.reading.model import SCHEMA
from agent.reading.topics import NODE_ID_RE, parse_topic

MAX_PAYLOAD_BYTES = 64 * 1024

# Rejection kinds, counted and logged once each.
OVERSIZED = "oversized"
MALFORMED = "malformed"  # not JSON, or not a JSON object
UNKNOWN_SCHEMA = "unknown_schema"
INVALID = "invalid"  # JSON object with missing keys or wrong types
SPOOFED = "spoofed"  # node in the payload differs from the node in the topic
BAD_TOPIC = "bad_topic"

ID_RE = re.compile(r"^[0-9A-Za-z-]{8,64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_TEXT = 512
MAX_FIELDS = 64
STATES = ("online", "offline")


@dataclasses.dataclass(frozen=True)
class Record:
    """A valid Reading, flattened for storage. `ts` is epoch seconds as the agent stamped it."""

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


def parse_ts(text: Any) -> Optional[float]:
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.timestamp()


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def _text(value: Any, limit: int = MAX_TEXT) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _check_site(site: Any) -> Optional[str]:
    if not isinstance(site, dict) or len(site) > MAX_FIELDS:
        return "site must be an object"
    for key in ("kecamatan", "desa"):
        if not _text(site.get(key), 128):
            return f"site.{key} must be a string"
    for key in ("lat", "lon"):
        if key in site and site[key] is not None and not _number(site[key]):
            return f"site.{key} must be a number"
    for key, value in site.items():
        if not _text(key, 64) or not (value is None or _number(value) or _text(value, 256) or isinstance(value, bool)):
            return f"site.{str(key)[:64]} must be text or a number"
    return None


def _check_fields(fields: Any) -> Optional[str]:
    if not isinstance(fields, dict) or len(fields) > MAX_FIELDS:
        return "fields must be an object of at most 64 keys"
    for key, value in fields.items():
        if not _text(key, 64):
            return "field names must be short strings"
        if not (value is None or isinstance(value, bool) or _number(value) or _text(value)):
            return f"fields.{key} must be a number, boolean or short text"
    return None


def _check_reading(data: dict[str, Any]) -> Optional[str]:
    """The reason the object is not a schema-1 Reading, or None."""
    checks: tuple[tuple[str, Any], ...] = (
        ("id", lambda v: isinstance(v, str) and ID_RE.match(v)),
        ("node", lambda v: isinstance(v, str) and NODE_ID_RE.match(v)),
        ("seq", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63)),
        ("measurement", lambda v: isinstance(v, str) and NAME_RE.match(v)),
        ("target", lambda v: _text(v, 256) and v),
        ("clock_synced", lambda v: isinstance(v, bool)),
        ("mono_s", lambda v: v is None or (_number(v) and v >= 0)),
        ("boot", lambda v: v is None or _text(v, 64)),
        ("duration_ms", lambda v: _number(v) and v >= 0),
        ("ok", lambda v: isinstance(v, bool)),
    )
    for key, good in checks:
        if key not in data:
            return f"missing '{key}'"
        if not good(data[key]):
            return f"bad '{key}'"
    if parse_ts(data.get("ts")) is None:
        return "bad 'ts'"
    error = data.get("error")
    if error is not None and not (
        isinstance(error, dict) and _text(error.get("code"), 64) and _text(error.get("message", ""))
    ):
        return "bad 'error'"
    if data["ok"] is False and error is None:
        return "a failed Reading needs an 'error'"
    return _check_site(data.get("site")) or _check_fields(data.get("fields"))


def _record(data: dict[str, Any]) -> Record:
    error = data.get("error") or {}
    mono = data.get("mono_s")
    return Record(
        id=data["id"],
        node=data["node"],
        site=data["site"],
        seq=data["seq"],
        measurement=data["measurement"],
        target=data["target"],
        ts=parse_ts(data["ts"]) or 0.0,
        clock_synced=data["clock_synced"],
        mono_s=float(mono) if mono is not None else None,
        boot=data.get("boot") or "",
        duration_ms=float(data["duration_ms"]),
        ok=data["ok"],
        error_code=error.get("code"),
        error_message=error.get("message"),
        fields=data["fields"],
    )


def _status(node: str, data: dict[str, Any]) -> Checked:
    state = data.get("state")
    if state not in STATES:
        return Rejected(INVALID, "status: 'state' must be online or offline", node)
    claimed = data.get("node", node)
    if claimed != node:
        return Rejected(SPOOFED, f"status for '{node}' claims node '{str(claimed)[:64]}'", node)
    info = {k: v for k, v in data.items() if k in ("version", "uptime_s", "config", "spool_depth", "dropped")}
    info = {k: v for k, v in info.items() if _number(v) or _text(v, 128)}
    return Status(node=node, state=state, ts=parse_ts(data.get("ts")), info=info)


def check_message(topic: str, payload: bytes, prefix: str = "netprobe", max_bytes: int = MAX_PAYLOAD_BYTES) -> Checked:
    """One broker message in, one verdict out."""
    where = parse_topic(topic, prefix)
    if where is None:
        return Rejected(BAD_TOPIC, f"topic '{topic[:120]}' is not {prefix}/kecamatan/desa/node/measurement")
    node, measurement = where
    if len(payload) > max_bytes:
        return Rejected(OVERSIZED, f"{len(payload)} bytes > {max_bytes}", node)
    if measurement == "status" and not payload:
        return Rejected(INVALID, "empty status (a cleared retained message)", node)
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return Rejected(MALFORMED, "not JSON", node)
    if not isinstance(data, dict):
        return Rejected(MALFORMED, "JSON but not an object", node)
    if measurement == "status":
        return _status(node, data)
    schema = data.get("schema")
    if schema != SCHEMA or isinstance(schema, bool):
        return Rejected(UNKNOWN_SCHEMA, f"schema {str(schema)[:20]!s} (this collector reads {SCHEMA})", node)
    problem = _check_reading(data)
    if problem:
        return Rejected(INVALID, problem, node)
    if data["node"] != node:
        return Rejected(SPOOFED, f"topic node '{node}' but payload node '{data['node']}'", node)
    return _record(data)
