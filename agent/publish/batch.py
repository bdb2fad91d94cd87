"""Batches on the node's side: which spooled Readings go together, and which must not wait. Pure.

With `[mqtt] batch = true` the publisher sends the Readings that waited up to
`mqtt.batch_s` as one message (`agent.reading.batch`, docs/data-cost.md). A batch
holds consecutive spool rows of one node and site (a config change starts a new
one), at most `MAX_READINGS` of them and `RAW_TARGET` bytes of JSON, and comes
out under `WIRE_TARGET` bytes compressed, or it is split: well inside the
collector's 64 KiB payload limit, its 256 KiB decompression cap and the
broker's 256 KiB packet limit.

A state change does not wait for the latency bound (`urgent`): a gateway or
internet probe failing after it answered, or answering after it failed, and a
link look that saw a new link or uplink (`changed`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from agent.reading import batch as wire
from agent.reading import topics

MAX_READINGS = 500
RAW_TARGET = 192 * 1024  # decompressed JSON per batch, below wire.MAX_RAW_BYTES
WIRE_TARGET = 48 * 1024  # compressed, below the collector's 64 KiB
STATE_KINDS = ("icmp", "tcp")  # the probes whose ok/failed is the desa's online/dark


@dataclasses.dataclass(frozen=True)
class Batch:
    topic: str
    payload: bytes
    ids: tuple[int, ...]
    raw_bytes: int

    @property
    def count(self) -> int:
        return len(self.ids)


def _key(reading: Mapping[str, Any]) -> tuple[str, str]:
    return str(reading.get("node", "")), json.dumps(reading.get("site", {}), sort_keys=True)


def pack(
    rows: Sequence[Any],
    template: str = topics.DEFAULT_TOPIC,
    max_readings: int = MAX_READINGS,
    raw_target: int = RAW_TARGET,
    wire_target: int = WIRE_TARGET,
) -> list[Batch]:
    """Spool rows (each with `id` and its Reading's JSON `payload`), in order, as batches. A row whose
    payload is not a JSON object is left out: it cannot be batched, and the caller sends it alone."""
    out: list[Batch] = []
    group: list[tuple[int, dict[str, Any], int]] = []
    size = 0
    key: Optional[tuple[str, str]] = None
    for row in rows:
        try:
            reading = json.loads(row.payload)
        except ValueError:
            continue
        if not isinstance(reading, dict):
            continue
        length = len(row.payload)
        if group and (_key(reading) != key or len(group) >= max_readings or size + length > raw_target):
            out.extend(_close(group, template, wire_target))
            group, size = [], 0
        key = _key(reading)
        group.append((int(row.id), reading, length))
        size += length
    if group:
        out.extend(_close(group, template, wire_target))
    return out


def _close(group: list[tuple[int, dict[str, Any], int]], template: str, wire_target: int) -> list[Batch]:
    readings = [r for _, r, _ in group]
    raw = wire.body(readings)
    payload = wire.compress(raw)
    if len(payload) > wire_target and len(group) > 1:  # JSON that compresses badly: halve it
        half = len(group) // 2
        return _close(group[:half], template, wire_target) + _close(group[half:], template, wire_target)
    first = readings[0]
    site = first.get("site") if isinstance(first.get("site"), dict) else {}
    topic = topics.topic(template, str(first.get("node", "")), site or {}, wire.MEASUREMENT)
    return [Batch(topic, payload, tuple(i for i, _, _ in group), len(raw))]


class Changes:
    """Remembers whether each gateway/internet target last answered, to tell a state change."""

    def __init__(self) -> None:
        self.last_ok: dict[tuple[str, str], bool] = {}

    def urgent(self, measurement: str, target: str, ok: bool, fields: Mapping[str, Any]) -> bool:
        """True when this Reading changes what the regency sees: a path probe's ok/failed flipped,
        or a link look saw a new link type or uplink. The first Reading of a target is not a change."""
        if measurement == "link":
            return fields.get("changed") is True
        if measurement not in STATE_KINDS:
            return False
        answered = ok and fields.get("loss_pct") != 100.0
        before = self.last_ok.get((measurement, target))
        self.last_ok[(measurement, target)] = answered
        return before is not None and before != answered
