"""Features of an access link from RTT series: pure functions, no I/O.

The link classifier (`agent.linktype.classify`) reads these numbers, never packets. A
series is a list of `Sample`s in send order; `idle` is False for samples taken
while the interface counters showed other traffic (a throughput test, a
download), because a loaded queue can add hundreds of ms on any medium.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence
from typing import Optional

from agent.stats import percentile

SLOT_S = 15.0  # Starlink's global reconfiguration period
STARLINK_PHASE_S = 12.0  # boundaries at UTC :12/:27/:42/:57, i.e. epoch mod 15 == 12
CONTROL_OFFSETS_S = (3.75, 7.5, 11.25)
STEP_GUARD_S, STEP_SPAN_S = 0.4, 2.0  # the windows beside a boundary: [b-2, b-0.4] and [b+0.4, b+2]
MIN_STEP_MS = 1.0  # smaller median steps are measurement noise, not a reconfiguration
PAIR_TOLERANCE_S = 0.05  # the gatherer sends both probes of a pair at the same moment


@dataclasses.dataclass(frozen=True)
class Sample:
    t: float  # send time, UTC epoch seconds
    rtt_ms: Optional[float]  # None: lost
    idle: bool = True


@dataclasses.dataclass(frozen=True)
class PromoTrial:
    """One idle-promotion trial: the first echo after >= 20 s of silence, then the ones right after.

    `disturbed` names why the trial proves nothing, "" when it is valid: "traffic" (the
    interface carried other traffic during the trial, so the radio may have been awake),
    "local" (the gateway's first echo was slow too: a Wi-Fi station waking, not the uplink).
    """

    first_ms: Optional[float]
    following_ms: tuple[float, ...]
    disturbed: str = ""

    @property
    def delta_ms(self) -> Optional[float]:
        if self.disturbed or self.first_ms is None or len(self.following_ms) < 3:
            return None
        return self.first_ms - percentile(sorted(self.following_ms), 50)


@dataclasses.dataclass(frozen=True)
class Spread:
    """Jitter structure of an access-delay series (ms)."""

    minimum: float
    p50: float
    iqr: float
    p90_minus_min: float
    p95_minus_min: float
    flatness: float  # share of samples within 2 ms of the minimum
    count: int


def received(series: Sequence[Sample], idle_only: bool = True) -> list[Sample]:
    return [s for s in series if s.rtt_ms is not None and (s.idle or not idle_only)]


def idle_min(series: Sequence[Sample]) -> Optional[float]:
    values = [s.rtt_ms for s in received(series)]
    return min(v for v in values if v is not None) if values else None


def access_floor(gateway: Sequence[Sample], isp: Sequence[Sample]) -> Optional[float]:
    """min RTT(ISP hop) - min RTT(gateway) over idle samples; the ISP minimum alone without a gateway."""
    high = idle_min(isp)
    if high is None:
        return None
    low = idle_min(gateway)
    return max(0.0, high - low) if low is not None else high


def access_series(gateway: Sequence[Sample], isp: Sequence[Sample]) -> list[Sample]:
    """Per-sample RTT(ISP hop) - RTT(gateway), pairing probes sent at the same moment.

    Subtracting the paired gateway sample removes Wi-Fi and LAN jitter. Without a
    gateway series the ISP series is returned as it is.
    """
    gw = sorted(received(gateway, idle_only=False), key=lambda s: s.t)
    if not gw:
        return list(isp)
    times = [s.t for s in gw]
    out = []
    for s in isp:
        if s.rtt_ms is None:
            out.append(s)
            continue
        i = bisect.bisect_left(times, s.t)
        best = min((j for j in (i - 1, i) if 0 <= j < len(gw)), key=lambda j: abs(times[j] - s.t))
        partner = gw[best]
        if abs(partner.t - s.t) > PAIR_TOLERANCE_S or partner.rtt_ms is None:
            continue
        out.append(Sample(s.t, max(0.0, s.rtt_ms - partner.rtt_ms), s.idle and partner.idle))
    return out


def spread(series: Sequence[Sample], minimum: Optional[float] = None) -> Optional[Spread]:
    """Jitter structure of `series`; `minimum` overrides the reported floor.

    The access floor is best taken as min(ISP) - min(gateway): a Wi-Fi spike
    on one probe of a pair would pull a paired difference below the truth.
    """
    values = sorted(s.rtt_ms for s in received(series) if s.rtt_ms is not None)
    if len(values) < 5:
        return None
    low = values[0]
    return Spread(
        minimum=low if minimum is None else minimum,
        p50=percentile(values, 50),
        iqr=percentile(values, 75) - percentile(values, 25),
        p90_minus_min=percentile(values, 90) - low,
        p95_minus_min=percentile(values, 95) - low,
        flatness=sum(1 for v in values if v <= low + 2.0) / len(values),
        count=len(values),
    )


def _median_between(times: list[float], values: list[float], lo: float, hi: float) -> Optional[float]:
    i, j = bisect.bisect_left(times, lo), bisect.bisect_right(times, hi)
    if j - i < 2:
        return None
    return percentile(sorted(values[i:j]), 50)


def _steps_at(times: list[float], values: list[float], phase: float) -> list[float]:
    """|median after - median before| at every boundary with epoch mod 15 == phase."""
    if not times:
        return []
    first = math.floor((times[0] - phase) / SLOT_S) * SLOT_S + phase
    out = []
    b = first
    while b <= times[-1]:
        before = _median_between(times, values, b - STEP_SPAN_S, b - STEP_GUARD_S)
        after = _median_between(times, values, b + STEP_GUARD_S, b + STEP_SPAN_S)
        if before is not None and after is not None:
            out.append(abs(after - before))
        b += SLOT_S
    return out


@dataclasses.dataclass(frozen=True)
class StepScore:
    score: float  # median step at the boundaries / median step at control offsets
    phase_s: float  # boundary phase used (epoch mod 15)
    boundaries: int  # boundaries with samples on both sides
    step_ms: float  # median step at the boundaries
    scanned: bool  # True when the phase was searched (clock not synced)


def step_score_at(series: Sequence[Sample], phase: float) -> StepScore:
    pts = sorted((s.t, s.rtt_ms) for s in received(series) if s.rtt_ms is not None)
    times = [p[0] for p in pts]
    values = [float(p[1]) for p in pts]
    true = _steps_at(times, values, phase)
    control: list[float] = []
    for off in CONTROL_OFFSETS_S:
        control += _steps_at(times, values, (phase + off) % SLOT_S)
    if len(true) < 2 or len(control) < 2:
        return StepScore(0.0, phase, len(true), 0.0, False)
    step = percentile(sorted(true), 50)
    noise = percentile(sorted(control), 50)
    score = 0.0 if step < MIN_STEP_MS else step / max(noise, 0.3)
    return StepScore(round(score, 3), phase, len(true), round(step, 3), False)


def step_score(series: Sequence[Sample], clock_synced: bool) -> StepScore:
    """Starlink's 15-s UTC-locked steps. Without a synced clock the phase is searched."""
    if clock_synced:
        return step_score_at(series, STARLINK_PHASE_S)
    best: Optional[StepScore] = None
    for k in range(30):
        s = step_score_at(series, k * 0.5)
        if best is None or s.score > best.score:
            best = s
    assert best is not None
    return dataclasses.replace(best, scanned=True)


def phase_matches(phase: float, expected: float = STARLINK_PHASE_S, tolerance: float = 1.0) -> bool:
    d = abs(phase - expected) % SLOT_S
    return min(d, SLOT_S - d) <= tolerance


def loss_alignment(series: Sequence[Sample], phase: float = STARLINK_PHASE_S) -> tuple[float, int]:
    """(share of lost probes within 1 s of a boundary, number of losses); random loss gives ~0.13."""
    lost = [s.t for s in series if s.rtt_ms is None]
    if not lost:
        return 0.0, 0
    near = 0
    for t in lost:
        d = (t - phase) % SLOT_S
        if min(d, SLOT_S - d) <= 1.0:
            near += 1
    return near / len(lost), len(lost)


def promo_hits(trials: Sequence[PromoTrial], threshold_ms: float = 40.0) -> tuple[int, int, Optional[float]]:
    """(trials over the threshold, valid trials, median delta) of the idle-promotion test."""
    deltas = [d for d in (t.delta_ms for t in trials) if d is not None]
    if not deltas:
        return 0, 0, None
    return sum(1 for d in deltas if d >= threshold_ms), len(deltas), percentile(sorted(deltas), 50)


@dataclasses.dataclass(frozen=True)
class Clusters:
    low_ms: float
    high_ms: float
    low_windows: int
    high_windows: int
    split_ms: float  # windows with a minimum below this belong to the low cluster


def window_minima(series: Sequence[Sample], window_s: float = 10.0) -> list[tuple[float, float]]:
    """(window start, idle minimum) of every window with at least 3 idle replies."""
    groups: dict[int, list[float]] = {}
    for s in received(series):
        if s.rtt_ms is not None:
            groups.setdefault(int(s.t // window_s), []).append(s.rtt_ms)
    return [(k * window_s, min(v)) for k, v in sorted(groups.items()) if len(v) >= 3]


def two_clusters(series: Sequence[Sample], window_s: float = 10.0) -> Optional[Clusters]:
    """Two well-separated groups of window minima (a failover or multi-WAN link), or None.

    Separated means the gap is >= 50 ms and the upper group is at least twice
    the lower one: slot changes on LEO and scheduler jitter on LTE move minima
    by a few ms, a switch between two links moves them by far more.
    """
    minima = sorted(m for _, m in window_minima(series, window_s))
    if len(minima) < 6:
        return None
    gaps = [(minima[i + 1] - minima[i], i) for i in range(len(minima) - 1)]
    gap, i = max(gaps)
    low, high = minima[: i + 1], minima[i + 1 :]
    need = max(3, math.ceil(0.15 * len(minima)))
    if gap < 50.0 or high[0] < 2.0 * max(low[-1], 1.0) or len(low) < need or len(high) < need:
        return None
    return Clusters(
        low_ms=low[0],
        high_ms=high[0],
        low_windows=len(low),
        high_windows=len(high),
        split_ms=(low[-1] + high[0]) / 2.0,
    )


def split_by_cluster(series: Sequence[Sample], split_ms: float, window_s: float = 10.0) -> tuple[list, list]:
    """The series cut into the windows of the low and of the high cluster."""
    minima = dict(window_minima(series, window_s))
    low: list[Sample] = []
    high: list[Sample] = []
    for s in series:
        start = int(s.t // window_s) * window_s
        m = minima.get(start)
        if m is None:
            continue
        (low if m < split_ms else high).append(s)
    return low, high


def span_s(series: Sequence[Sample]) -> float:
    return series[-1].t - series[0].t if len(series) > 1 else 0.0
