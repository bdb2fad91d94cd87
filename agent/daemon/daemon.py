"""The long-running agent behind `netprobe run` (agent/cli/run.py is its command line).

Measure on schedule, write every Reading to the spool, hand it to the MQTT
publisher (or, with no broker configured, print it as a JSON line), and live
well under systemd: READY/WATCHDOG/STATUS notifications, SIGHUP reloads the
config (a broken one is reported and the running one kept), SIGTERM flushes
what it can and exits within 5 s.

It also counts what its own traffic costs (agent.usage, docs/data-cost.md): each
run's bytes are estimated from its Reading, the publisher counts the MQTT
connection's; a `usage` Reading says the month's total daily, and with a budget
the schedule steps down as it runs out (and says so in its status).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Mapping
from typing import Any, Optional, TextIO

from agent import __version__, clock, probes
from agent.config import Config, ConfigError, TargetConfig, load_config
from agent.daemon.scheduler import Scheduler
from agent.daemon.sdnotify import Notifier
from agent.publish import recover
from agent.publish.batch import Changes
from agent.publish.spool import NOT_CONFIRMED, Spool, SpoolStats, delivery_state, rebuild, spool_path
from agent.reading import topics
from agent.reading.contract import conform
from agent.reading.model import FieldValue, Outcome, Reading, make_reading
from agent.runner import identity_of, run_target
from agent.usage import estimate, pace, route
from agent.usage import report as usage_report
from agent.usage.meter import Meter
from agent.usage.profile import suggestion

log = logging.getLogger(__name__)

EX_OK = 0
STOP_BUDGET_S = 4.0  # SIGTERM to exit: systemd and the brief allow 5 s
HOST_TARGET = "self"
USAGE = "usage"
FIRST_USAGE_S = 600.0  # the first usage Reading after a start, at most
REBUILD_GAP_S = 60.0  # damage again sooner after a rebuild: the card may be failing, let systemd restart us
REBUILD_LIMIT_S = 120.0  # a rebuild still running after this long no longer counts as healthy
HELD_MAX = 1000  # Readings kept in memory for the rebuilt spool while the damaged one refuses them


def scheduled_targets(cfg: Config) -> list[TargetConfig]:
    """What the daemon runs: cfg.targets, less the link look when `[linktype] enabled = false`,
    plus the host-health reading unless the config already has one or turns it off."""
    targets = [t for t in cfg.targets if cfg.linktype.enabled or t.kind != "link"]
    if cfg.daemon.host_interval > 0 and not any(t.kind == "host" for t in targets):
        taken, host = {t.label for t in targets}, probes.get("host")
        targets.append(
            TargetConfig(
                kind="host",
                target=HOST_TARGET,
                # The scheduler keys its tasks by label: never share one with a user's target.
                name="host" if "host" not in taken else f"host:{HOST_TARGET}",
                interval=cfg.daemon.host_interval,
                timeout=min(host.timeout_s, cfg.daemon.host_interval / 2),
                options=host.options(),
            )
        )
    return targets


class Daemon:
    def __init__(self, cfg: Config, config_path: Optional[str], out: TextIO) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.out = out
        self.started = time.monotonic()
        os.makedirs(cfg.node.state_dir, mode=0o750, exist_ok=True)
        path, limits = spool_path(cfg.node.state_dir), (cfg.spool.max_rows, int(cfg.spool.max_mb * 1e6))
        try:
            self.spool = Spool(path, *limits, check=True)
        except sqlite3.DatabaseError as exc:
            if not recover.is_damage(exc):  # locked, unreadable, a newer schema: not damage, say so and stop
                raise
            # An unattended node must keep measuring: what can be read goes into a new spool, the damaged
            # file is kept for a look, and seqs continue above the last one (seq-hwm.json).
            log.error("the spool %s is damaged (%s): rebuilding it", path, exc)
            self.spool = rebuild(path, *limits)[0]
        # One writer thread appends: a FULL commit's fsync (50-200 ms on an SD card) must not hold up the
        # loop while other probes are timing (docs/benchmarks.md). Its queue keeps the rows in seq order.
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spool-writer")
        self._stats: Optional[SpoolStats] = None  # as the writer last read them, for the status line
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._rebuilding = False
        self._rebuild_task: Optional[asyncio.Future[None]] = None
        self._rebuild_started = 0.0
        self._rebuilt_at = -REBUILD_GAP_S
        self._spool_broken = ""  # why the spool cannot take Readings: not healthy, no watchdog
        self._held: list[tuple[Reading, str]] = []  # refused by the damaged spool, for the rebuilt one
        self._stop_listening = recover.listen(path, self._damage_seen)
        self.publisher: Any = None
        self.scheduler: Optional[Scheduler] = None
        self.meter = Meter(cfg.node.state_dir, cfg.usage.budget_bytes(), cfg.throughput.reset_day)
        self.estimator = estimate.Estimator()
        self.changes = Changes()
        self.level = self.meter.level()
        self.suggested = ""  # the profile the link look suggests
        self._usage_now: Optional[asyncio.Event] = None
        self._refused: set[str] = set()
        self.stopping: Optional[asyncio.Event] = None
        self._reload_lock: Optional[asyncio.Lock] = None
        self._unhealthy_reported = False
        self._spool_error = ""
        self._apply(cfg)
        self.notifier = Notifier()

    def _apply(self, cfg: Config) -> None:
        self.cfg = cfg
        self.identity = identity_of(cfg)
        self.ctx = cfg.probe_context()
        self.spool.max_rows, self.spool.max_bytes = cfg.spool.max_rows, int(cfg.spool.max_mb * 1e6)
        self.meter.configure(cfg.usage.budget_bytes(), cfg.throughput.reset_day)

    # -- the measuring side ------------------------------------------------
    async def run_one(self, target: TargetConfig) -> Optional[Mapping[str, FieldValue]]:
        node = self.identity.node
        reading = await run_target(target, self.identity, self.ctx, seq=lambda: self.spool.next_seq(node))
        # No await between taking the seq and queueing the row for the writer: nothing else can interleave.
        self._count(target, reading)
        self._store(reading, self.changes.urgent(reading.measurement, reading.target, reading.ok, reading.fields))
        self._check_level()
        return reading.fields

    def _store(self, reading: Reading, urgent: bool = False) -> None:
        """Queue a Reading for the spool's writer thread; once stored, hand it to the publisher (or print
        it without a broker). The loop never waits for the fsync, and the queue keeps seq order."""
        topic = topics.topic(self.cfg.mqtt.topic, self.identity.node, reading.site, reading.measurement)
        stored = asyncio.get_running_loop().run_in_executor(self._writer, self._append, reading, topic)
        stored.add_done_callback(functools.partial(self._stored, reading, urgent))

    def _append(self, reading: Reading, topic: str) -> None:
        """In the writer thread, to the spool of the moment (a rebuild replaces it in this thread too).
        A Reading the damaged spool refuses waits in memory for the rebuilt one."""
        try:
            self.spool.append(reading, topic)
        except sqlite3.DatabaseError as exc:
            if not recover.is_damage(exc) or len(self._held) >= HELD_MAX:
                raise
            self._held.append((reading, topic))
            return
        self._stats = self.spool.stats()

    def _stored(self, reading: Reading, urgent: bool, stored: asyncio.Future[None]) -> None:
        if stored.cancelled():
            return
        exc = stored.exception()
        if exc is not None:  # disk full, read-only file system, a spool being rebuilt: say so once, keep measuring
            if str(exc) != self._spool_error:
                self._spool_error = str(exc)
                log.error("cannot write to the spool %s: %s; this reading is lost", self.spool.path, exc)
            return
        self._spool_error = ""
        if self.cfg.mqtt.broker:
            if self.publisher is not None:  # None only for a moment during a reload
                self.publisher.wake(urgent)
        else:
            self.out.write(reading.to_json() + "\n")
            self.out.flush()

    # -- what watching costs (agent.usage) ------------------------------------
    def _count(self, target: TargetConfig, reading: Reading) -> None:
        """Add the run's uplink bytes to the ledger; note what the link look suggests."""
        code = str((reading.error or {}).get("code", ""))
        cost = self.estimator.run_bytes(
            reading.measurement, reading.target, reading.ok, reading.fields, target.options, code
        )
        self.meter.add(reading.measurement, cost, label=target.label)
        if reading.measurement == "throughput":
            self.meter.flush()  # the test recorded its own bytes in the ledger: read them back
        link_type = reading.fields.get("link_type") if reading.measurement == "link" else None
        if isinstance(link_type, str):
            found = suggestion(self.cfg.daemon.profile, link_type)
            if found and found != self.suggested:
                log.warning(
                    "the link is %s, sold by the megabyte: [daemon] profile = \"%s\" keeps this agent's own "
                    "traffic to a few MB a month (docs/data-cost.md)", link_type, found,
                )  # fmt: skip
            self.suggested = found

    def _admit(self, target: TargetConfig) -> bool:
        """Run a target only if its last run's cost still fits the budget (LAN targets cost nothing)."""
        cost = self.meter.cost(target.label)
        if cost == 0 or self.meter.allow(cost):
            self._refused.discard(target.label)
            return True
        if target.label not in self._refused:
            self._refused.add(target.label)
            log.info("data budget: skipping %s (about %d bytes a run) while the budget is this low", target.label, cost)
        return False

    def _check_level(self) -> None:
        """Step down (or back up) when the budget's pace says so, and say so."""
        new = self.meter.level()
        if new == self.level:
            return
        old, self.level = self.level, new
        worse = pace.LEVELS.index(new) > pace.LEVELS.index(old)
        month, budget = self.meter.month() / 1e6, (self.meter.budget or 0) / 1e6
        (log.warning if worse else log.info)(
            "data budget: %s -> %s at %.3f of %g MB this month%s",
            old, new, month, budget, f": {pace.says(new)}" if pace.says(new) else "",
        )  # fmt: skip
        self._apply_level()
        self.meter.flush()  # the step is kept in the ledger too
        if self._usage_now is not None:
            self._usage_now.set()

    def _apply_level(self) -> None:
        if self.scheduler is not None:
            self.scheduler.set_plan(pace.plan(self.level, self.scheduler.targets, route.is_local))
        if self.publisher is not None:
            self.publisher.paused = self.level == pace.HOLD

    def usage_reading(self) -> Reading:
        """The usage Reading now (agent.usage.report)."""
        self.meter.flush()
        start, _ = self.meter.period()
        fields = usage_report.fields(
            self.meter.by_kind(), self.meter.today(), self.meter.budget, usage_report.plan_mb(self.cfg.site.tags),
            self.level, start.isoformat(), self.cfg.daemon.profile, self.suggested,
        )  # fmt: skip
        now = time.time()
        seq = self.spool.next_seq(self.identity.node)
        return conform(
            make_reading(self.identity, USAGE, HOST_TARGET, Outcome(True, fields), now, clock.monotonic_s(), 0.0, seq)
        )

    async def usage_loop(self) -> None:
        """A usage Reading every [usage] reading_interval, and one at each change of step."""
        self._usage_now = asyncio.Event()
        wait = min(self.cfg.usage.reading_interval, FIRST_USAGE_S)
        while True:
            interval = self.cfg.usage.reading_interval
            if interval <= 0:
                await self._usage_now.wait()
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._usage_now.wait(), wait)
            self._usage_now.clear()
            self._store(self.usage_reading())
            wait = interval if interval > 0 else FIRST_USAGE_S

    def _start_publisher(self) -> None:
        # paho loads only where a broker is configured: a stdout-only agent stays lighter.
        from agent.publish.mqtt import Publisher, PublisherSettings

        if not self.cfg.mqtt.broker:
            self.publisher = None
            return
        settings = PublisherSettings(
            mqtt=self.cfg.mqtt,
            node=self.identity.node,
            site=self.identity.site,
            config_digest=self.cfg.digest,
            meter=self.meter,
        )
        self.publisher = Publisher(
            settings, self.spool.path, self.spool.max_rows, self.spool.max_bytes, started_mono=self.started
        )
        self.publisher.paused = self.level == pace.HOLD
        self.publisher.start()

    # -- lifecycle -----------------------------------------------------------
    async def run(self) -> int:
        loop = self._loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        self._start_publisher()
        self.scheduler = Scheduler(
            scheduled_targets(self.cfg),
            self.run_one,
            splay=self.cfg.daemon.splay,
            jitter=self.cfg.daemon.jitter,
            ctx=self.ctx,
        )
        self.scheduler.admit = self._admit
        self.scheduler.start()
        self._apply_level()
        log.info(
            "netprobe %s running as %s: %d targets, %s, spool %s",
            __version__, self.identity.node, len(self.scheduler.targets),
            f"broker {self.cfg.mqtt.broker}" if self.cfg.mqtt.broker else "no broker (JSON lines on stdout)",
            self.spool.path,
        )  # fmt: skip
        self.notifier.ready(self.status_line())
        supervisor = asyncio.ensure_future(self.supervise())
        usage = asyncio.ensure_future(self.usage_loop())
        await self.stopping.wait()
        deadline = time.monotonic() + STOP_BUDGET_S
        log.info("stopping")
        self.notifier.stopping()
        supervisor.cancel()
        usage.cancel()
        # A reload in progress could start a publisher or read the spool after we close it:
        # let it finish (it gives up its publisher within 2 s), but never past the stop budget.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._reload_lock.acquire(), max(0.1, deadline - time.monotonic() - 2.0))
        await self.scheduler.stop()
        with contextlib.suppress(asyncio.TimeoutError):  # what is queued for the spool goes in before the last flush
            await asyncio.wait_for(
                loop.run_in_executor(self._writer, time.monotonic), max(0.1, deadline - time.monotonic() - 1.0)
            )
        if self.publisher is not None:
            self.publisher.stop(max(0.5, deadline - time.monotonic()))
        self.meter.flush()
        self._writer.shutdown(wait=True)
        self._stop_listening()
        if self._held:
            log.error(
                "%d reading(s) the damaged spool refused are lost: it was not rebuilt before the stop", len(self._held)
            )
        self.spool.close()
        self.notifier.close()
        return EX_OK

    def healthy(self) -> bool:
        publisher_ok = self.publisher is None or self.publisher.alive()
        return bool(self.scheduler and self.scheduler.healthy() and publisher_ok and self._spool_ok())

    def _spool_ok(self) -> bool:
        """The spool takes Readings: not broken, and not stuck in a rebuild."""
        stuck = self._rebuilding and time.monotonic() - self._rebuild_started > REBUILD_LIMIT_S
        return not self._spool_broken and not stuck

    def status_line(self) -> str:
        """systemd's STATUS=: e.g. "7 targets, connected, spool 12 (10 sent, 2 waiting), dropped 0", with
        "NOT CONFIRMED for 650 s" once a sent reading has waited past mqtt.confirm_timeout."""
        stats = self._spool_stats()
        if self.publisher is None:
            link = "no broker"
        else:
            link = "connected" if self.publisher.connected else "broker unreachable, spooling"
        line = f"{len(self.scheduler.targets) if self.scheduler else 0} targets, {link}, spool {stats.rows}"
        if self.publisher is not None and stats.rows:
            line += f" ({stats.sent} sent, {stats.waiting} waiting)"
            mqtt = self.cfg.mqtt
            if delivery_state(mqtt.confirm, mqtt.confirm_timeout, stats) == NOT_CONFIRMED:
                line += f", NOT CONFIRMED for {stats.unconfirmed_s():.0f} s"
        line += f", dropped {stats.dropped}"
        if self.meter.budget:
            line += f", data {self.meter.month() / 1e6:.2f} of {self.meter.budget / 1e6:g} MB"
            line += f" ({pace.says(self.level).split(': ', 1)[-1]})" if self.level != pace.FULL else ""
        return line

    async def supervise(self) -> None:
        """Pet the watchdog only while the scheduler and publisher really run; refresh STATUS."""
        period = min(10.0, self.notifier.watchdog_s / 2) if self.notifier.watchdog_s else 10.0
        while True:
            await asyncio.sleep(period)
            self._count_watch(period)
            self._check_level()
            self.meter.maybe_flush()
            if self.healthy():
                self._unhealthy_reported = False
                if self.notifier.watchdog_s:
                    self.notifier.watchdog()
            elif not self._unhealthy_reported:
                self._unhealthy_reported = True
                why = self._spool_broken or "a scheduler task or the publisher has died"
                log.error("%s; not petting the systemd watchdog", why)
            if self._spool_broken:
                self._rebuild_soon(recover.Damaged(self._spool_broken))  # once REBUILD_GAP_S has passed
            with contextlib.suppress(asyncio.TimeoutError):  # fresh counts, read by the writer thread
                await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(self._writer, self._read_stats), 2.0)
            self.notifier.status(self.status_line())

    def _spool_stats(self) -> SpoolStats:
        """The spool's counts as the writer thread last read them: the loop must not wait for the
        writer's connection while it commits. Read here only before the first Reading."""
        if self._stats is None:
            self._read_stats()
        return self._stats or SpoolStats(0, 0, 0)

    def _read_stats(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # a spool that could not be rebuilt is closed
            self._stats = self.spool.stats()

    # -- a damaged spool (agent.publish.recover) --------------------------------------------------------
    def _damage_seen(self, exc: BaseException) -> None:
        """Any thread's connection met damage in the spool: rebuild it, from the loop."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the agent is stopping
                self._loop.call_soon_threadsafe(self._rebuild_soon, exc)

    def _rebuild_soon(self, exc: BaseException) -> None:
        if self._rebuilding or self.stopping is None or self.stopping.is_set():
            return
        if time.monotonic() < self._rebuilt_at + REBUILD_GAP_S:
            if not self._spool_broken:
                self._spool_broken = (
                    f"the spool {self.spool.path} is damaged again ({exc}) within {REBUILD_GAP_S:g} s of its rebuild"
                )
                log.error("%s: the SD card may be failing", self._spool_broken)
            return
        self._rebuilding, self._rebuild_started = True, time.monotonic()
        self._rebuild_task = asyncio.ensure_future(self._rebuild_spool(exc))

    async def _rebuild_spool(self, exc: BaseException) -> None:
        """Stop the publisher (its connection holds the file), rebuild the spool in the writer thread
        (Readings queued meanwhile go to the new spool, in order), start a new publisher. If that fails
        the spool takes no Readings: the watchdog is no longer petted, so systemd restarts the agent,
        which rebuilds at open or says what stops it; without systemd it tries again every minute."""
        loop = asyncio.get_running_loop()
        path, retry = self.spool.path, bool(self._spool_broken)
        (log.info if retry else log.error)("the spool %s is damaged (%s): rebuilding it", path, exc)
        assert self._reload_lock is not None
        try:
            async with self._reload_lock:  # no reload starts a publisher meanwhile
                publisher, self.publisher = self.publisher, None
                if publisher is not None:
                    await loop.run_in_executor(None, publisher.stop, 2.0)
                    for _ in range(150):  # a connect in progress may take longer than the stop's 2 s
                        if not publisher.alive():
                            break
                        await asyncio.sleep(0.2)
                    else:
                        raise RuntimeError("the MQTT publisher did not let go of the spool within 30 s")
                await loop.run_in_executor(self._writer, self._rebuild_in_writer)
                if self.stopping is not None and not self.stopping.is_set():
                    self._start_publisher()
            if self._spool_broken:
                log.warning("the spool %s takes readings again", path)
            self._spool_broken = ""
        except Exception as failure:
            broken = f"the spool {path} is damaged and could not be rebuilt ({failure})"
            if broken != self._spool_broken:
                log.error("%s: new readings are lost until it is", broken)
            self._spool_broken = broken
        finally:
            self._rebuilding, self._rebuilt_at = False, time.monotonic()

    def _rebuild_in_writer(self) -> None:
        old = self.spool
        with contextlib.suppress(sqlite3.Error):
            old.close()
        self.spool = rebuild(old.path, old.max_rows, old.max_bytes)[0]
        held, self._held = self._held, []
        for reading, topic in held:
            self.spool.append(reading, topic)
        self._stats = self.spool.stats()

    def _count_watch(self, seconds: float) -> None:
        """The link watcher's first-hop traces between looks (no Reading tells them): estimated."""
        watch_s = self.cfg.linktype.watch_s
        if self.scheduler is None or watch_s <= 0 or self.level == pace.HOLD:
            return
        if any(t.kind == "link" for t in self.scheduler.targets):
            self.meter.add("link", estimate.watch_bytes(seconds, watch_s))

    async def reload(self) -> None:
        assert self._reload_lock is not None
        async with self._reload_lock:
            if self.stopping is not None and self.stopping.is_set():
                return
            try:
                new = load_config(self.config_path)
            except ConfigError as exc:
                for problem in exc.problems:
                    log.error("config reload: %s: %s", exc.source, problem)
                log.error("config reload failed: keeping the running config (%s)", self.cfg.digest or "defaults")
                return
            if not new.node.id:
                log.error("config reload: node.id is not set; keeping the running config")
                return
            if new.node.state_dir != self.cfg.node.state_dir:
                log.warning("node.state_dir changes only on restart; keeping %s", self.cfg.node.state_dir)
                new = dataclasses.replace(new, node=dataclasses.replace(new.node, state_dir=self.cfg.node.state_dir))
            old_cfg, old_identity = self.cfg, self.identity
            self._apply(new)
            same_link = new.mqtt == old_cfg.mqtt and self.identity == old_identity
            if same_link and self.publisher is not None:
                self.publisher.refresh_status(new.digest)  # the connection and session stay
            elif not same_link:
                old_publisher, self.publisher = self.publisher, None
                if old_publisher is not None:
                    await asyncio.get_running_loop().run_in_executor(None, old_publisher.stop, 2.0)
                self._start_publisher()
            assert self.scheduler is not None
            self.scheduler.splay, self.scheduler.jitter = new.daemon.splay, new.daemon.jitter
            self.scheduler.ctx = self.ctx
            await self.scheduler.replace(scheduled_targets(new))
            self._apply_level()
            log.info("config reloaded from %s (%s): %d targets", new.source, new.digest, len(self.scheduler.targets))
            self.notifier.status(self.status_line())
