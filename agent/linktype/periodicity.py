"""Starlink's 15-s period found in an RTT series itself, whatever the clock says: pure.

Starlink reassigns satellites every 15 s, so its RTT holds a level for 15 s and
steps. `agent.linktype.features.step_score` looks for those steps at UTC :12/:27/
:42/:57, which needs a synced clock; a Pi without its RTC often has none. Here the
series is folded at the period instead (epoch folding, as pulsar timing does): for
every phase the median step across the boundaries at that phase is measured, and the
best phase of the 15-s fold must stand out twice over,

- from the other phases of the same fold (a level shift now and then, a scheduler's
  jitter or a slow drift raise every phase alike), and
- from the best phase at least 2 s away from it in the same fold (steps at
  irregular times line up with several phases; Starlink's only with one),

so the period is proven without knowing the phase, and the phase it finds is free to
be compared with :12 when the clock is synced.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from typing import Optional

from agent.linktype.features import MIN_STEP_MS, STEP_GUARD_S, STEP_SPAN_S, Sample, received
from agent.stats import percentile

PERIOD_S = 15.0
PHASE_STEP_S = 0.5
APART_S = 2.0  # phases this far from the best one see none of its step (the step windows are 2 s wide)
MIN_BOUNDARIES = 3
NOISE_FLOOR_MS = 0.3  # below this a median step is timer noise
BUSY_MARGIN_S = STEP_SPAN_S + 1.0  # a boundary's step windows, and the second before a busy one
# boundaries -> (contrast, isolation) the best phase needs; 5 stands for 5 and more
THRESHOLDS = {3: (4.0, 2.0), 4: (3.5, 1.8), 5: (3.0, 1.5)}


@dataclasses.dataclass(frozen=True)
class Periodicity:
    """How strongly a series steps every `PERIOD_S` seconds, and at which phase."""

    contrast: float  # best phase's median step / median over all phases of the 15-s fold
    isolation: float  # best phase's median step / the best phase >= 2 s away from it
    phase_s: float  # epoch mod 15 of the best boundary
    step_ms: float  # median step at the best phase
    boundaries: int  # boundaries with samples on both sides at the best phase
    span_s: float

    @property
    def coverage(self) -> float:
        """Boundaries measured / boundaries in the span: load episodes (not idle) leave gaps,
        and the few boundaries left beside them see a queue's edge, not a satellite's step."""
        return self.boundaries / max(1.0, self.span_s / PERIOD_S)

    @property
    def periodic(self) -> bool:
        """A 15-s period, found without the clock: a real step, standing out in both tests.

        Fewer boundaries make a lucky phase likelier, so they must stand out more.
        """
        if self.boundaries < MIN_BOUNDARIES or self.step_ms < 2.0 or self.coverage < 0.4:
            return False
        need_contrast, need_isolation = THRESHOLDS[min(self.boundaries, 5)]
        return self.contrast >= need_contrast and self.isolation >= need_isolation

    @property
    def aperiodic(self) -> bool:
        """Long enough to have seen the period, and none there: evidence against Starlink."""
        return (
            self.boundaries >= MIN_BOUNDARIES
            and self.span_s >= 3 * PERIOD_S
            and self.coverage >= 0.4
            and self.contrast < 2.5
        )


def _median_between(times: list[float], values: list[float], lo: float, hi: float) -> Optional[float]:
    i, j = bisect.bisect_left(times, lo), bisect.bisect_right(times, hi)
    if j - i < 2:
        return None
    return percentile(sorted(values[i:j]), 50)


def steps_at(
    times: list[float], values: list[float], period: float, phase: float, busy: Sequence[float] = ()
) -> list[float]:
    """|median after - median before| at every boundary t with t mod period == phase, leaving out
    boundaries near a busy sample: a load episode's first second slips past the idle gate, and
    the queue it builds is a step no satellite made."""
    if not times:
        return []
    b = (times[0] - phase) // period * period + phase
    out = []
    while b <= times[-1]:
        k = bisect.bisect_left(busy, b - BUSY_MARGIN_S)
        if k < len(busy) and busy[k] <= b + BUSY_MARGIN_S:
            b += period
            continue
        before = _median_between(times, values, b - STEP_SPAN_S, b - STEP_GUARD_S)
        after = _median_between(times, values, b + STEP_GUARD_S, b + STEP_SPAN_S)
        if before is not None and after is not None:
            out.append(abs(after - before))
        b += period
    return out


def fold(
    times: list[float], values: list[float], period: float, busy: Sequence[float] = ()
) -> list[tuple[float, float, int]]:
    """(phase, median step, boundaries) for every phase of one fold."""
    out = []
    phase = 0.0
    while phase < period - 1e-9:
        steps = steps_at(times, values, period, phase, busy)
        if steps:
            out.append((phase, percentile(sorted(steps), 50), len(steps)))
        phase += PHASE_STEP_S
    return out


def periodicity(series: Sequence[Sample]) -> Optional[Periodicity]:
    """The 15-s fold of `series`, its best phase against the others; None when too short."""
    pts = sorted((s.t, float(s.rtt_ms)) for s in received(series) if s.rtt_ms is not None)
    if len(pts) < 10 or pts[-1][0] - pts[0][0] < 2 * PERIOD_S:
        return None
    times, values = [p[0] for p in pts], [p[1] for p in pts]
    busy = sorted(s.t for s in series if not s.idle)
    main = [f for f in fold(times, values, PERIOD_S, busy) if f[2] >= 2]
    if not main:
        return None
    phase, step, count = max(main, key=lambda f: f[1])
    background = percentile(sorted(f[1] for f in main), 50)
    apart = [f[1] for f in main if min(abs(f[0] - phase), PERIOD_S - abs(f[0] - phase)) >= APART_S]
    if step < MIN_STEP_MS:
        contrast = isolation = 0.0
    else:
        contrast = step / max(background, NOISE_FLOOR_MS)
        isolation = step / max(max(apart, default=0.0), NOISE_FLOOR_MS)
    return Periodicity(
        contrast=round(contrast, 2),
        isolation=round(isolation, 2),
        phase_s=phase,
        step_ms=round(step, 2),
        boundaries=count,
        span_s=round(times[-1] - times[0], 1),
    )


def known_phase(series: Sequence[Sample], phase: float) -> tuple[float, float, int]:
    """(score, median step, boundaries) at one known phase (a synced clock's :12): the median step
    there over the median step a quarter, half and three quarters of a period away. No phase is
    searched, so no look-elsewhere margin is needed; busy boundaries are left out as in the fold."""
    pts = sorted((s.t, float(s.rtt_ms)) for s in received(series) if s.rtt_ms is not None)
    times, values = [p[0] for p in pts], [p[1] for p in pts]
    busy = sorted(s.t for s in series if not s.idle)
    true = steps_at(times, values, PERIOD_S, phase, busy)
    control: list[float] = []
    for off in (3.75, 7.5, 11.25):
        control += steps_at(times, values, PERIOD_S, (phase + off) % PERIOD_S, busy)
    if len(true) < MIN_BOUNDARIES or len(control) < 2:
        return 0.0, 0.0, len(true)
    step = percentile(sorted(true), 50)
    score = 0.0 if step < MIN_STEP_MS else step / max(percentile(sorted(control), 50), NOISE_FLOOR_MS)
    return round(score, 2), round(step, 2), len(true)
