"""The collector under a regency's load, on SQLite and PostgreSQL, with a real Mosquitto.

Scenario (tests/bench/collector_load.py publishes real Reading JSON at QoS 1):
  1. drain: 100 nodes x 1,000 spooled readings reach the broker while the collector is
     away; the collector comes back and drains its queue -> messages stored per second;
  2. storm: 10,000 nodes at one reading per minute (167 msg/s for 60 s) while 100 other
     nodes reconnect at once with 1,000 readings each -> backlog drain time, lag;
  then readings lost = published - stored (by count of distinct ids), which must be 0.
Collector RSS is sampled from /proc. Target: >= 2,000 msg/s stored on SQLite.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.collector import ROOT, split_pg

LOAD = str(ROOT / "tests" / "bench" / "collector_load.py")
NODES, PER_NODE, STEADY_NODES, STEADY_RATE = 100, 1000, 10_000, 10_000 / 60.0
RUNS = int(os.environ.get("NETPROBE_BENCH_RUNS", "1"))
# The collector's optional parts, on by default as in the shipped config: "0" switches one off, to
# measure what it costs side by side (NETPROBE_BENCH_INCIDENTS=0, NETPROBE_BENCH_ACKS=0).
SECTIONS: dict[str, dict[str, Any]] = {
    section: {"enabled": False}
    for section, var in (("incidents", "NETPROBE_BENCH_INCIDENTS"), ("acks", "NETPROBE_BENCH_ACKS"))
    if os.environ.get(var, "1") == "0"
}
BROKER_EXTRA = "max_queued_messages 1000000\nmax_queued_bytes 0\n"


def rss_mib(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def child_pids(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def start_load(*args: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, LOAD, *map(str, args)], stdout=subprocess.PIPE, text=True, env=env)


def backlog(url: str, first: int, procs: int = 4) -> list[subprocess.Popen[str]]:
    per = NODES // procs
    return [start_load("backlog", url, first + i * per, per, PER_NODE) for i in range(procs)]


def results(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    return [json.loads(p.communicate(timeout=900)[0].strip().splitlines()[-1]) for p in procs]


def wait_count(store: Any, sql: str, target: int, pid: int, peak: list[float], timeout: float = 600) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        peak[0] = max(peak[0], rss_mib(pid)[0])
        if int(store.query(sql)[0][0]) >= target:
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"{sql}: {store.query(sql)[0][0]} < {target} after {timeout} s")


def one_run(backend: str, mosquitto: Any, collector_proc: Any, tmp_path: Path, request: Any) -> dict[str, Any]:
    broker = mosquitto(extra=BROKER_EXTRA)
    if backend == "sqlite":
        settings: dict[str, Any] = {"path": str(tmp_path / f"bench-{time.monotonic_ns()}.db")}
    else:
        dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
        settings = {"dsn": dsn, "pg_schema": f"{schema}_{time.monotonic_ns() % 10**6}"}
    client = {"client_id": f"bench-collector-{time.monotonic_ns() % 10**6}"}
    col = collector_proc(broker.url, settings, broker=client, **SECTIONS)
    assert col.wait_log("subscribed to"), col.log()
    assert col.stop() == 0  # away: the broker queues for its persistent session

    # 1. drain: everything is queued at the broker before the collector returns.
    pubs = results(backlog(broker.url, 0))
    assert sum(p["acked"] for p in pubs) == NODES * PER_NODE
    store = open_store(settings.get("dsn", ""), settings.get("path", ""), settings.get("pg_schema", "netprobe"))
    col = collector_proc(broker.url, settings, broker=client, **SECTIONS)
    t0 = time.monotonic()
    peak = [0.0]
    t1 = wait_count(store, "SELECT COUNT(*) FROM readings", NODES * PER_NODE, col.proc.pid, peak)
    drain_s = t1 - t0  # includes the collector's start-up (~0.3 s)

    # 2. storm: steady fleet plus 100 nodes reconnecting with their backlog at once.
    seconds = 60.0  # one full minute: every one of the 10,000 nodes reports once
    steady = start_load("steady", broker.url, STEADY_NODES, STEADY_RATE, seconds)
    time.sleep(3)
    t2 = time.monotonic()
    storm = backlog(broker.url, NODES)
    backlog_sql = "SELECT COUNT(*) FROM readings WHERE seq <= 1000"
    t3 = wait_count(store, backlog_sql, 2 * NODES * PER_NODE, col.proc.pid, peak)
    storm_pub = results(storm)
    steady_out = results([steady])[0]
    expected = 2 * NODES * PER_NODE + steady_out["acked"]
    t4 = wait_count(store, "SELECT COUNT(*) FROM readings", expected, col.proc.pid, peak, timeout=120)
    rss_now, hwm = rss_mib(col.proc.pid)
    engine_hwm = max((rss_mib(pid)[1] for pid in child_pids(col.proc.pid)), default=0.0)  # its incident engine
    stored, distinct = store.query("SELECT COUNT(*), COUNT(DISTINCT id) FROM readings")[0]
    n_nodes = int(store.query("SELECT COUNT(*) FROM nodes")[0][0])
    assert col.stop() == 0
    store.close()
    fleet_s = {}
    for flag in ("--json", "--html"):  # the fleet view over all those nodes and readings
        args = [flag, str(tmp_path / "fleet.html")] if flag == "--html" else [flag]
        t = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "agent", "fleet", "-c", str(col.conf), *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        fleet_s[flag] = round(time.monotonic() - t, 2)
    unacked_peak = int(col.log().rsplit("unacked peak ", 1)[1].split()[0])
    return {
        "nodes": n_nodes,
        "fleet_json_s": fleet_s["--json"],
        "fleet_html_s": fleet_s["--html"],
        "fleet_html_kib": round((tmp_path / "fleet.html").stat().st_size / 1024),
        "unacked_peak": unacked_peak,
        "backend": backend,
        "drain_msgs": NODES * PER_NODE,
        "drain_s": round(drain_s, 2),
        "drain_rate": round(NODES * PER_NODE / drain_s),
        "storm_backlog_drain_s": round(t3 - t2, 2),
        "storm_publish_s": round(max(p["seconds"] for p in storm_pub), 2),
        "steady_sent": steady_out["sent"],
        "steady_lag_after_publish_s": round(max(0.0, t4 - (t2 - 3 + steady_out["seconds"])), 2),
        "rss_mib_peak": round(max(peak[0], hwm), 1),
        "rss_mib_end": round(rss_now, 1),
        "engine_rss_mib_peak": round(engine_hwm, 1),
        "published": expected,
        "stored": int(stored),
        "lost": expected - int(distinct),
        "duplicates_stored": int(stored) - int(distinct),
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_collector(backend: str, mosquitto: Any, collector_proc: Any, tmp_path: Path, request: Any) -> None:
    runs = [one_run(backend, mosquitto, collector_proc, tmp_path, request) for _ in range(RUNS)]
    med = {k: statistics.median(r[k] for r in runs) if isinstance(runs[0][k], (int, float)) else runs[0][k]
           for k in runs[0]}  # fmt: skip
    print()
    parts = ", ".join(f"{name} {'off' if name in SECTIONS else 'on'}" for name in ("incidents", "acks"))
    print(f"collector on {backend} ({parts}; median of {RUNS} run(s)):")
    print(f"  drain of 100 x 1,000 queued readings : {med['drain_s']:6.1f} s  = {med['drain_rate']:,.0f} msg/s stored")
    print(f"  storm: 100 x 1,000 backlog + 10,000 nodes/min steady: backlog stored in {med['storm_backlog_drain_s']:.1f} s "
          f"(publishers took {med['storm_publish_s']:.1f} s); steady lag at end {med['steady_lag_after_publish_s']:.1f} s")  # fmt: skip
    print(f"  collector RSS: peak {med['rss_mib_peak']:.1f} MiB, at end {med['rss_mib_end']:.1f} MiB; "
          f"unacked messages held at most {med['unacked_peak']:.0f}; its incident engine (a child) peak "
          f"{med['engine_rss_mib_peak']:.1f} MiB")  # fmt: skip
    print(f"  netprobe fleet over {med['nodes']:,.0f} nodes, {med['stored']:,.0f} readings: --json {med['fleet_json_s']:.1f} s, "
          f"--html {med['fleet_html_s']:.1f} s ({med['fleet_html_kib']:,.0f} KiB)")  # fmt: skip
    print(f"  readings published {med['published']:,.0f}, stored {med['stored']:,.0f}, lost {med['lost']:.0f}")
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    (out / f"bench-collector-{backend}.json").write_text(json.dumps(runs, indent=1))
    assert all(r["lost"] == 0 and r["duplicates_stored"] == 0 for r in runs)
