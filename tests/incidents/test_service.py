"""The incident loop on the collector's database (SQLite and PostgreSQL): Readings in, incidents and queued
messages out, in one transaction; a restarted loop (or a second collector) tells nothing twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from agent.collector.incidents import store as istore
from agent.collector.incidents.service import IncidentService
from agent.collector.settings import CollectorConfig, parse_collector_config
from agent.collector.store import Store, open_store
from agent.reading.validate import Record, Status, check_message
from tests.fixtures.collector import reading, split_pg, topic_for

NODE = "muba-sekayu-balai-agung-01"
T0 = 1_780_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> CollectorConfig:
    if request.param == "sqlite":
        store: dict[str, Any] = {"path": str(tmp_path / "c.db")}
    else:
        dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
        store = {"dsn": dsn, "pg_schema": schema}
    return parse_collector_config({
        "store": store,
        "fleet": {"interval_s": 1.0, "silent_intervals": 3.0},
        "incidents": {"interval_s": 1.0, "window": 5, "open_after": 3, "close_after": 3, "gap_s": 3.0,
                      "hold_s": 2.0, "cause_settle_s": 30.0, "evaluate_every_s": 1.0, "lookback_s": 600.0},
        "notify": {"webhook": {"url": "http://127.0.0.1:9/hook"}, "rules": [{"to": ["webhook"]}]},
    })  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def opener(cfg: CollectorConfig) -> Iterator[Callable[[], Store]]:
    made: list[Store] = []

    def make() -> Store:
        s = cfg.store
        made.append(open_store(dsn=s.dsn, path=s.path, pg_schema=s.pg_schema))
        return made[-1]

    yield make
    for s in made:
        s.close()


def rec(seq: int, target: str, ok: bool, at: float) -> Record:
    fields = {"sent": 2, "received": 2 if ok else 0, "loss_pct": 0.0 if ok else 100.0}
    data = reading(NODE, seq, target=target, ok=ok, fields=fields, epoch=at, boot="b0000001", mono_s=at - T0 + 500)
    out = check_message(topic_for(data), json.dumps(data).encode())
    assert isinstance(out, Record), out
    return out


def status(state: str, at: float) -> tuple[Status, dict[str, str]]:
    return Status(NODE, state, at, {}), {"kecamatan": "Sekayu", "desa": "Balai Agung"}


def test_an_uplink_cut_replayed_later_is_stored_with_its_messages_and_a_restart_tells_nothing_twice(
    cfg: CollectorConfig, opener: Callable[[], Store]
) -> None:
    clock, stop = Clock(), threading.Event()
    writer = opener()
    loop = {"service": IncidentService(cfg, stop, opener, clock), "store": opener()}
    istore.ensure_schema(loop["store"])
    seq, spool = 0, []

    def tick(up: bool, deliver: bool = True) -> None:
        nonlocal seq
        clock.now += 0.5
        batch = []
        for target, ok in (("gateway", True), ("1.1.1.1", up)):
            seq += 1
            batch.append(rec(seq, target, ok, clock.now))
        if deliver:
            writer.write(spool + batch, now=clock.now)
            spool.clear()
        else:
            spool.extend(batch)
        if seq % 2 == 0:
            loop["service"].step(loop["store"])

    writer.write([], [status("online", T0)], now=T0)
    for _ in range(20):
        tick(up=True)
    writer.write([], [status("offline", clock.now)], now=clock.now)  # its will, when the uplink died
    for _ in range(20):
        tick(up=False, deliver=False)  # cut off: spooled
    opened = istore.listing(loop["store"], open_only=True)
    assert [(i.cause, i.told) for i in opened] == [("unknown", True)]
    # The collector restarts mid-incident: the old loop gives up its lease (as run_engine does on stop).
    istore.drop_lease(loop["store"], loop["service"].holder)
    loop["service"], loop["store"] = IncidentService(cfg, stop, opener, clock), opener()
    for _ in range(10):
        tick(up=False, deliver=False)
    writer.write([], [status("online", clock.now)], now=clock.now)
    for _ in range(20):
        tick(up=True)  # the first delivery carries the replay
    (inc,) = istore.listing(loop["store"])
    assert inc.cause == "uplink" and inc.end is not None and 13.0 <= inc.end - inc.start <= 17.0
    queued = [(q.event, q.payload["incident"]["cause"]) for q in istore.pending(loop["store"])]
    assert queued == [("open", "unknown"), ("resolved", "uplink")]  # the opening was not told again


def test_only_the_lease_holder_evaluates(cfg: CollectorConfig, opener: Callable[[], Store]) -> None:
    clock, stop = Clock(), threading.Event()
    a, b = IncidentService(cfg, stop, opener, clock), IncidentService(cfg, stop, opener, clock)
    sa, sb = opener(), opener()
    istore.ensure_schema(sa)
    a.step(sa)
    b.step(sb)
    assert a.leading and a.engine is not None
    assert not b.leading and b.engine is None
