"""The one maintenance calendar: planned PLN blackouts ("pemadaman bergilir"), ISP works. Pure.

An officer announces planned work once, as `[[maintenance]]` in collector.toml, and every
part of the collector reads it from here: the incident engine tells nothing of an incident
that began inside a window, and the SLA leaves a window's time out of availability
(docs/sla.md, docs/incidents.md).

A window covers nodes, [[incidents.groups]], kecamatan, desa or operators (none listed:
every node), once (`start`..`end`) or on every listed day (`time_start`..`time_end`,
past midnight when the end is earlier). Times without an offset are in `[web] timezone`,
the regency's time that the month report and the pages are reckoned in.

The old `[[sla.maintenance]]` and `[[incidents.maintenance]]` tables still load:
`legacy_tables` turns them into this form, so an existing collector.toml keeps working.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Optional

from agent.collector.incidents.settings import GroupSettings
from agent.collector.sla import Window, merge_windows
from agent.schema import Problem, setting

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
COVERAGE = ("nodes", "groups", "kecamatan", "desa", "operator")
LEGACY_KEYS = ("sla", "incidents")  # the sections whose `maintenance` array is the old form
LEGACY_SCOPES = {"node": "nodes", "desa": "desa", "kecamatan": "kecamatan", "operator": "operator"}


def parse_when(text: str, tz: dt.tzinfo) -> Optional[float]:
    """An ISO 8601 date-time as epoch seconds, None when it is not one; without an offset it is in `tz`."""
    try:
        stamp = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=tz)
    return stamp.timestamp()


def check_when(value: str) -> Optional[str]:
    if value and parse_when(value, dt.timezone.utc) is None:
        return 'use an ISO 8601 date-time, e.g. "2026-07-01T09:00:00+07:00"'
    return None


def check_clock(value: str) -> Optional[str]:
    if value and not CLOCK_RE.match(value):
        return 'use HH:MM from 00:00 to 23:59, e.g. "09:00"'
    return None


@dataclasses.dataclass(frozen=True)
class MaintenanceWindow:
    """One window: once (start, end) or recurring (days, time_start, time_end); whom it covers is the union of
    its lists, none listed: every node. The old [[sla.maintenance]] and [[incidents.maintenance]] still load."""

    name: str = setting(help='what it is, e.g. "pemadaman bergilir Sekayu"')
    note: str = setting("", help="shown in the month report")
    nodes: list[str] = setting(factory=list, help="node ids it covers")
    groups: list[str] = setting(factory=list, help="[[incidents.groups]] names it covers")
    kecamatan: list[str] = setting(factory=list, help="kecamatan it covers")
    desa: list[str] = setting(factory=list, help="desa it covers")
    operator: list[str] = setting(factory=list, help='providers it covers (the operator tag, e.g. "telkom")')
    start: str = setting("", check=check_when, help="one-off: when it begins (without an offset: [web] timezone)")
    end: str = setting("", check=check_when, help="one-off: when it ends")
    days: list[str] = setting(factory=list, choices=DAYS, help="recurring: on these days")
    time_start: str = setting("", check=check_clock, help='recurring: from HH:MM local time, e.g. "09:00"')
    time_end: str = setting("", check=check_clock, help="recurring: to HH:MM (earlier than time_start: past midnight)")

    def coverage(self) -> dict[str, list[str]]:
        """The lists it names; empty: every node."""
        return {key: list(getattr(self, key)) for key in COVERAGE if getattr(self, key)}


def window_problems(w: MaintenanceWindow, path: str, group_names: Iterable[str]) -> list[Problem]:
    """What its keys cannot check one by one: one-off or recurring, in order, naming known groups."""
    problems = []
    if not w.name.strip():
        problems.append(Problem(f"{path}.name", "needed: say what the work is"))
    known = set(group_names)
    for name in w.groups:
        if name not in known:
            problems.append(Problem(f"{path}.groups", f"no group '{name}' in [[incidents.groups]]"))
    one_off, recurring = bool(w.start or w.end), bool(w.days or w.time_start or w.time_end)
    if one_off == recurring:
        problems.append(Problem(path, "give either start and end (one-off) or days, time_start and time_end"))
    elif one_off:
        begins, ends = parse_when(w.start, dt.timezone.utc), parse_when(w.end, dt.timezone.utc)
        if not (w.start and w.end):
            problems.append(Problem(path, "a one-off window needs both start and end"))
        elif begins is not None and ends is not None and ends <= begins:
            problems.append(Problem(f"{path}.end", "must be after start"))
    elif not (w.days and w.time_start and w.time_end) or w.time_start == w.time_end:
        problems.append(Problem(path, "a recurring window needs days, time_start and a different time_end"))
    return problems


def _from_sla_form(entry: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
    """[[sla.maintenance]] (start, end, scope = "" | node:ID | desa:X | kecamatan:X | operator:X, note)."""
    out = {k: v for k, v in entry.items() if k != "scope"}
    scope = entry.get("scope", "")
    kind, sep, name = scope.partition(":") if isinstance(scope, str) else ("", "", "")
    if not isinstance(scope, str) or (scope and not (sep and kind in LEGACY_SCOPES and name)):
        problems.append(
            Problem(
                f"{path}.scope", 'expected "" (every node) or one of node:ID, desa:NAME, kecamatan:NAME, operator:NAME'
            )
        )
    elif scope:
        out[LEGACY_SCOPES[kind]] = [name]
    note = entry.get("note")
    out.setdefault("name", note if isinstance(note, str) and note else "announced maintenance")
    return out


def legacy_tables(data: dict[str, Any], problems: list[Problem]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """`data` without the old maintenance arrays, and each of their tables in the new form, with its key path.

    `data` itself is left as it was. A table that is not a table is passed on as it is,
    for the builder to say so at its path.
    """
    rest = dict(data)
    found: list[tuple[str, Any]] = []
    for section in LEGACY_KEYS:
        table = rest.get(section)
        if not isinstance(table, dict) or "maintenance" not in table:
            continue
        rest[section] = {k: v for k, v in table.items() if k != "maintenance"}
        entries = table["maintenance"]
        if not isinstance(entries, list):
            problems.append(Problem(f"{section}.maintenance", "expected an array of tables: [[maintenance]]"))
            continue
        for i, entry in enumerate(entries):
            path = f"{section}.maintenance[{i}]"
            if isinstance(entry, dict) and section == "sla":
                entry = _from_sla_form(entry, path, problems)
            found.append((path, entry))
    return rest, found


# -- the calendar ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Place:
    """Who a node is, as a window's lists name it."""

    node: str
    kecamatan: str = ""
    desa: str = ""
    operator: str = ""


