"""Spool append rate, and replay of a 10,000-reading backlog to a local Mosquitto (target <= 10 s).

Append: real Readings appended one by one (one transaction each, as the daemon does), durable
(synchronous=FULL, the daemon's setting) beside synchronous=NORMAL. Replay: the publisher's own
drain path (the code that replays after an outage) with the default in-flight window (20), beside
windows of 1 and 100, timed until a real subscriber has received all 10,000 and the spool is empty.
"""

from __future__ import annotations

import statistics
import time

from agent.config import parse_config
from agent.publish.mqtt import Publisher, PublisherSettings
from agent.publish.spool import Spool
from agent.reading import topics
from agent.reading.model import Identity, Outcome, make_reading

NODE = "bench-node"
SITE = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
TOPIC = topics.topic(topics.DEFAULT_TOPIC, NODE, SITE, "icmp")
FIELDS = {"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_min_ms": 20.1, "rtt_avg_ms": 22.4, "rtt_max_ms": 30.2,
          "rtt_mdev_ms": 2.1, "rtt_p50_ms": 21.9, "rtt_p90_ms": 28.0, "rtt_p99_ms": 30.0, "jitter_ms": 1.7}  # fmt: skip


def fill(spool: Spool, n: int) -> float:
    ident = Identity(NODE, SITE)
    readings = [
        make_reading(ident, "icmp", "1.1.1.1", Outcome(True, dict(FIELDS)), time.time(), 1.0, 0.9, spool.next_seq(NODE))
        for _ in range(n)
    ]
    start = time.perf_counter()
    for r in readings:
        spool.append(r, TOPIC)
    return n / (time.perf_counter() - start)


def test_bench_spool_append_rate(tmp_path):
    rates = {}
    for durable in (True, False):
        runs = [fill(Spool(str(tmp_path / f"a-{durable}-{i}.db"), durable=durable), 2000) for i in range(3)]
        rates[durable] = statistics.median(runs)
    size = len(make_reading(Identity(NODE, SITE), "icmp", "1.1.1.1", Outcome(True, dict(FIELDS)), 0, 1, 1, 1).to_json())
    print(f"\n== spool append, {size} B readings, median of 3 x 2000 ==")
    print(f"  synchronous=FULL (daemon):  {rates[True]:8.0f} readings/s  ({1000 / rates[True]:.2f} ms each)")
    print(
        f"  synchronous=NORMAL:         {rates[False]:8.0f} readings/s  (FULL/NORMAL = {rates[True] / rates[False]:.2f})"
    )
    assert rates[True] > 0


def replay(broker, subscriber, tmp_path, n: int, inflight: int) -> float:
    path = str(tmp_path / f"replay-{inflight}.db")
    spool = Spool(path, durable=False)
    fill(spool, n)
    spool.close()
    sub = subscriber(broker, f"netprobe/+/+/{NODE}/#")
    mqtt = parse_config({"mqtt": {"broker": broker.url, "max_inflight": inflight, "confirm": "broker"}}).mqtt
    settings = PublisherSettings(mqtt=mqtt, node=NODE, site=SITE, announce=False, client_id=f"bench-{inflight}")
    start = time.perf_counter()
    assert Publisher(settings, path, 1_000_000, 10**9).drain(120)
    assert sub.wait_for(lambda m: len(m) >= n, 30)
    took = time.perf_counter() - start
    sub.close()
    assert Spool(path).stats().rows == 0
    return took


def test_bench_replay_10000_spooled_readings(mosquitto, subscriber, tmp_path):
    n = 10_000
    # Unbounded per-subscriber queue: Mosquitto's default (1000) would drop QoS 1 messages for a
    # subscriber slower than the publisher, and this counts what arrives.
    broker = mosquitto(extra="max_queued_messages 0\n")
    results = {w: replay(broker, subscriber, tmp_path, n, w) for w in (20, 100, 1)}
    print(f"\n== replay of {n} spooled readings to a local mosquitto (QoS 1, ack-then-delete) ==")
    for w, took in results.items():
        default = " (default)" if w == 20 else ""
        print(
            f"  max_inflight {w:3d}{default:10s}: {took:6.2f} s  {n / took:7.0f} readings/s  "
            f"(x{results[20] / took:.2f} vs default)"
        )
    assert results[20] > 0
