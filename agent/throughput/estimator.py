"""When a throughput test may stop, and what it measured: pure, fed (time, bytes) samples.

TCP slow start makes the first part of any transfer slower than the link; on a
GEO link (600 ms RTT) it lasts seconds, which is why a fixed-length test reads
low there. So the estimate starts only once the rate has stopped growing (the
warm-up), and the test ends as soon as the estimate holds still, or at a time
or byte cap, whichever comes first.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

STABLE = "stable"
TIME_CAP = "time_cap"
BYTE_CAP = "byte_cap"
SERVER_END = "server_end"  # every stream ended before any cap (server closed or refused)


@dataclasses.dataclass(frozen=True)
class StopRules:
    window_s: float = 0.25  # rate window for the warm-up test; at least two RTTs
    growth: float = 0.10  # warm-up lasts while each window is this much faster than the one before
    stable_pct: float = 3.0  # the estimate moved less than this over the last span...
    span_s: float = 1.0  # ...seconds (at least two RTTs)
    max_warmup_s: float = 4.0  # a link that keeps speeding up is measured from here on
    time_cap_s: float = 10.0

    def for_rtt(self, rtt_ms: Optional[float]) -> StopRules:
        """Windows of at least two RTTs: on a long path, bytes arrive in RTT-sized bursts."""
        if not rtt_ms:
            return self
        two_rtt = 2.0 * rtt_ms / 1000.0
        return dataclasses.replace(
            self,
            window_s=max(self.window_s, two_rtt),
            span_s=max(self.span_s, two_rtt),
            max_warmup_s=max(self.max_warmup_s, 10 * two_rtt),
        )


class RateEstimator:
    """Goodput after warm-up, from cumulative byte counts sampled over time."""

    def __init__(self, rules: StopRules) -> None:
        self.rules = rules
        self.samples: list[tuple[float, int]] = [(0.0, 0)]
        self.warm: Optional[tuple[float, int]] = None
        self.history: list[tuple[float, float]] = []  # (t, estimate in bit/s) after warm-up
        self._sums = [0.0] * 5  # n, Σt, Σb, Σt², Σtb over the samples since warm-up

    def add(self, t: float, total_bytes: int) -> None:
        """`total_bytes` carried by all streams since the phase began, at `t` seconds into it."""
        if t <= self.samples[-1][0]:
            return
        self.samples.append((t, max(total_bytes, self.samples[-1][1])))
        if self.warm is None and self._warm_up_over(t):
            self.warm = self.samples[-1]
        if self.warm is not None:
            self._accumulate(t, self.samples[-1][1])
            if self._sums[0] >= 3:
                self.history.append((t, self._slope()))

    def _accumulate(self, t: float, b: float) -> None:
        s = self._sums
        s[0] += 1
        s[1] += t
        s[2] += b
        s[3] += t * t
        s[4] += t * b

    def _slope(self) -> float:
        """Least-squares slope of bytes over time since warm-up, in bit/s: steadier than end points
        when bytes arrive in bursts (Wi-Fi aggregation, emulators, LEO scheduling)."""
        n, st, sb, stt, stb = self._sums
        den = n * stt - st * st
        return (n * stb - st * sb) / den * 8.0 if den > 0 else 0.0

    @staticmethod
    def _rate(a: tuple[float, int], b: tuple[float, int]) -> float:
        return (b[1] - a[1]) * 8.0 / (b[0] - a[0]) if b[0] > a[0] else 0.0

    def bytes_at(self, t: float) -> float:
        """Cumulative bytes at time t, interpolated between samples."""
        prev = self.samples[0]
        for s in self.samples:
            if s[0] >= t:
                if s[0] == prev[0]:
                    return float(s[1])
                return prev[1] + (s[1] - prev[1]) * (t - prev[0]) / (s[0] - prev[0])
            prev = s
        return float(prev[1])

    def _warm_up_over(self, t: float) -> bool:
        w = self.rules.window_s
        if t >= self.rules.max_warmup_s:
            return True
        if t < 2 * w:
            return False
        recent = self.bytes_at(t) - self.bytes_at(t - w)
        before = self.bytes_at(t - w) - self.bytes_at(t - 2 * w)
        return before > 0 and recent < before * (1.0 + self.rules.growth)

    @property
    def estimate_bps(self) -> Optional[float]:
        """Goodput since warm-up; before it ends, the plain average (better than nothing)."""
        if self.history:
            return self.history[-1][1]
        last = self.samples[-1]
        return self._rate(self.samples[0], last) if last[0] > 0 else None

    @property
    def warmup_s(self) -> Optional[float]:
        return self.warm[0] if self.warm else None

    def stable(self) -> bool:
        """The estimate moved less than stable_pct over the last span_s (and a span has passed)."""
        if self.warm is None or not self.history:
            return False
        now = self.history[-1][0]
        if now - self.warm[0] < self.rules.span_s:
            return False
        recent = [e for t, e in self.history if t >= now - self.rules.span_s]
        current = self.history[-1][1]
        if current <= 0 or len(recent) < 3:
            return False
        return (max(recent) - min(recent)) / current * 100.0 < self.rules.stable_pct

    def stop_reason(self, elapsed_s: float) -> Optional[str]:
        if self.stable():
            return STABLE
        if elapsed_s >= self.rules.time_cap_s:
            return TIME_CAP
        return None


class Allowance:
    """Bytes a phase may still ask the server for, handed out in whole chunks.

    Chunks are only handed out while they fit, so the total never passes the
    cap, except that a cap smaller than one chunk still gets that one chunk:
    a test spends at most cap + one chunk.
    """

    def __init__(self, cap_bytes: Optional[int], chunk: int) -> None:
        self.cap = cap_bytes
        self.chunk = chunk
        self.taken = 0
        self.exhausted = False

    def take(self, want_chunks: int) -> int:
        """How many of `want_chunks` chunks may be requested now (0: the cap is reached)."""
        if self.cap is None:
            self.taken += want_chunks * self.chunk
            return want_chunks
        left = self.cap - self.taken
        n = min(want_chunks, left // self.chunk)
        if n <= 0 and self.taken == 0 and left > 0:
            n = 1
        if n <= 0:
            self.exhausted = True
            return 0
        self.taken += n * self.chunk
        return n

    def take_bytes(self, want: int) -> int:
        """For uploads, where any size can be sent: exact, never past the cap."""
        if self.cap is None:
            self.taken += want
            return want
        n = max(0, min(want, self.cap - self.taken))
        if n == 0:
            self.exhausted = True
        self.taken += n
        return n


def mbps(bps: Optional[float]) -> Optional[float]:
    return None if bps is None or math.isnan(bps) else round(bps / 1e6, 3)
