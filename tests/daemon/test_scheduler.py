"""The scheduler's timing rules, with probes that record when they ran (no network needed)."""

from __future__ import annotations

import asyncio
import dataclasses
import random

from agent.config import TargetConfig
from agent.daemon.scheduler import Scheduler, first_delay, jittered
from agent.probes.base import Probe
from agent.reading.model import Outcome


async def _noop(*_args):
    return Outcome(ok=True)


def probe(kind: str, heavy: bool = False, next_interval=None) -> Probe:
    return Probe(kind, "", object, _noop, 1.0, 1.0, heavy=heavy, next_interval=next_interval)


def target(name: str, kind: str, interval: float) -> TargetConfig:
    return TargetConfig(kind=kind, target=name, name=name, interval=interval, timeout=interval / 2)


@dataclasses.dataclass
class Recorder:
    durations: dict[str, float]
    spans: list[tuple[str, float, float]] = dataclasses.field(default_factory=list)

    async def run(self, t: TargetConfig) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(self.durations[t.label])
        self.spans.append((t.label, start, loop.time()))

    def of(self, name: str) -> list[tuple[float, float]]:
        return [(a, b) for n, a, b in self.spans if n == name]


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] - 1e-4 and b[0] < a[1] - 1e-4


async def run_for(seconds: float, targets, rec: Recorder, kinds: dict[str, Probe], **kw) -> Scheduler:
    s = Scheduler(targets, rec.run, probe_of=lambda t: kinds[t.kind], rng=random.Random(7), **kw)
    s.start()
    await asyncio.sleep(seconds)
    assert s.healthy()
    await s.stop()
    return s


def test_light_probes_never_run_while_a_heavy_one_does_and_heavy_ones_never_together():
    kinds = {"light": probe("light"), "heavy": probe("heavy", heavy=True)}
    targets = [
        target("ping1", "light", 0.05),
        target("ping2", "light", 0.07),
        target("speed", "heavy", 0.4),
        target("path", "heavy", 0.5),
    ]
    rec = Recorder({"ping1": 0.02, "ping2": 0.03, "speed": 0.12, "path": 0.08})
    asyncio.run(run_for(1.5, targets, rec, kinds, splay=0.0, jitter=0.0))
    heavy = rec.of("speed") + rec.of("path")
    light = rec.of("ping1") + rec.of("ping2")
    assert len(rec.of("speed")) >= 2 and len(rec.of("path")) >= 2 and len(light) >= 10
    assert not any(overlaps(h, x) for h in heavy for x in light)
    assert not any(overlaps(a, b) for a in rec.of("speed") for b in rec.of("path"))
    # Light probes do still share with each other (the gate is not one big lock).
    assert any(overlaps(a, b) for a in rec.of("ping1") for b in rec.of("ping2"))


def test_a_target_slower_than_its_interval_never_overlaps_itself_nor_bursts_to_catch_up():
    rec = Recorder({"slow": 0.12})
    asyncio.run(run_for(1.0, [target("slow", "light", 0.05)], rec, {"light": probe("light")}, splay=0.0, jitter=0.0))
    spans = rec.of("slow")
    assert 6 <= len(spans) <= 9
    assert all(b[0] >= a[1] - 1e-4 for a, b in zip(spans, spans[1:]))


def test_first_runs_are_splayed_and_later_gaps_jittered():
    rng = random.Random(1)
    delays = [first_delay(60.0, 30.0, rng) for _ in range(200)]
    assert all(0 <= d <= 30.0 for d in delays) and max(delays) - min(delays) > 20
    assert all(first_delay(5.0, 30.0, rng) <= 5.0 for _ in range(50))  # never more than one interval
    gaps = [jittered(100.0, 0.1, rng) for _ in range(200)]
    assert all(90.0 <= g <= 110.0 for g in gaps) and max(gaps) - min(gaps) > 10
    assert first_delay(60.0, 0.0, rng) == 0.0 and jittered(60.0, 0.0, rng) == 60.0

    rec = Recorder({f"t{i}": 0.0 for i in range(8)})
    targets = [target(f"t{i}", "light", 10.0) for i in range(8)]
    asyncio.run(run_for(0.6, targets, rec, {"light": probe("light")}, splay=0.5, jitter=0.0))
    starts = sorted(a for _, a, _ in rec.spans)
    assert len(starts) >= 5 and starts[-1] - starts[0] > 0.1  # not all in the same instant


def test_a_probe_may_bring_its_own_schedule():
    calls: list[float] = []

    def exponential(options, interval, last, ctx, rng: random.Random) -> float:
        gap = rng.expovariate(1 / 0.05)
        calls.append(gap)
        return gap

    rec = Recorder({"tput": 0.0})
    kinds = {"tput": probe("tput", heavy=True, next_interval=exponential)}
    asyncio.run(run_for(0.8, [target("tput", "tput", 100.0)], rec, kinds, splay=0.0))
    starts = [a for a, _ in rec.of("tput")]
    assert len(starts) >= 5 and len(calls) == len(starts)  # one gap drawn after each run
    for (a, b), gap in zip(zip(starts, starts[1:]), calls):  # its gaps, not the 100 s interval
        assert gap - 1e-3 <= b - a <= gap + 0.05
