"""Latency under load: how much a transfer raises the RTT, graded as Waveform's bufferbloat test does.

A deep queue in a modem or a satellite terminal hides behind a good idle RTT:
voice calls break only while someone downloads. The grade is taken from the
worse direction.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Optional, Union

from agent.stats import percentile

# (grade, increase below this many ms): Waveform's bufferbloat scale.
GRADES: tuple[tuple[str, float], ...] = (("A+", 5.0), ("A", 30.0), ("B", 60.0), ("C", 200.0), ("D", 400.0))
WORST = "F"
LOADED_PERCENTILE = {"icmp": 50.0}  # else 25: see under_load_ms


def median_ms(samples: Sequence[float]) -> Optional[float]:
    return round(statistics.median(samples), 3) if samples else None


def under_load_ms(samples: Sequence[float], method: str = "tcp") -> Optional[float]:
    """The median echo during a transfer; the lower quartile of TCP or HTTP pings.

    A TCP ping whose answer a full queue dropped waits for a retransmission
    (200 ms or more) and tells of loss, not of the queue. Up to a quarter of
    such pings leave the lower quartile alone; a standing queue delays every
    ping, so it still shows in full. Right after slow start a short queue drops
    so much that a test of 2-3 s can still read high there, which is why the
    http backend uses ICMP echoes where the server answers them.
    """
    if not samples:
        return None
    return round(percentile(sorted(samples), LOADED_PERCENTILE.get(method, 25.0)), 3)


def grade(increase_ms: Optional[float]) -> Optional[str]:
    if increase_ms is None:
        return None
    for name, below in GRADES:
        if increase_ms < below:
            return name
    return WORST


def assess(
    idle: Sequence[float], loaded_down: Sequence[float], loaded_up: Sequence[float], method: str = "tcp"
) -> dict[str, Union[float, str, None]]:
    """Fields for a Reading: idle and loaded RTT, the increase and its grade, and how they were measured."""
    idle_ms = median_ms(idle)
    down_ms, up_ms = under_load_ms(loaded_down, method), under_load_ms(loaded_up, method)
    loaded = [v for v in (down_ms, up_ms) if v is not None]
    loaded_ms = max(loaded) if loaded else None
    increase = None if idle_ms is None or loaded_ms is None else round(max(0.0, loaded_ms - idle_ms), 3)
    return {
        "rtt_idle_ms": idle_ms,
        "rtt_loaded_ms": loaded_ms,
        "rtt_loaded_down_ms": down_ms,
        "rtt_loaded_up_ms": up_ms,
        "bufferbloat_ms": increase,
        "bufferbloat_grade": grade(increase),
        "rtt_method": method,
    }
