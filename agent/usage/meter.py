"""The running count of the agent's own traffic, kept in the data ledger, and the step it implies.

Every probe run and every byte the MQTT connection moves is added here (from
the event loop and the publisher thread alike); the counts go to the ledger
file (`agent.throughput.budget`, the same one the throughput tests use) every
`FLUSH_S` and on demand, so an SD card is written a few times an hour, and a
power cut forgets at most those minutes of counting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from typing import Callable, Optional

from agent.throughput import budget as ledger
from agent.usage import pace

log = logging.getLogger(__name__)

FLUSH_S = 300.0
REPORT = "report"  # the kind of the MQTT connection's bytes: readings, status, acks, keepalives


class Meter:
    def __init__(
        self,
        state_dir: str,
        budget_bytes: Optional[int],
        reset_day: int = 1,
        now: Callable[[], dt.datetime] = dt.datetime.now,
        flush_s: float = FLUSH_S,
    ) -> None:
        self.ledger = ledger.Ledger(state_dir) if state_dir else None
        self.budget = budget_bytes or None
        self.reset_day = reset_day
        self.now = now
        self.flush_s = flush_s
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._cost: dict[str, int] = {}  # the last run's bytes per target label
        self._state = self.ledger.load() if self.ledger else ledger.LedgerState()
        self.step = self._state.level if self._state.level in pace.LEVELS else pace.FULL
        self._next_flush = time.monotonic() + flush_s
        self.flush_error = ""

    def configure(self, budget_bytes: Optional[int], reset_day: int) -> None:
        """A reloaded config's budget."""
        with self._lock:
            self.budget, self.reset_day = budget_bytes or None, reset_day

    # -- counting -----------------------------------------------------------
    def add(self, kind: str, n: int, label: str = "") -> None:
        if label:
            with self._lock:
                self._cost[label] = max(0, int(n))
        if n <= 0:
            return
        with self._lock:
            self._pending[kind] = self._pending.get(kind, 0) + int(n)

    def cost(self, label: str) -> int:
        """What `label`'s last run cost: the estimate for its next one."""
        with self._lock:
            return self._cost.get(label, 0)

    def _rolled(self) -> ledger.LedgerState:
        return ledger.roll(self._state, self.now().date(), self.reset_day)

    def by_kind(self) -> dict[str, int]:
        """Bytes this period per kind, counted and not yet saved included."""
        with self._lock:
            out = dict(self._rolled().usage)
            for kind, n in self._pending.items():
                out[kind] = out.get(kind, 0) + n
        return out

    def month(self) -> int:
        return sum(self.by_kind().values())

    def today(self) -> int:
        with self._lock:
            return self._rolled().usage_day + sum(self._pending.values())

    def period(self) -> tuple[dt.date, dt.date]:
        start = ledger.period_start(self.now().date(), self.reset_day)
        return start, pace.period_end(start, self.reset_day)

    # -- the budget ------------------------------------------------------------
    def allowance(self) -> float:
        if not self.budget:
            return float("inf")
        start, end = self.period()
        return pace.allowance(self.budget, start, end, self.now())

    def level(self) -> str:
        """The step for what has been spent so far (and remember it)."""
        if not self.budget:
            self.step = pace.FULL
            return self.step
        self.step = pace.level(self.month(), self.budget, self.allowance(), self.step)
        return self.step

    def allow(self, estimate: int) -> bool:
        """Whether `estimate` more bytes keep the month inside the budget (always, without one)."""
        if not self.budget:
            return True
        return self.month() + max(0, estimate) <= self.budget - pace.reserve(self.budget) // 2

    # -- the ledger ---------------------------------------------------------------
    def flush(self) -> None:
        """Save the counts (and the step) to the ledger now; a failure is logged once and retried later."""
        with self._lock:
            pending, self._pending = self._pending, {}
        self._next_flush = time.monotonic() + self.flush_s
        if self.ledger is None:
            with self._lock:
                self._state = ledger.spend(self._state, pending, self.now().date(), self.reset_day)
            return
        today, step = self.now().date(), self.step

        def change(s: ledger.LedgerState) -> ledger.LedgerState:
            return dataclasses.replace(ledger.spend(s, pending, today, self.reset_day), level=step)

        try:
            state = self.ledger.update(change)
        except OSError as exc:
            with self._lock:  # keep the counts for the next try
                for kind, n in pending.items():
                    self._pending[kind] = self._pending.get(kind, 0) + n
            if str(exc) != self.flush_error:
                self.flush_error = str(exc)
                log.error("cannot save the data ledger %s: %s; counting in memory", self.ledger.path, exc)
            return
        self.flush_error = ""
        with self._lock:
            self._state = state

    def maybe_flush(self) -> None:
        if time.monotonic() >= self._next_flush:
            self.flush()

    def reload(self) -> None:
        """Read the ledger again (another process, e.g. a throughput test, may have added to it)."""
        if self.ledger is None:
            return
        self.flush()
