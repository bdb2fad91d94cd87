"""When each target runs: intervals with splay and jitter, no self-overlap, one heavy lock.

Each target has its own asyncio task that runs it, waits, and runs it again,
so a target can never overlap itself. The first run waits a random splay, so
a fleet restarted together does not fire in the same second; every later gap
varies by `jitter`. A probe may bring its own schedule (`Probe.next_interval`,
e.g. throughput's exponential gaps).

Probes marked `heavy` (throughput, path) run one at a time, and while one
runs, or waits to run, light probes wait: a latency baseline measured during
a throughput test would be a lie. That is a readers-writer gate with writer
preference: light probes share it, a heavy probe holds it alone.

To keep to a data budget the daemon may step the schedule down (agent.usage.pace):
`set_plan` stretches each target's gaps by a factor or pauses it, and wakes the
waiting tasks so a new plan applies at once; `admit` may skip a run whose cost
would not fit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Callable, Optional

from agent import probes
from agent.config import TargetConfig
from agent.probes.base import Probe, ProbeContext
from agent.reading.model import FieldValue

log = logging.getLogger(__name__)

WATCH_MIN_GAP_S = 1.0  # the least time between runs a probe's watcher may ask for

# Runs a target once; returns the run's fields (a probe's own schedule may depend on them) or None.
RunTarget = Callable[[TargetConfig], Awaitable[Optional[Mapping[str, FieldValue]]]]


class HeavyGate:
    """Light runs share; a heavy run is alone; a waiting heavy run holds back new light ones."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self.light_running = 0
        self.heavy_running = False
        self.heavy_waiting = 0

    @contextlib.asynccontextmanager
    async def light(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self.heavy_running and not self.heavy_waiting)
            self.light_running += 1
        try:
            yield
        finally:
            async with self._cond:
                self.light_running -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def heavy(self) -> AsyncIterator[None]:
        async with self._cond:
            self.heavy_waiting += 1
            try:
                await self._cond.wait_for(lambda: not self.heavy_running and self.light_running == 0)
            finally:
                self.heavy_waiting -= 1
            self.heavy_running = True
        try:
            yield
        finally:
            async with self._cond:
                self.heavy_running = False
                self._cond.notify_all()


def jittered(interval: float, jitter: float, rng: random.Random) -> float:
    return interval * rng.uniform(1.0 - jitter, 1.0 + jitter) if jitter > 0 else interval


def first_delay(interval: float, splay: float, rng: random.Random) -> float:
    return rng.uniform(0.0, min(interval, splay)) if splay > 0 else 0.0


class Scheduler:
    """Runs `run(target)` for every target on its schedule until stopped."""

    def __init__(
        self,
        targets: list[TargetConfig],
        run: RunTarget,
        *,
        splay: float = 60.0,
        jitter: float = 0.1,
        rng: Optional[random.Random] = None,
        probe_of: Callable[[TargetConfig], Probe] = lambda t: probes.get(t.kind),
        ctx: Optional[ProbeContext] = None,
    ) -> None:
        self.targets = list(targets)
        self.run = run
        self.splay = splay
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.probe_of = probe_of
        self.ctx = ctx or ProbeContext()
        self.gate: Optional[HeavyGate] = None
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.plan: Mapping[str, Optional[float]] = {}  # label -> gap factor; None: paused (data budget)
        self.admit: Callable[[TargetConfig], bool] = lambda _t: True  # False: skip this run (data budget)
        self._retuned: Optional[asyncio.Event] = None

    def start(self) -> None:
        """Start one task per target; call inside the running loop."""
        if self.gate is None:
            self.gate = HeavyGate()
        if self._retuned is None:
            self._retuned = asyncio.Event()
        for target in self.targets:
            self.tasks[target.label] = asyncio.ensure_future(self._loop(target))

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()

    async def replace(self, targets: list[TargetConfig]) -> None:
        """A new target list (config reload): every target starts over with a fresh splay."""
        await self.stop()
        self.targets = list(targets)
        self.start()

    def set_plan(self, plan: Mapping[str, Optional[float]]) -> None:
        """Stretch (factor) or pause (None) targets by label; waiting tasks re-plan at once."""
        self.plan = dict(plan)
        if self._retuned is not None:
            self._retuned.set()
            self._retuned = asyncio.Event()

    def healthy(self) -> bool:
        """Every target's task is alive (none has died of a bug)."""
        return all(not t.done() for t in self.tasks.values())

    def gap(self, target: TargetConfig, probe: Probe, last: Optional[Mapping[str, FieldValue]] = None) -> float:
        if probe.next_interval is not None:
            return max(0.0, float(probe.next_interval(target.options, target.interval, last, self.ctx, self.rng)))
        return jittered(target.interval, self.jitter, self.rng)

    async def _wait(
        self, target: TargetConfig, probe: Probe, next_at: float, last: Optional[Mapping[str, FieldValue]]
    ) -> bool:
        """Until `next_at` or the probe's watcher (True: run now), or a new plan (False: plan again)."""
        retuned = self._retuned
        if retuned is None or next_at <= asyncio.get_running_loop().time():
            await self._sleep(target, probe, next_at, last)
            return True
        timer = asyncio.ensure_future(self._sleep(target, probe, next_at, last))
        replanned = asyncio.ensure_future(retuned.wait())
        try:
            done, _ = await asyncio.wait({timer, replanned}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (timer, replanned):
                task.cancel()
            await asyncio.gather(timer, replanned, return_exceptions=True)
        return timer in done and not timer.cancelled()

    async def _sleep(
        self, target: TargetConfig, probe: Probe, next_at: float, last: Optional[Mapping[str, FieldValue]]
    ) -> None:
        """Until `next_at`, or earlier when the probe's own watcher says so (e.g. a new uplink)."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, next_at - loop.time())
        if probe.watch is None or delay <= 0:
            await asyncio.sleep(delay)
            return
        began = loop.time()
        try:
            await asyncio.wait_for(probe.watch(target.target, target.options, last, self.ctx), delay)
        except asyncio.TimeoutError:
            return
        except Exception:  # a broken watcher must not end the schedule: fall back to the plain wait
            log.exception("the watcher of %s failed", target.label)
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            return
        # a watcher that keeps firing must not turn the schedule into a busy loop
        await asyncio.sleep(max(0.0, WATCH_MIN_GAP_S - (loop.time() - began)))

    async def _loop(self, target: TargetConfig) -> None:
        probe = self.probe_of(target)
        loop = asyncio.get_running_loop()
        started, gap = loop.time(), first_delay(target.interval, self.splay, self.rng)
        assert self.gate is not None
        last: Optional[Mapping[str, FieldValue]] = None
        while True:
            factor = self.plan.get(target.label, 1.0)
            if factor is None:  # paused by the data budget until the plan changes
                assert self._retuned is not None
                await self._retuned.wait()
                continue
            if not await self._wait(target, probe, started + gap * factor, last):
                continue  # a new plan: the same gap, its new factor
            if not self.admit(target):  # its cost would not fit the budget: skip this run
                started, gap = loop.time(), self.gap(target, probe, last)
                continue
            started = loop.time()
            gate = self.gate.heavy() if probe.heavy else self.gate.light()
            last = None
            try:
                async with gate:
                    last = await self.run(target)
            except asyncio.CancelledError:
                raise
            except Exception:  # a sink error must not end this target's schedule
                log.exception("running %s failed", target.label)
            # Late runs are not made up in a burst: the next one is one gap after this one began.
            gap = self.gap(target, probe, last)
