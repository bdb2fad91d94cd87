"""The data budget: a ledger of bytes spent on tests, and the rule that decides whether one may run.

On a satellite quota every test is paid for, so the node keeps count across
restarts (a JSON file in the state directory, replaced atomically) and the
month starts on the day the operator's quota resets. A test is skipped when
it would pass a budget, estimating its cost from the last test's bytes.

The same ledger counts all of the agent's own traffic (`usage`: bytes this
period per kind, probes and reporting, tests included; `usage_day`: all of it
today), which `agent.usage` keeps to the node's one monthly budget. Tests keep
their own counts and budget beside it, as before.

The calendar comes from a clock that may be wrong: a Pi without RTC boots at
an old date, then NTP steps it forward. So the counts only ever roll forward,
and only on a date later than the latest one they were kept for: an earlier
date (the clock stepped back) counts in the current day and period, and a jump
beyond `MAX_STEP_DAYS` is held as the same period until a later day confirms
it (a clock stepped far ahead by mistake, then corrected, forgets nothing).
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import tempfile
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

LEDGER_FILE = "throughput-ledger.json"
MAX_STEP_DAYS = 62  # a node switched off for two months rolls at once; a longer jump waits a day


@dataclasses.dataclass(frozen=True)
class Budget:
    monthly_bytes: Optional[int]  # None: no limit
    daily_bytes: Optional[int]
    reset_day: int = 1  # day of month the monthly count starts again (clamped to short months)


@dataclasses.dataclass(frozen=True)
class LedgerState:
    period: str = ""  # first day of the current monthly period, ISO date
    day: str = ""  # the day daily_bytes counts, ISO date: the latest date the counts were kept for
    month_bytes: int = 0
    day_bytes: int = 0
    tests: int = 0
    last_bytes: Optional[int] = None  # bytes of the last test, the estimate for the next
    jump: str = ""  # a date far beyond `day`, not yet confirmed by a later one
    usage: dict[str, int] = dataclasses.field(default_factory=dict)  # all traffic this period, bytes per kind
    usage_day: int = 0  # all traffic today
    level: str = ""  # the step the agent took to keep to its budget (agent.usage.pace), as last saved

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerState:
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        usage = kept.get("usage")
        kept["usage"] = {
            str(k): int(v) for k, v in (usage.items() if isinstance(usage, dict) else ()) if isinstance(v, int)
        }
        return cls(**kept)

    @property
    def usage_month(self) -> int:
        """All of the agent's traffic this period, in bytes."""
        return sum(self.usage.values())


def period_start(today: dt.date, reset_day: int) -> dt.date:
    """The first day of the monthly period `today` falls in."""

    def clamped(year: int, month: int) -> dt.date:
        return dt.date(year, month, min(reset_day, calendar.monthrange(year, month)[1]))

    this_month = clamped(today.year, today.month)
    if today >= this_month:
        return this_month
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return clamped(year, month)


def _date(text: str) -> Optional[dt.date]:
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def roll(state: LedgerState, today: dt.date, reset_day: int) -> LedgerState:
    """The state with its counters reset where a new period or a new day has begun.

    Never backwards: spending is forgotten only when the calendar really moved on.
    """
    last = _date(state.day)
    if last is not None and today <= last:
        return state  # the same day, or the clock stepped back: the counts stay where they are
    if last is not None and (today - last).days > MAX_STEP_DAYS:
        seen = _date(state.jump)
        if seen is None or not seen < today <= seen + dt.timedelta(days=MAX_STEP_DAYS):
            return dataclasses.replace(state, jump=today.isoformat())  # implausible so far: the same period
    period = period_start(today, reset_day).isoformat()
    if state.period != period:
        state = dataclasses.replace(state, period=period, month_bytes=0, usage={})
    return dataclasses.replace(state, day=today.isoformat(), day_bytes=0, usage_day=0, jump="")


def record(state: LedgerState, used: int, today: dt.date, reset_day: int) -> LedgerState:
    state = roll(state, today, reset_day)
    return dataclasses.replace(
        spend(state, {"throughput": used}, today, reset_day),
        month_bytes=state.month_bytes + used,
        day_bytes=state.day_bytes + used,
        tests=state.tests + 1,
        last_bytes=used,
    )


def spend(state: LedgerState, used: dict[str, int], today: dt.date, reset_day: int) -> LedgerState:
    """Add the agent's own traffic, bytes per kind, to the period's and the day's counts."""
    state = roll(state, today, reset_day)
    usage = dict(state.usage)
    for kind, n in used.items():
        if n > 0:
            usage[kind] = usage.get(kind, 0) + int(n)
    return dataclasses.replace(
        state, usage=usage, usage_day=state.usage_day + sum(max(0, int(n)) for n in used.values())
    )


def refusal(state: LedgerState, budget: Budget, today: dt.date, estimate: int) -> Optional[str]:
    """Why a test estimated at `estimate` bytes may not run now; None if it may."""
    state = roll(state, today, budget.reset_day)
    mb = 1e6
    if budget.daily_bytes is not None and state.day_bytes + estimate > budget.daily_bytes:
        return (
            f"daily data budget: {state.day_bytes / mb:.1f} of {budget.daily_bytes / mb:.1f} MB used today, "
            f"a test costs about {estimate / mb:.1f} MB"
        )
    if budget.monthly_bytes is not None and state.month_bytes + estimate > budget.monthly_bytes:
        return (
            f"monthly data budget: {state.month_bytes / mb:.1f} of {budget.monthly_bytes / mb:.1f} MB used "
            f"since {state.period}, a test costs about {estimate / mb:.1f} MB"
        )
    return None


def estimate_bytes(state: LedgerState, cap: int) -> int:
    """The next test's cost: the last one's bytes, or the per-test cap before any test ran."""
    return min(state.last_bytes, cap) if state.last_bytes is not None else cap


class Ledger:
    """The state on disk. A damaged file is kept aside and counting starts again, logged loudly."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, LEDGER_FILE)

    def load(self) -> LedgerState:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            return LedgerState.from_dict(data)
        except FileNotFoundError:
            return LedgerState()
        except (OSError, ValueError, TypeError) as exc:
            log.warning("throughput ledger %s is unreadable (%s); starting a new count", self.path, exc)
            with contextlib.suppress(OSError):
                os.replace(self.path, self.path + ".bad")
            return LedgerState()

    def update(self, change: Callable[[LedgerState], LedgerState]) -> LedgerState:
        """Load, change and save under a lock, so the daemon and a diagnose run do not lose a test."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = change(self.load())
            self.save(state)
            return state

    def save(self, state: LedgerState) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ledger-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state.to_dict(), f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
