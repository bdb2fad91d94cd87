"""The collector on Debian 12's paho-mqtt 1.6.1 (/usr/bin/python3), which cannot defer a PUBACK, so it
stores one message per transaction: drain of 10 x 1,000 queued readings, beside paho 2.x (the venv)."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.bench.bench_collector import BROKER_EXTRA, results, rss_mib, start_load
from tests.collector.test_paho16 import DEBIAN_PYTHON, debian_paho

NODES, PER_NODE = 10, 1000


def drain(python: str, mosquitto: Any, collector_proc: Any, tmp_path: Path) -> tuple[float, float]:
    broker = mosquitto(extra=BROKER_EXTRA)
    settings = {"path": str(tmp_path / f"p-{time.monotonic_ns()}.db")}
    client = {"client_id": f"bench16-{time.monotonic_ns() % 10**6}"}
    col = collector_proc(broker.url, settings, python=python, broker=client)
    assert col.wait_log("subscribed to"), col.log()
    assert col.stop() == 0
    results([start_load("backlog", broker.url, 0, NODES, PER_NODE)])
    store = open_store(path=settings["path"])
    col = collector_proc(broker.url, settings, python=python, broker=client)
    t0, peak = time.monotonic(), 0.0
    while store.count() < NODES * PER_NODE:
        assert time.monotonic() - t0 < 600
        peak = max(peak, rss_mib(col.proc.pid)[0])
        time.sleep(0.2)
    seconds = time.monotonic() - t0
    assert col.stop() == 0 and store.count() == NODES * PER_NODE
    store.close()
    return seconds, peak


@pytest.mark.skipif(
    not debian_paho().startswith("1."), reason="needs Debian's python3-paho-mqtt 1.6 in /usr/bin/python3"
)
def test_bench_collector_on_paho_1_6(mosquitto: Any, collector_proc: Any, tmp_path: Path) -> None:
    old = [drain(DEBIAN_PYTHON, mosquitto, collector_proc, tmp_path) for _ in range(3)]
    new = [drain(sys.executable, mosquitto, collector_proc, tmp_path) for _ in range(3)]
    old_s, old_rss = statistics.median(s for s, _ in old), statistics.median(r for _, r in old)
    new_s, new_rss = statistics.median(s for s, _ in new), statistics.median(r for _, r in new)
    n = NODES * PER_NODE
    print()
    print(f"drain of {n:,} queued readings, SQLite, median of 3:")
    print(f"  paho 1.6.1 (Debian): {old_s:6.1f} s = {n / old_s:7,.0f} msg/s, RSS peak {old_rss:.1f} MiB")
    print(f"  paho 2.x (venv)    : {new_s:6.1f} s = {n / new_s:7,.0f} msg/s, RSS peak {new_rss:.1f} MiB"
          f"  (x{old_s / new_s:.1f} faster)")  # fmt: skip
