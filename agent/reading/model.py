"""The Reading: the one record every probe run produces, and its JSON form.

This is the contract with the collector. Change a key's meaning only with a
`SCHEMA` bump. A failed run is a Reading with `ok: false`, never a missing one.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any, Optional

from agent import clock
from agent.probes.base import FieldValue, Outcome

SCHEMA = 1


@dataclasses.dataclass(frozen=True)
class Identity:
    node: str
    site: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Reading:
    id: str
    node: str
    site: dict[str, Any]
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

    def to_dict(self) -> dict[str, Any]:
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
    def from_dict(cls, data: dict[str, Any]) -> Reading:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


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
