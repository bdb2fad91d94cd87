"""Keeping to the monthly budget: how far to step down, and what each step runs. Pure.

The budget is spread over the period: by any moment the agent may have spent
its pro-rata share plus one day's worth (`allowance`). Ahead of that pace it
steps down rather than stopping:

| level   | when                                              | what runs |
|---------|---------------------------------------------------|-----------|
| full    | on pace, under 75 % of the budget                 | the configured schedule |
| lean    | ahead of pace, or 75 % spent                      | no throughput or path tests; one public ICMP target, one DNS target; uplink probes every 3rd time |
| minimal | 25 % ahead of pace, or 90 % spent                 | the gateway, one public ICMP and one TCP target every 10th time, the link look every 6th, the host reading; nothing else |
| hold    | the budget is spent but for a small reserve       | nothing crosses the uplink: LAN probes only, spooled; reporting waits for the next period |

A level is left upwards only when it would still hold with 10 % more spent, so
the agent does not swing between two levels at a threshold. Reporting is never
thinned (it is what the budget is for); a backlog is sent in compressed batches,
and at `hold` not at all, so a long outage's replay cannot overrun the budget.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any, Callable, Optional

FULL, LEAN, MINIMAL, HOLD = "full", "lean", "minimal", "hold"
LEVELS = (FULL, LEAN, MINIMAL, HOLD)
LEAN_SHARE, MINIMAL_SHARE = 0.75, 0.90  # of the budget
LEAN_PACE, MINIMAL_PACE = 1.0, 1.25  # spent / allowance
STEP_UP_MARGIN = 1.10
RESERVE_SHARE, RESERVE_MIN = 0.005, 4096  # kept back at hold: in-flight runs, a DISCONNECT, estimates' error

SAYS = {
    FULL: "",
    LEAN: "data budget: lean schedule (fewer targets, longer intervals, no throughput tests)",
    MINIMAL: "data budget: minimal schedule (gateway, one public target, the link look; long intervals)",
    HOLD: "data budget spent: nothing crosses the uplink until the next period; readings are kept in the spool",
}


def period_end(start: dt.date, reset_day: int) -> dt.date:
    """The first day of the period after the one starting on `start`."""
    import calendar

    year, month = (start.year, start.month + 1) if start.month < 12 else (start.year + 1, 1)
    return dt.date(year, month, min(reset_day, calendar.monthrange(year, month)[1]))


def allowance(budget: int, start: dt.date, end: dt.date, now: dt.datetime) -> float:
    """What may be spent by `now`: the pro-rata share of the period, plus one day's."""
    days = max(1.0, float((end - start).days))
    elapsed = (now.date() - start).days + (now.hour * 3600 + now.minute * 60 + now.second) / 86400.0
    return budget * min(1.0, max(0.0, elapsed + 1.0) / days)


def reserve(budget: int) -> int:
    return max(RESERVE_MIN, int(budget * RESERVE_SHARE))


def _raw_level(spent: float, budget: int, allowed: float) -> str:
    if spent >= budget - reserve(budget):
        return HOLD
    share, pace = spent / budget, spent / max(allowed, 1.0)
    if pace > MINIMAL_PACE or share >= MINIMAL_SHARE:
        return MINIMAL
    if pace > LEAN_PACE or share >= LEAN_SHARE:
        return LEAN
    return FULL


def level(spent: int, budget: Optional[int], allowed: float, current: str = FULL) -> str:
    """The level for `spent` bytes against `budget` (None: no budget, always full), given `current`."""
    if not budget:
        return FULL
    new = _raw_level(spent, budget, allowed)
    if LEVELS.index(new) < LEVELS.index(current if current in LEVELS else FULL):
        stricter = _raw_level(spent * STEP_UP_MARGIN, budget, allowed)
        new = max(new, stricter, key=LEVELS.index)
        new = min(new, current, key=LEVELS.index)
    return new


@dataclasses.dataclass(frozen=True)
class Target:
    """What the plan needs to know of a scheduled target."""

    label: str
    kind: str
    target: str
    server: str = ""  # dns: "system" or an address


def target_of(t: Any) -> Target:
    """A TargetConfig (or anything with kind, target and label) as a plan Target."""
    return Target(str(t.label), str(t.kind), str(t.target), str(getattr(t.options, "server", "") or ""))


# Per level: kind -> interval factor for uplink targets (None: not run). Local targets and the host reading
# only cost their Readings, so they are stretched less.
FACTORS: dict[str, dict[str, Optional[float]]] = {
    LEAN: {"icmp": 3.0, "tcp": 3.0, "dns": 3.0, "http": 3.0, "link": 2.0, "throughput": None, "path": None},
    MINIMAL: {"icmp": 10.0, "tcp": 10.0, "dns": None, "http": None, "link": 6.0, "throughput": None, "path": None},
    HOLD: {},
}
LOCAL_FACTOR = {LEAN: 1.0, MINIMAL: 4.0, HOLD: 10.0}
HOST_FACTOR = {LEAN: 2.0, MINIMAL: 6.0, HOLD: 6.0}
FREE_KINDS = ("host", "usage", "dish")


def plan(step: str, targets: Iterable[Any], local: Callable[[str], bool]) -> dict[str, Optional[float]]:
    """label -> interval factor (None: paused) for each target at level `step`; {} at full."""
    if step not in (LEAN, MINIMAL, HOLD):
        return {}
    out: dict[str, Optional[float]] = {}
    kept: dict[str, int] = {}
    for t in (target_of(x) for x in targets):
        if t.kind in FREE_KINDS:
            out[t.label] = HOST_FACTOR[step]
            continue
        if t.kind in ("icmp", "tcp") and local(t.target):
            out[t.label] = LOCAL_FACTOR[step]
            continue
        factor = FACTORS[step].get(t.kind)
        if factor is not None:
            # one public target of a kind is enough to tell online from dark
            kept[t.kind] = kept.get(t.kind, 0) + 1
            single = t.kind in ("icmp", "dns") or (step == MINIMAL and t.kind == "tcp")
            if single and kept[t.kind] > 1:
                factor = None
        out[t.label] = factor
    return out


def says(step: str) -> str:
    """The sentence for the status and the log."""
    return SAYS.get(step, "")
