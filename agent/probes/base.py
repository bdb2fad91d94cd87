"""What every probe shares: its declaration and the run-time context it is given.

A probe module defines `PROBE = Probe(...)`; the registry finds it. The
module's docstring and its `Options` dataclass are its documentation, in the
way a Telegraf plugin's sample config is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Awaitable, Mapping
from typing import Any, Callable, Optional

from agent.linktype.settings import LinktypeConfig
from agent.reading.model import FieldValue, Outcome
from agent.throughput.settings import ThroughputConfig

Progress = Callable[[str, float, Optional[float]], None]


@dataclasses.dataclass(frozen=True)
class ProbeContext:
    """Run-time facts a probe may need beyond its own options."""

    state_dir: str = ""
    linktype: LinktypeConfig = dataclasses.field(default_factory=LinktypeConfig)
    throughput: ThroughputConfig = dataclasses.field(default_factory=ThroughputConfig)
    interactive: bool = False  # a person asked for this run (probe, diagnose): not the daemon's schedule
    progress: Optional[Progress] = None  # a person watching on a terminal: (phase, seconds, value or None)
    today: Optional[dt.date] = None  # the calendar for data budgets; None: today, local time (tests set it)


Runner = Callable[[str, Any, float, ProbeContext], Awaitable[Outcome]]
# A probe's own schedule: (its options, the target's interval, the last run's fields or None,
# the context, a random source) -> seconds until the next run.
NextInterval = Callable[[Any, float, Optional[Mapping[str, FieldValue]], ProbeContext, random.Random], float]
# A probe's own early wake-up: (its target, options, the last run's fields or None, the context) -> an
# awaitable that returns when the probe should run before its next scheduled time (e.g. the
# uplink changed). It runs between runs, outside the heavy gate, so it must be cheap.
Watch = Callable[[str, Any, Optional[Mapping[str, FieldValue]], ProbeContext], Awaitable[object]]


@dataclasses.dataclass(frozen=True)
class Probe:
    kind: str
    summary: str
    options: type
    run: Runner
    interval_s: float
    timeout_s: float
    heavy: bool = False  # heavy probes never run at the same time (the daemon's heavy lock)
    # Optional own schedule, e.g. randomized exponential gaps for throughput tests. None: the interval.
    next_interval: Optional[NextInterval] = None
    watch: Optional[Watch] = None  # optional early wake-up between runs (the link probe's uplink watcher)