@dataclasses.dataclass(frozen=True)
class Occurrence:
    """One stretch of a window: a one-off window has one, a recurring one one per listed day."""

    name: str
    start: float
    end: float


def _minutes(hhmm: str) -> int:
    hours, _, mins = hhmm.partition(":")
    return int(hours) * 60 + int(mins) if hhmm else 0


def _folded(items: Iterable[str]) -> frozenset[str]:
    return frozenset(i.casefold() for i in items)


class _Rule:
    """A window made ready to answer: its coverage as sets (groups spelled out), its times as numbers."""

    def __init__(self, w: MaintenanceWindow, tz: dt.tzinfo, groups: dict[str, GroupSettings]) -> None:
        self.window = w
        members = [groups[name] for name in w.groups if name in groups]
        self.nodes = frozenset([*w.nodes, *(n for g in members for n in g.nodes)])
        self.kecamatan = _folded([*w.kecamatan, *(k for g in members for k in g.kecamatan)])
        self.desa = _folded([*w.desa, *(d for g in members for d in g.desa)])
        self.operator = _folded(w.operator)
        self.everyone = not w.coverage()
        self.start = parse_when(w.start, tz) if w.start else None
        self.end = parse_when(w.end, tz) if w.end else None
        self.days = frozenset(DAYS.index(d) for d in w.days)
        self.minute_start, self.minute_end = _minutes(w.time_start), _minutes(w.time_end)
        self.tz = tz

    def covers(self, p: Place) -> bool:
        return (
            self.everyone
            or p.node in self.nodes
            or p.kecamatan.casefold() in self.kecamatan
            or p.desa.casefold() in self.desa
            or p.operator.casefold() in self.operator
        )

    def occurrences(self, since: float, until: float) -> Iterator[Occurrence]:
        """Its occurrences that overlap [since, until), whole (not cut to the period)."""
        if self.start is not None and self.end is not None:
            if self.start < until and self.end > since:
                yield Occurrence(self.window.name, self.start, self.end)
            return
        if not self.days:
            return
        # One that began the day before may run past midnight into the period.
        day = dt.datetime.fromtimestamp(since, self.tz).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(until, self.tz).date()
        past_midnight = self.minute_end <= self.minute_start
        while day <= last:
            if day.weekday() in self.days:
                begin = self._at(day, self.minute_start)
                finish = self._at(day + dt.timedelta(days=1 if past_midnight else 0), self.minute_end)
                if begin < until and finish > since:
                    yield Occurrence(self.window.name, begin, finish)
            day += dt.timedelta(days=1)

    def _at(self, day: dt.date, minute: int) -> float:
        naive = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
        return naive.replace(tzinfo=self.tz).timestamp()


class Calendar:
    """Every announced window; which covers a node at a time (the engine), and for how long in a period (the SLA)."""

    def __init__(
        self, windows: Sequence[MaintenanceWindow], tz: dt.tzinfo, groups: Sequence[GroupSettings] = ()
    ) -> None:
        by_name = {g.name: g for g in groups}
        self.rules = [_Rule(w, tz, by_name) for w in windows]

    def covering(self, place: Place, ts: float) -> Optional[Occurrence]:
        """The occurrence covering `place` at `ts`; of several, the one that ends last."""
        found = [
            o
            for rule in self.rules
            if rule.covers(place)
            for o in rule.occurrences(ts, ts + 1.0)
            if o.start <= ts < o.end
        ]
        return max(found, key=lambda o: o.end) if found else None

    def intervals(self, place: Place, since: float, until: float) -> list[Window]:
        """The time in [since, until) a window covers `place`: recurring windows expanded, overlaps merged."""
        spans = [
            (max(o.start, since), min(o.end, until))
            for rule in self.rules
            if rule.covers(place)
            for o in rule.occurrences(since, until)
        ]
        return merge_windows(spans)

    def windows_in(self, since: float, until: float) -> list[tuple[MaintenanceWindow, list[Window]]]:
        """Each window with an occurrence in [since, until), and those occurrences cut to the period."""
        out = []
        for rule in self.rules:
            spans = [(max(o.start, since), min(o.end, until)) for o in rule.occurrences(since, until)]
            if spans:
                out.append((rule.window, spans))
        return out
