"""`netprobe collect` runs the incident engine as a child process of its own: the engine finds
incidents from there, a dead engine is started again while the storing goes on, and no engine
outlives its collector, however the collector ends."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.collector import Publisher, reading, topic_for, wait_until

pytestmark = pytest.mark.broker

NODE = "muba-sekayu-balai-agung-01"
ENGINE = {"evaluate_every_s": 0.5, "interval_s": 1.0, "gap_s": 3.0, "hold_s": 0.0}


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from /proc (no psutil in the test)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry))
    return found


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def engines_of(pid: int) -> list[int]:
    return [c for c in children(pid) if {"incidents", "--watch"} <= set(cmdline(c))]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stored(path: Path) -> int:
    store = open_store(path=str(path))
    try:
        return int(store.query("SELECT COUNT(*) FROM readings")[0][0])
    finally:
        store.close()


def test_the_engine_runs_in_a_child_that_is_restarted_and_never_outlives_the_collector(
    mosquitto: Any, collector_proc: Any, tmp_path: Path
) -> None:
    broker = mosquitto()
    db = tmp_path / "collector.db"
    col = collector_proc(broker.url, {"path": str(db)}, incidents=ENGINE)
    assert col.wait_log("subscribed to"), col.log()
    assert wait_until(lambda: engines_of(col.proc.pid), 10), col.log()
    (engine,) = engines_of(col.proc.pid)
    assert f"the engine runs in process {engine}" in col.log()
    assert col.wait_log("incidents: engine started", 15), col.log()  # the child logs where the collector does

    # It finds incidents from there: a desa whose uplink is cut (its public target stops answering).
    pub = Publisher(broker.url)
    seqs = iter(range(1, 10_000))

    def report(ok: bool) -> None:
        fields = {"sent": 2, "received": 2 if ok else 0, "loss_pct": 0.0 if ok else 100.0}
        data = reading(NODE, next(seqs), ok=ok, fields=fields, epoch=time.time())
        pub.publish_all([(topic_for(data), json.dumps(data).encode())])

    opened = re.compile(r"incident \S+ open: ")
    assert wait_until(lambda: report(False) or opened.search(col.log()), 30, 0.3), col.log()[-3000:]

    # A dead engine is started again, and the collector stores on meanwhile.
    os.kill(engine, signal.SIGKILL)
    assert col.wait_log("the engine process exited (signal SIGKILL)", 10), col.log()[-3000:]
    assert wait_until(lambda: [p for p in engines_of(col.proc.pid) if p != engine], 10), col.log()[-3000:]
    (engine,) = engines_of(col.proc.pid)
    before = stored(db)
    report(True)
    assert wait_until(lambda: stored(db) == before + 1, 10)
    assert col.running()
    # The new engine resumes its predecessor's lease at once, not after the minute the lease lasts.
    lead = "incidents: this collector runs the incident engine"
    assert wait_until(lambda: col.log().count(lead) == 2, 10), col.log()[-3000:]

    # A collector stopped as systemd does takes its engine with it.
    assert col.stop() == 0
    assert not alive(engine)

    # So does one killed outright (no chance to stop it): the engine sees its parent gone.
    col.restart()
    assert wait_until(lambda: engines_of(col.proc.pid), 10), col.log()[-3000:]
    (engine,) = engines_of(col.proc.pid)
    col.kill()
    assert wait_until(lambda: not alive(engine), 10), cmdline(engine)
    pub.close()


def test_with_incidents_off_the_collector_starts_no_engine(mosquitto: Any, collector_proc: Any, tmp_path: Path) -> None:
    broker = mosquitto()
    col = collector_proc(broker.url, {"path": str(tmp_path / "c.db")}, incidents={"enabled": False})
    assert col.wait_log("subscribed to"), col.log()
    time.sleep(1.5)  # the engine would have been started at the first turn of the loop
    assert engines_of(col.proc.pid) == [] and "engine runs in process" not in col.log()
