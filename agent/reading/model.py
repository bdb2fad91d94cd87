"""The Reading: the one record every probe run produces, and its JSON form.

This is the contract with the collector. Change a key's meaning only with a
`SCHEMA` bump. A failed run is a Reading with `ok: false`, never a missing one.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from typing import Optional, Union

from agent import clock

SCHEMA = 1

FieldValue = Union[int, float, str, bool, None]

# Error codes are part of the Reading contract: the collector counts them.
TIMEOUT = "timeout"
REFUSED = "refused"
UNREACHABLE = "unreachable"
RESOLVE_FAILED = "resolve_failed"
NO_ROUTE = "no_route"
PERMISSION = "permission"
NXDOMAIN = "nxdomain"
SERVFAIL = "servfail"
DNS_ERROR = "dns_error"
TLS_ERROR = "tls_error"
HTTP_ERROR = "http_error"
PROTOCOL_ERROR = "protocol_error"
BAD_TARGET = "bad_target"
SKIPPED = "skipped"
NOT_INSTALLED = "not_installed"  # an optional part the probe needs is not installed
INTERNAL = "internal"


@dataclasses.dataclass(frozen=True)
class ProbeError:
    code: str
    message: str


@dataclasses.dataclass
class Outcome:
    """What one probe run found; a Reading wraps it with identity and time."""

    ok: bool
    fields: dict[str, FieldValue] = dataclasses.field(default_factory=dict)
    error: Optional[ProbeError] = None

    @classmethod
    def failed(cls, code: str, message: str, **fields: FieldValue) -> Outcome:
        return cls(ok=False, fields=dict(fields), error=ProbeError(code, message))


class ProbeFailure(Exception):
    """Raised inside a probe's I/O part; turned into a failed Outcome."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# `site`: kabupaten, kecamatan, desa, optional lat/lon, and the node's free tags.
SiteValue = Union[str, int, float, bool, None]
Site = dict[str, SiteValue]


@dataclasses.dataclass(frozen=True)
class Identity:
    node: str
    site: Site


@dataclasses.dataclass(frozen=True)
class Reading:
    id: str
    node: str
    site: Site
    seq: Optional[int]
    measurement: str
    target: str
    ts: str
    clock_synced: bool
    mono_s: float
    boot: str
    duration_ms: float
    ok: bool
    error: Optional[dict[str, str]]
    fields: dict[str, FieldValue]
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, object]:
        return {
            "schema": self.schema,
            "id": self.id,
            "node": self.node,
            "site": self.site,
            "seq": self.seq,
            "measurement": self.measurement,
            "target": self.target,
            "ts": self.ts,
            "clock_synced": self.clock_synced,
            "mono_s": self.mono_s,
            "boot": self.boot,
            "duration_ms": self.duration_ms,
            "ok": self.ok,
            "error": self.error,
            "fields": self.fields,
        }

    def to_json(self) -> str:
        """Compact JSON: on a satellite link every byte is paid for."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Reading:
        """A Reading this agent wrote itself (the spool): its keys and types are already right."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})  # type: ignore[arg-type]


def make_reading(
    identity: Identity,
    measurement: str,
    target: str,
    outcome: Outcome,
    started_epoch: float,
    started_mono: float,
    duration_s: float,
    seq: Optional[int] = None,
) -> Reading:
    error = dataclasses.asdict(outcome.error) if outcome.error else None
    return Reading(
        id=uuid.uuid4().hex,
        node=identity.node,
        site=identity.site,
        seq=seq,
        measurement=measurement,
        target=target,
        ts=clock.iso_utc(started_epoch),
        clock_synced=clock.clock_synced(),
        mono_s=round(started_mono, 3),
        boot=clock.boot_id(),
        duration_ms=round(duration_s * 1000.0, 3),
        ok=outcome.ok,
        error=error,
        fields=outcome.fields,
    )
