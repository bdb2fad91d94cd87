"""Maintenance windows: planned PLN blackouts ("pemadaman bergilir"), ISP works. Pure.

A window covers nodes, groups or kecamatan, once (start..end) or every listed day
(time_start..time_end local time, past midnight when the end is earlier). The engine
asks one question: was this node inside a window when its incident started, and when
does that window end?
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Optional

from agent.collector.incidents.settings import DAYS, MaintenanceSettings, parse_when


@dataclasses.dataclass(frozen=True)
class Occurrence:
    name: str
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class Window:
    name: str
    nodes: frozenset[str]
    groups: frozenset[str]
    kecamatan: frozenset[str]  # casefolded
    start: Optional[float]  # one-off
    end: Optional[float]
    days: frozenset[int]  # recurring: weekday numbers, Monday 0
    minute_start: int
    minute_end: int
    tz: dt.tzinfo

    @classmethod
    def of(cls, m: MaintenanceSettings, tz: dt.tzinfo) -> Window:
        def minutes(hhmm: str) -> int:
            h, _, mm = hhmm.partition(":")
            return int(h) * 60 + int(mm) if hhmm else 0

        return cls(
            name=m.name,
            nodes=frozenset(m.nodes),
            groups=frozenset(m.groups),
            kecamatan=frozenset(k.casefold() for k in m.kecamatan),
            start=parse_when(m.start, tz) if m.start else None,
            end=parse_when(m.end, tz) if m.end else None,
            days=frozenset(DAYS.index(d) for d in m.days),
            minute_start=minutes(m.time_start),
            minute_end=minutes(m.time_end),
            tz=tz,
        )

    def covers(self, node: str, kecamatan: str, groups: Iterable[str]) -> bool:
        return node in self.nodes or kecamatan.casefold() in self.kecamatan or bool(self.groups.intersection(groups))

    def occurrence(self, ts: float) -> Optional[Occurrence]:
        """The occurrence of this window that contains `ts`, if any."""
        if self.start is not None and self.end is not None:
            return Occurrence(self.name, self.start, self.end) if self.start <= ts < self.end else None
        local = dt.datetime.fromtimestamp(ts, self.tz)
        for back in (1, 0):  # one that began yesterday may run past midnight into today
            day = local.date() - dt.timedelta(days=back)
            if day.weekday() not in self.days:
                continue
            begin = self._at(day, self.minute_start)
            ends_next_day = self.minute_end <= self.minute_start
            finish = self._at(day + dt.timedelta(days=1 if ends_next_day else 0), self.minute_end)
            if begin <= ts < finish:
                return Occurrence(self.name, begin, finish)
        return None

    def _at(self, day: dt.date, minute: int) -> float:
        naive = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
        return naive.replace(tzinfo=self.tz).timestamp()


class Calendar:
    """Every configured window; which one (if any) covers a node at a time."""

    def __init__(self, settings: Iterable[MaintenanceSettings], tz: dt.tzinfo) -> None:
        self.windows = [Window.of(m, tz) for m in settings]

    def covering(self, node: str, kecamatan: str, groups: Iterable[str], ts: float) -> Optional[Occurrence]:
        groups = tuple(groups)
        found = [o for w in self.windows if w.covers(node, kecamatan, groups) for o in [w.occurrence(ts)] if o]
        return max(found, key=lambda o: o.end) if found else None
