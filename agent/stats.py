"""RTT statistics over one probe run: pure functions, no I/O.

Samples arrive in sequence order, one per request: the RTT in milliseconds,
or None where no reply came in time. Duplicate and late replies are settled
before this point (see `agent.probes.icmp`), so each request counts once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

from agent.reading.model import FieldValue


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def mdev(values: Sequence[float]) -> float:
    """Population standard deviation, as iputils ping reports it."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def jitter(values: Sequence[float]) -> float:
    """Mean absolute difference of consecutive RTTs (RFC 3550's D, unsmoothed)."""
    if len(values) < 2:
        return 0.0
    return math.fsum(abs(b - a) for a, b in zip(values, values[1:])) / (len(values) - 1)


def longest_loss_run(samples: Sequence[Optional[float]]) -> int:
    longest = run = 0
    for s in samples:
        run = run + 1 if s is None else 0
        longest = max(longest, run)
    return longest


def summarize(samples: Sequence[Optional[float]], prefix: str = "rtt") -> dict[str, FieldValue]:
    """The fields every sampling probe reports; RTT fields only when a reply came."""
    received = [s for s in samples if s is not None]
    sent = len(samples)
    out: dict[str, FieldValue] = {
        "sent": sent,
        "received": len(received),
        "loss_pct": round(100.0 * (sent - len(received)) / sent, 3) if sent else 0.0,
    }
    if received:
        ordered = sorted(received)
        out.update(
            {
                f"{prefix}_min_ms": ordered[0],
                f"{prefix}_avg_ms": math.fsum(received) / len(received),
                f"{prefix}_max_ms": ordered[-1],
                f"{prefix}_mdev_ms": mdev(received),
                f"{prefix}_p50_ms": percentile(ordered, 50),
                f"{prefix}_p90_ms": percentile(ordered, 90),
                f"{prefix}_p99_ms": percentile(ordered, 99),
                "jitter_ms": jitter(received),
            }
        )
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 3)
    if sent - len(received) > 0:
        out["loss_burst_max"] = longest_loss_run(samples)
    return out
