"""What a backend measured, and the Reading fields made from it (the same keys for every backend)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Optional

from agent.reading.model import FieldValue
from agent.throughput import bloat
from agent.throughput.estimator import BYTE_CAP, TIME_CAP, mbps


@dataclasses.dataclass
class Phase:
    """One direction of a test."""

    bps: Optional[float]
    bytes_moved: int  # both ways on the wire's TCP payload during this phase (requests, headers, data)
    seconds: float
    streams: int
    stop_reason: str
    warmup_s: Optional[float] = None
    loaded_rtts: list[float] = dataclasses.field(default_factory=list)
    sender_rtt_ms: Optional[float] = None


def overall_stop(phases: Sequence[Optional[Phase]]) -> Optional[str]:
    """What ended the test: a cap if any phase hit one (the byte cap first), else the first phase's reason."""
    reasons = [p.stop_reason for p in phases if p is not None]
    for cap in (BYTE_CAP, TIME_CAP):
        if cap in reasons:
            return cap
    return reasons[0] if reasons else None


def to_fields(
    backend: str,
    server: str,
    down: Optional[Phase],
    up: Optional[Phase],
    idle_rtts: Sequence[float],
    duration_s: float,
    extra_bytes: int = 0,
    rtt_method: str = "tcp",
) -> dict[str, FieldValue]:
    fields: dict[str, FieldValue] = {
        "download_mbps": mbps(down.bps) if down else None,
        "upload_mbps": mbps(up.bps) if up else None,
        "bytes_used": sum(p.bytes_moved for p in (down, up) if p) + extra_bytes,
        "bytes_down_phase": down.bytes_moved if down else 0,
        "bytes_up_phase": up.bytes_moved if up else 0,
        "duration_s": round(duration_s, 3),
        "streams": max((p.streams for p in (down, up) if p), default=0),
        "backend": backend,
        "server": server,
        "stop_reason": overall_stop([down, up]),
        "stop_reason_down": down.stop_reason if down else None,
        "stop_reason_up": up.stop_reason if up else None,
    }
    if down and down.warmup_s is not None:
        fields["warmup_down_s"] = round(down.warmup_s, 3)
    if up and up.warmup_s is not None:
        fields["warmup_up_s"] = round(up.warmup_s, 3)
    loaded = (down.loaded_rtts if down else [], up.loaded_rtts if up else [])
    fields.update(bloat.assess(idle_rtts, *loaded, method=rtt_method))
    return fields
