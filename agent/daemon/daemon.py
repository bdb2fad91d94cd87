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
import contextlib
import dataclasses
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
from agent.publish.batch import Changes
from agent.publish.spool import NOT_CONFIRMED, Spool, delivery_state, spool_path
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
            self.spool = Spool(path, *limits)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, unreadable: not damage, say so and stop
                raise
            # An unattended node must keep measuring: keep the damaged file for forensics, start afresh.
            # Its seqs are not reused: the new spool continues above the high-water mark (seq-hwm.json).
            aside = f"{path}.damaged-{int(time.time())}"
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.replace(path + suffix, aside + suffix)
            log.error(
                "the spool %s is damaged (%s): moved to %s; starting a new one (its readings are lost; "
                "seq continues above the last one reserved)",
                path, exc, aside,
            )  # fmt: skip
            self.spool = Spool(path, *limits)
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
        # No await between taking the seq and storing the row: nothing else can interleave.
        self._count(target, reading)
        self._store(reading, self.changes.urgent(reading.measurement, reading.target, reading.ok, reading.fields))
        self._check_level()
        return reading.fields

    def _store(self, reading: Reading, urgent: bool = False) -> None:
        """Spool a Reading and hand it to the publisher (or print it without a broker)."""
        node = self.identity.node
        try:
            self.spool.append(reading, topics.topic(self.cfg.mqtt.topic, node, reading.site, reading.measurement))
        except sqlite3.Error as exc:  # disk full, read-only file system: say so once, keep measuring
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
        cost = self.estimator.run_bytes(reading.measurement, reading.target, reading.ok, reading.fields, target.options)
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
            "data budget: %s -> %s at %.2f of %.2f MB this month%s",
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
        loop = asyncio.get_running_loop()
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
        if self.publisher is not None:
            self.publisher.stop(max(0.5, deadline - time.monotonic()))
        self.meter.flush()
        self.spool.close()
        self.notifier.close()
        return EX_OK

    def healthy(self) -> bool:
        publisher_ok = self.publisher is None or self.publisher.alive()
        return bool(self.scheduler and self.scheduler.healthy() and publisher_ok)

    def status_line(self) -> str:
        """systemd's STATUS=: e.g. "7 targets, connected, spool 12 (10 sent, 2 waiting), dropped 0", with
        "NOT CONFIRMED for 650 s" once a sent reading has waited past mqtt.confirm_timeout."""
        stats = self.spool.stats()
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
            line += f" ({self.level}: {pace.says(self.level).split(': ', 1)[-1]})" if self.level != pace.FULL else ""
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
                log.error("a scheduler task or the publisher has died; not petting the systemd watchdog")
            self.notifier.status(self.status_line())

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
