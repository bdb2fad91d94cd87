"""Availability arithmetic for the month report: pure, seconds in, figures out (rules: docs/sla.md).

A node's time is one of: up (a public target answered), down (the node
measured and nothing beyond its gateway answered), unknown (no evidence),
off (powered off: a new boot after a silent gap, or the incidents engine's
power periods) and maintenance (announced windows). Availability is
up / (up + down): off and maintenance are excluded from the base, and
unknown is reported beside it, never counted for or against the provider.

Why intervals and not minute slots: a month of 10,000 nodes is 432 million
minute slots but only a few segments per node, and the figures are exact to
the second (shown as minutes), so a test can compute them by hand.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Optional

UP, DOWN, UNKNOWN, OFF, MAINTENANCE = "up", "down", "unknown", "off", "maintenance"
STATUSES = (UP, DOWN, UNKNOWN, OFF, MAINTENANCE)

Window = tuple[float, float]  # [start, stop) in epoch seconds


@dataclasses.dataclass(frozen=True)
class Sample:
    """One public-target reading: did that target answer?"""

    ts: float
    target: str
    up: bool
    boot: str = ""


@dataclasses.dataclass(frozen=True)
class Segment:
    """[start, stop) with one status; `boot` is that of the newest reading at `start`."""

    start: float
    stop: float
    status: str
    boot: str


def status_segments(samples: Iterable[Sample], hold_s: float, since: Optional[float] = None) -> list[Segment]:
    """The node's status over time, from its first reading to its last one plus `hold_s`.

    At time t a target's newest reading counts while it is younger than
    `hold_s`. The node is up when any counting reading answered, down when
    readings count and none answered, unknown when none counts (a gap inside
    the span; nothing is emitted after the last reading expires). Causal: the
    status at t depends on readings up to t only, so `since` lets a caller
    rebuild only the tail after new readings (readings from `since - hold_s`
    on are enough).
    """
    ordered = sorted(samples, key=lambda s: s.ts)
    latest: dict[str, tuple[float, bool]] = {}
    boot = ""
    out: list[Segment] = []

    def emit(a: float, b: float, status: str) -> None:
        if since is not None:
            a = max(a, since)
        if b <= a:
            return
        last = out[-1] if out else None
        if last is not None and last.stop == a and last.status == status and last.boot == boot:
            out[-1] = dataclasses.replace(last, stop=b)
        else:
            out.append(Segment(a, b, status, boot))

    def status_at(t: float) -> str:
        live = [up for ts, up in latest.values() if ts <= t < ts + hold_s]
        return UNKNOWN if not live else UP if any(live) else DOWN

    i, n = 0, len(ordered)
    while i < n:
        t = ordered[i].ts
        while i < n and ordered[i].ts == t:  # readings of one instant count together
            s = ordered[i]
            latest[s.target] = (s.ts, s.up)
            boot = s.boot
            i += 1
        t_next = ordered[i].ts if i < n else math.inf
        cuts = sorted({ts + hold_s for ts, _ in latest.values() if t < ts + hold_s < t_next})
        edges = [t, *cuts]
        if t_next != math.inf:
            edges.append(t_next)
        for a, b in zip(edges, edges[1:]):
            status = status_at(a)
            if t_next == math.inf and status == UNKNOWN:
                break  # after the last reading: no trailing gap
            emit(a, b, status)
    return out


def mark_power_off(segments: Sequence[Segment]) -> list[Segment]:
    """A gap after which the node came back with a new boot id was a power cut: off, not unknown.

    A gap is an unknown segment or a hole between two segments (what a rebuilt
    tail leaves); holes that were power cuts become off segments.
    """
    ordered = sorted(segments, key=lambda s: s.start)
    out: list[Segment] = []
    for k, seg in enumerate(ordered):
        after = ordered[k + 1] if k + 1 < len(ordered) else None
        if after is not None and after.boot != seg.boot:
            if seg.status == UNKNOWN and seg.stop >= after.start:
                seg = dataclasses.replace(seg, status=OFF)
            elif seg.stop < after.start:
                out.append(seg)
                seg = Segment(seg.stop, after.start, OFF, seg.boot)
        out.append(seg)
    return out


def merge_windows(windows: Iterable[Window]) -> list[Window]:
    """Sorted, disjoint union of [start, stop) windows; empty ones dropped."""
    out: list[Window] = []
    for a, b in sorted(w for w in windows if w[1] > w[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _inside(t: float, windows: Sequence[Window], starts: Sequence[float]) -> bool:
    k = bisect.bisect_right(starts, t) - 1
    return k >= 0 and windows[k][0] <= t < windows[k][1]


@dataclasses.dataclass
class Tally:
    """Seconds of each kind over a period; added up for desa, kecamatan and provider."""

    up_s: float = 0.0
    down_s: float = 0.0
    unknown_s: float = 0.0
    off_s: float = 0.0
    maintenance_s: float = 0.0

    def add(self, other: Tally) -> Tally:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    @property
    def period_s(self) -> float:
        return self.up_s + self.down_s + self.unknown_s + self.off_s + self.maintenance_s

    @property
    def counted_s(self) -> float:
        """The base of availability: time with evidence, neither excluded nor unknown."""
        return self.up_s + self.down_s

    @property
    def availability(self) -> Optional[float]:
        """up / (up + down), 0..1; None without evidence."""
        return self.up_s / self.counted_s if self.counted_s > 0 else None

    @property
    def bounds(self) -> Optional[tuple[float, float]]:
        """Availability were every unknown second down, and were it up: how much the unknown could move it."""
        base = self.counted_s + self.unknown_s
        if base <= 0:
            return None
        return self.up_s / base, (self.up_s + self.unknown_s) / base

    def to_dict(self) -> dict[str, Optional[float]]:
        out: dict[str, Optional[float]] = {f.name: round(getattr(self, f.name), 3) for f in dataclasses.fields(self)}
        out["availability_pct"] = None if self.availability is None else round(self.availability * 100, 4)
        return out


def tally(
    segments: Sequence[Segment],
    start: float,
    stop: float,
    maintenance: Sequence[Window] = (),
    power: Sequence[Window] = (),
) -> Tally:
    """Seconds of [start, stop) by kind. Maintenance wins over off, off over what was measured.

    Time no segment covers is unknown. `segments` should have gone through
    `mark_power_off`; `power` adds off periods known otherwise (incidents).
    """
    out = Tally()
    if stop <= start:
        return out
    maint, off = merge_windows(maintenance), merge_windows(power)
    segs = sorted((s for s in segments if s.stop > start and s.start < stop), key=lambda s: s.start)
    edges = {start, stop}
    for s in segs:
        edges.update((s.start, s.stop))
    for a, b in (*maint, *off):
        edges.update((a, b))
    points = sorted(e for e in edges if start <= e <= stop)
    seg_starts = [s.start for s in segs]
    m_starts, o_starts = [w[0] for w in maint], [w[0] for w in off]
    for a, b in zip(points, points[1:]):
        if b <= a:
            continue
        mid = a + (b - a) / 2
        if _inside(mid, maint, m_starts):
            kind = MAINTENANCE
        elif _inside(mid, off, o_starts):
            kind = OFF
        else:
            k = bisect.bisect_right(seg_starts, mid) - 1
            kind = segs[k].status if k >= 0 and segs[k].start <= mid < segs[k].stop else UNKNOWN
        setattr(out, f"{kind}_s", getattr(out, f"{kind}_s") + (b - a))
    return out


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """Linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclasses.dataclass(frozen=True)
class Contract:
    """What a provider promised: availability (0..100 %) and a speed (Mbit/s, 0 = none)."""

    availability_pct: Optional[float]
    speed_mbps: Optional[float]


def shortfall(measured: Tally, contract: Contract) -> dict[str, Optional[float]]:
    """How far below its contracted availability a provider fell: percentage points and minutes."""
    avail = measured.availability
    if contract.availability_pct is None or avail is None:
        return {"shortfall_pct": None, "shortfall_min": None, "met": None}
    owed = contract.availability_pct / 100.0 * measured.counted_s
    short_s = max(0.0, owed - measured.up_s)
    return {
        "shortfall_pct": round(max(0.0, contract.availability_pct - avail * 100.0), 4),
        "shortfall_min": round(short_s / 60.0, 2),
        "met": short_s <= 1e-9,
    }
