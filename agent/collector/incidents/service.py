"""The incident loop: read what arrived, evaluate, store incidents and messages; and the sender.

`netprobe incidents --watch` runs it in two threads, the engine and the sender, each with its
own database connection; `netprobe collect` runs that command as its child (`process.py`). Several
collectors may share a database: a lease row lets one engine run at a time, and the
others take over when its holder stops renewing it.

On a database failure the engine is dropped and rebuilt from the database once it is
back: what it had decided but not stored (incidents, messages) is decided again, and what
it had stored is not told twice.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Optional

from agent.collector import fleet
from agent.collector.incidents import store as istore
from agent.collector.incidents.channels import Channels
from agent.collector.incidents.engine import Engine
from agent.collector.incidents.outbox import Sender, outgoing
from agent.collector.incidents.process import HOLDER_ENV, holder_name
from agent.collector.incidents.settings import load_zone
from agent.collector.settings import CollectorConfig
from agent.collector.store import Store, StoreDown, open_store

log = logging.getLogger(__name__)

OVERLAP_S = 15.0  # re-read this much of the arrival order: a batch may commit after a later one


class IncidentService:
    def __init__(
        self,
        cfg: CollectorConfig,
        stop: threading.Event,
        store_factory: Optional[Callable[[], Store]] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg, self.stop, self.clock = cfg, stop, clock
        self.s = cfg.incidents
        self._factory = store_factory or self._open
        # One name per collector (process.HOLDER_ENV): an engine it restarts resumes its lease at once.
        self.holder = os.environ.get(HOLDER_ENV) or holder_name()
        self.engine: Optional[Engine] = None
        self.cursor = 0.0  # the newest arrival time read
        self.seen: dict[str, float] = {}  # ids read within the overlap
        self.tz = load_zone(self.s.timezone)
        self.leading = False
        self.passes = 0

    def _open(self) -> Store:
        s = self.cfg.store
        return open_store(dsn=s.dsn, path=s.path, pg_schema=s.pg_schema, busy_timeout_s=s.busy_timeout_s)

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.run_engine, name="incidents", daemon=True),
            threading.Thread(target=self.run_sender, name="incident-sender", daemon=True),
        ]
        for t in threads:
            t.start()
        return threads

    # -- the engine -------------------------------------------------------------------------
    def run_engine(self) -> None:
        store: Optional[Store] = None
        delay = 1.0
        # Let the collector open (and on a new file create) its database first: both at once collide.
        self.stop.wait(min(5.0, self.s.evaluate_every_s))
        while not self.stop.is_set():
            try:
                if store is None:
                    store = self._factory()
                    istore.ensure_schema(store)
                self.step(store)
                delay = 1.0
                wait = self.s.evaluate_every_s
            except StoreDown as exc:
                log.warning("incidents: database unavailable (%s); retrying", exc)
                self.engine = None  # rebuilt from what was stored
                if store is not None:
                    store.close()
                store = None
                wait, delay = delay, min(delay * 2, 60.0)
            except Exception:  # a bug must not stop the collector storing Readings
                log.exception("incidents: evaluation failed; starting over from the database")
                self.engine = None
                wait = max(self.s.evaluate_every_s, 5.0)
            self.stop.wait(wait)
        if store is not None:
            if self.leading:
                istore.drop_lease(store, self.holder)
            store.close()

    def step(self, store: Store) -> None:
        """One pass: hold the lease, read what arrived, evaluate, store changes and messages together."""
        now = self.clock()
        ttl = max(60.0, 4 * self.s.evaluate_every_s)
        if not istore.take_lease(store, self.holder, now, ttl):
            if self.leading:
                log.warning("incidents: another collector holds the engine's lease; standing by")
            self.leading, self.engine = False, None
            return
        if not self.leading:
            log.info("incidents: this collector runs the incident engine")
            self.leading = True
        if self.engine is None:
            self._bootstrap(store, now)
        engine = self.engine
        assert engine is not None
        self._read(store, engine)
        for row in istore.node_rows(store):
            engine.node(row)
        result = engine.evaluate(now)
        messages = outgoing(result.notices, self.cfg.notify.rules, self.tz)
        try:
            istore.save(store, result.changed, messages, now)
        except StoreDown:
            self.engine = None  # what this pass decided is decided again from the database
            raise
        for n in result.notices:
            i = n.incident
            log.info("incident %s %s: %s at %s (%d messages)", i.id, n.event, i.cause, i.where(),
                     sum(1 for m in messages if m.incident == i.id and m.event == n.event))  # fmt: skip
        self.passes += 1

    def _bootstrap(self, store: Store, now: float) -> None:
        f = self.cfg.fleet
        engine = Engine(self.s, fleet.Policy(f.interval_s, f.silent_intervals), self.cfg.calendar())
        since = now - self.s.lookback_s
        engine.load(istore.load_recent(store, since))
        self.cursor, self.seen = since, {}
        self._read(store, engine, since)
        for node, fields in istore.link_rows(store):
            engine.link(node, fields)
        self.engine = engine
        log.info(
            "incidents: engine started on %d nodes, %d incidents in view", len(engine.nodes), len(engine.incidents)
        )

    def _read(self, store: Store, engine: Engine, start: Optional[float] = None) -> None:
        """Readings that arrived since the last pass (and again the last OVERLAP_S, skipping known ids)."""
        start = self.cursor - OVERLAP_S if start is None else start
        for obs, received, rid in istore.readings_after(store, start):
            if rid in self.seen:
                continue
            self.seen[rid] = received
            engine.reading(obs)
            if received > self.cursor:
                self.cursor = received
            if len(self.seen) > 100_000:  # a long read (the start): keep only the overlap's ids
                self.seen = {k: v for k, v in self.seen.items() if v >= self.cursor - 2 * OVERLAP_S}
        horizon = self.cursor - 2 * OVERLAP_S
        self.seen = {k: v for k, v in self.seen.items() if v >= horizon}

    # -- the sender -------------------------------------------------------------------------
    def run_sender(self) -> None:
        store: Optional[Store] = None
        sender: Optional[Sender] = None
        channels = Channels(self.cfg.notify)
        while not self.stop.wait(self.cfg.notify.send_every_s):
            if not self.leading:
                continue
            try:
                if store is None or sender is None:
                    store = self._factory()
                    sender = Sender(store, self.cfg.notify, channels.send)
                sender.once(self.clock())
            except StoreDown as exc:
                log.warning("incident sender: database unavailable (%s); retrying", exc)
                if store is not None:
                    store.close()
                store = None
            except Exception:
                log.exception("incident sender failed; retrying")
        if store is not None:
            store.close()
