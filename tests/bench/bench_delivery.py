"""Delivery confirmed by the collector (docs/delivery.md): what it costs in time, in bytes, in collector speed.

1. replay: 10,000 spooled Readings through a real Mosquitto to a real `netprobe collect` (SQLite),
   by the publisher's own drain path (`netprobe spool flush`) with the default settings: time until
   the collector's acks have confirmed every one (the spool is empty; target <= 15 s on loopback),
   beside the same replay deleted on PUBACK (`mqtt.confirm = "broker"`); the bytes of ack traffic a
   node receives per Reading, counted on the wire by a subscriber.
2. default schedule: one node's day at the default targets under the collector's default ack policy
   (tests/collector/test_acks.py simulates it): ack bytes per Reading (target < 5 % of a Reading's).
3. collector: 100 nodes x 1,000 readings queued at the broker while the collector is away, then
   drained (bench_collector's drain), with [acks] enabled and disabled, alternating in the same run:
   stored msg/s, median of NETPROBE_BENCH_RUNS (3); acks may cost at most 20 %.

    .venv/bin/python -m pytest tests/bench/bench_delivery.py -s -p no:cacheprovider -o python_files='bench_*.py'
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from agent.collector.acks import wire_bytes
from agent.collector.store import open_store
from agent.config import parse_config
from agent.publish.mqtt import Publisher, PublisherSettings
from agent.publish.spool import Spool
from agent.reading import topics
from agent.reading.model import Identity, Outcome, make_reading
from tests.bench.bench_collector import BROKER_EXTRA, NODES, PER_NODE, backlog, results, wait_count
from tests.collector.test_acks import reading_wire_bytes, simulate_default_schedule
from tests.fixtures.collector import ROOT

RUNS = int(os.environ.get("NETPROBE_BENCH_RUNS", "3"))
REPLAY = 10_000
NODE = "bench-node"
SITE = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
FIELDS = {"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_min_ms": 20.1, "rtt_avg_ms": 22.4, "rtt_max_ms": 30.2,
          "rtt_mdev_ms": 2.1, "rtt_p50_ms": 21.9, "rtt_p90_ms": 28.0, "rtt_p99_ms": 30.0, "jitter_ms": 1.7}  # fmt: skip


def fill(path: str, n: int) -> int:
    """n Readings in a spool, as a long outage leaves them; returns the payload bytes of one."""
    spool = Spool(path, 1_000_000, 10**9, durable=False)
    ident, topic = Identity(NODE, SITE), topics.topic(topics.DEFAULT_TOPIC, NODE, SITE, "icmp")
    for _ in range(n):
        spool.append(make_reading(ident, "icmp", "1.1.1.1", Outcome(True, dict(FIELDS)), time.time(), 1.0, 0.9,
                                  spool.next_seq(NODE)), topic)  # fmt: skip
    size = len(spool.pending(0, 1)[0].payload)
    spool.close()
    return size


def replay(broker: Any, subscriber: Any, collector_proc: Any, tmp_path: Path, confirm: str) -> dict[str, Any]:
    tag = f"{confirm}-{time.monotonic_ns()}"
    path = str(tmp_path / f"spool-{tag}.sqlite3")
    payload = fill(path, REPLAY)
    db = str(tmp_path / f"collector-{tag}.db")
    col = collector_proc(broker.url, {"path": db}, broker={"client_id": f"c-{tag}"})  # default [acks]
    assert col.wait_log("subscribed to"), col.log()
    acks = subscriber(broker, f"netprobe/ack/{NODE}")
    mqtt = parse_config({"mqtt": {"broker": broker.url, "confirm": confirm}}).mqtt
    settings = PublisherSettings(mqtt=mqtt, node=NODE, site=SITE, announce=False, client_id=f"p-{tag}")
    store = open_store(path=db)
    started = time.perf_counter()
    assert Publisher(settings, path, 1_000_000, 10**9).drain(120)  # the spool is empty: all confirmed
    confirmed_s = time.perf_counter() - started
    assert wait_count(store, "SELECT COUNT(*) FROM readings", REPLAY, col.proc.pid, [0.0], timeout=60)
    stored_s = time.perf_counter() - started
    assert int(store.query("SELECT COUNT(DISTINCT seq) FROM readings")[0][0]) == REPLAY
    store.close()
    time.sleep(0.5)
    heard = acks.snapshot()
    ack_bytes = sum(wire_bytes(t, p) for t, p, _ in heard)
    assert col.stop() == 0
    acks.close()
    return {
        "confirm": confirm, "confirmed_s": round(confirmed_s, 2), "stored_s": round(stored_s, 2),
        "acks": len(heard), "ack_bytes": ack_bytes, "ack_bytes_per_reading": round(ack_bytes / REPLAY, 3),
        "reading_payload_bytes": payload,
    }  # fmt: skip


def test_bench_replay_of_10000_confirmed_by_the_collector(
    mosquitto: Any, subscriber: Any, collector_proc: Any, tmp_path: Path
) -> None:
    broker = mosquitto(extra="max_queued_messages 0\n")
    runs = {c: [replay(broker, subscriber, collector_proc, tmp_path, c) for _ in range(RUNS)] for c in
            ("collector", "broker")}  # fmt: skip
    med = {c: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "confirm"} for c, rs in runs.items()}
    day = simulate_default_schedule(hours=24.0)
    reading = reading_wire_bytes()
    print()
    print(f"== replay of {REPLAY:,} spooled readings, default settings, local mosquitto + netprobe collect "
          f"(SQLite), median of {RUNS} ==")  # fmt: skip
    c, b = med["collector"], med["broker"]
    print(f"  confirmed by the collector (default): {c['confirmed_s']:6.2f} s to an empty spool "
          f"({REPLAY / c['confirmed_s']:,.0f} readings/s); all stored after {c['stored_s']:.2f} s")  # fmt: skip
    print(f"  deleted on PUBACK (confirm=broker):   {b['confirmed_s']:6.2f} s to an empty spool; "
          f"all stored after {b['stored_s']:.2f} s")  # fmt: skip
    print(f"  ack traffic during the replay: {c['acks']:.0f} acks, {c['ack_bytes']:.0f} bytes = "
          f"{c['ack_bytes_per_reading']:.3f} bytes per reading ({c['ack_bytes_per_reading'] / reading:.3%} of a "
          f"reading's {reading} bytes on the wire)")  # fmt: skip
    print(f"== one node's day at the default schedule, default ack policy (simulated, {day['readings']:,} readings) ==")
    print(f"  {day['acks']:,} acks of {day['ack_example']} bytes: {day['ack_bytes_per_reading']:.1f} bytes per "
          f"reading = {day['share']:.2%} of a reading's {day['reading_bytes']} bytes (target < 5 %)")  # fmt: skip
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "bench-delivery-replay.json").write_text(json.dumps({"runs": runs, "day": day}, indent=1))
    assert c["confirmed_s"] <= 15.0, c
    assert day["share"] < 0.05, day


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far: less sensitive than wall time to a shared machine."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain_rate(mosquitto: Any, collector_proc: Any, tmp_path: Path, acks: bool) -> dict[str, Any]:
    """bench_collector's drain: 100 x 1,000 queued at the broker, then stored by a returning collector."""
    broker = mosquitto(extra=BROKER_EXTRA)
    settings = {"path": str(tmp_path / f"drain-{acks}-{time.monotonic_ns()}.db")}
    client = {"client_id": f"drain-{time.monotonic_ns() % 10**6}"}
    col = collector_proc(broker.url, settings, broker=client, acks={"enabled": acks})
    assert col.wait_log("subscribed to"), col.log()
    assert col.stop() == 0
    pubs = results(backlog(broker.url, 0))
    assert sum(p["acked"] for p in pubs) == NODES * PER_NODE
    store = open_store(path=settings["path"])
    col = collector_proc(broker.url, settings, broker=client, acks={"enabled": acks})
    t0 = time.monotonic()
    t1 = wait_count(store, "SELECT COUNT(*) FROM readings", NODES * PER_NODE, col.proc.pid, [0.0])
    cpu = cpu_s(col.proc.pid)  # start-up included, the same in both modes
    distinct = int(store.query("SELECT COUNT(DISTINCT id) FROM readings")[0][0])
    store.close()
    assert col.stop() == 0
    ack_line = col.log().rsplit("acks ", 1)[1]
    broker.stop()
    return {
        "acks_enabled": acks, "drain_s": round(t1 - t0, 2), "rate": round(NODES * PER_NODE / (t1 - t0)),
        "cpu_us_per_reading": round(cpu * 1e6 / (NODES * PER_NODE), 1),
        "lost": NODES * PER_NODE - distinct, "acks": int(ack_line.split()[0]),
        "ack_bytes": int(ack_line.split("(", 1)[1].split()[0]),
    }  # fmt: skip


def test_bench_collector_stored_rate_with_and_without_acks(mosquitto: Any, collector_proc: Any, tmp_path: Path) -> None:
    runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for _ in range(RUNS):  # alternating, so both see the same machine
        for acks in (False, True):
            runs[acks].append(drain_rate(mosquitto, collector_proc, tmp_path, acks))
    rate = {a: statistics.median(r["rate"] for r in rs) for a, rs in runs.items()}
    cpu = {a: statistics.median(r["cpu_us_per_reading"] for r in rs) for a, rs in runs.items()}
    acks_sent = statistics.median(r["acks"] for r in runs[True])
    ack_bytes = statistics.median(r["ack_bytes"] for r in runs[True])
    cost = 1 - rate[True] / rate[False]
    print()
    print(f"== collector drain of {NODES} x {PER_NODE:,} queued readings (SQLite), median of {RUNS} ==")
    print(f"  acks disabled: {rate[False]:8,.0f} msg/s stored  (runs: {[r['rate'] for r in runs[False]]})")
    print(f"  acks enabled:  {rate[True]:8,.0f} msg/s stored  (runs: {[r['rate'] for r in runs[True]]})")
    print(f"  cost of acks: {cost:.1%} of the stored rate (limit 20 %); collector CPU per reading "
          f"{cpu[False]:.0f} -> {cpu[True]:.0f} us ({cpu[True] / cpu[False] - 1:+.1%})")  # fmt: skip
    print(f"  {acks_sent:,.0f} acks for {NODES * PER_NODE:,} readings ({ack_bytes / (NODES * PER_NODE):.2f} bytes "
          "per reading)")  # fmt: skip
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "bench-delivery-collector.json").write_text(json.dumps({str(k): v for k, v in runs.items()}, indent=1))
    assert all(r["lost"] == 0 for rs in runs.values() for r in rs)
    assert cost <= 0.20, rate
