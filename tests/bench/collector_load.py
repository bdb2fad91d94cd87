"""Load generator for bench_collector: real MQTT publishers (paho, QoS 1) sending Reading JSON.

  collector_load.py backlog URL FIRST N_NODES PER_NODE   one connection per node, each sends its
                                                          backlog as fast as PUBACKs allow
  collector_load.py steady URL N_NODES RATE SECONDS      one connection, RATE msg/s spread over
                                                          N_NODES node ids (10,000 nodes x 1/min)

Prints one JSON line: {"sent": n, "acked": n, "seconds": s}. Payloads are made before the clock starts.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as paho

KECAMATAN = ["Babat Supat", "Babat Toman", "Batanghari Leko", "Bayung Lencir", "Jirak Jaya", "Keluang", "Lais",
             "Lalan", "Lawang Wetan", "Plakat Tinggi", "Sanga Desa", "Sekayu", "Sungai Keruh", "Sungai Lilin",
             "Tungkal Jaya"]  # fmt: skip


def slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def node_of(i: int) -> tuple[str, str, str]:
    kec = KECAMATAN[i % len(KECAMATAN)]
    desa = f"Desa {i // len(KECAMATAN)}"
    return f"muba-{slug(kec)}-{i:05d}", kec, desa


def payload(i: int, seq: int, ts: float) -> tuple[str, bytes]:
    node, kec, desa = node_of(i)
    body = {
        "schema": 1, "id": uuid.uuid4().hex, "node": node,
        "site": {"kabupaten": "Musi Banyuasin", "kecamatan": kec, "desa": desa},
        "seq": seq, "measurement": "icmp", "target": "1.1.1.1",
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".000Z",
        "clock_synced": True, "mono_s": 1000.0 + seq, "boot": "b0", "duration_ms": 805.1, "ok": True, "error": None,
        "fields": {"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_min_ms": 20.1, "rtt_avg_ms": 24.2,
                   "rtt_max_ms": 31.0, "rtt_p50_ms": 23.9, "rtt_p90_ms": 29.0, "jitter_ms": 2.1, "socket": "dgram"},
    }  # fmt: skip
    topic = f"netprobe/{slug(kec)}/{slug(desa)}/{node}/icmp"
    return topic, json.dumps(body, separators=(",", ":")).encode()


def client(url: str, client_id: str) -> Any:
    host, port = url.split("://")[1].split(":")
    kwargs: dict[str, Any] = {"client_id": client_id, "protocol": paho.MQTTv311}
    if hasattr(paho, "CallbackAPIVersion"):
        kwargs["callback_api_version"] = paho.CallbackAPIVersion.VERSION2
    c = paho.Client(**kwargs)
    c.max_inflight_messages_set(200)
    c.max_queued_messages_set(0)
    c.connect(host, int(port), 60)
    return c


def backlog(url: str, first: int, n_nodes: int, per_node: int) -> dict[str, Any]:
    now = time.time()
    work = {i: [payload(i, s, now - (per_node - s) * 60) for s in range(1, per_node + 1)] for i in
            range(first, first + n_nodes)}  # fmt: skip
    acked = [0]
    lock = threading.Lock()

    def on_publish(*_: Any) -> None:
        with lock:
            acked[0] += 1

    clients = []
    for i in work:
        c = client(url, node_of(i)[0])
        c.on_publish = on_publish
        c.loop_start()
        clients.append((c, work[i]))
    start = time.monotonic()
    for c, msgs in clients:
        for topic, body in msgs:
            c.publish(topic, body, qos=1)
    total = n_nodes * per_node
    while acked[0] < total and time.monotonic() - start < 600:
        time.sleep(0.01)
    seconds = time.monotonic() - start
    for c, _ in clients:
        c.disconnect()
        c.loop_stop()
    return {"sent": total, "acked": acked[0], "seconds": seconds}


def steady(url: str, n_nodes: int, rate: float, seconds: float) -> dict[str, Any]:
    c = client(url, f"steady-{uuid.uuid4().hex[:6]}")
    acked = [0]
    c.on_publish = lambda *_: acked.__setitem__(0, acked[0] + 1)
    c.loop_start()
    total = int(rate * seconds)
    msgs = [payload(k % n_nodes, 10_000 + k // n_nodes, time.time()) for k in range(total)]
    start = time.monotonic()
    for k, (topic, body) in enumerate(msgs):
        delay = start + k / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        c.publish(topic, body, qos=1)
    while acked[0] < total and time.monotonic() - start < seconds + 60:
        time.sleep(0.01)
    c.disconnect()
    c.loop_stop()
    return {"sent": total, "acked": acked[0], "seconds": time.monotonic() - start}


if __name__ == "__main__":
    mode, url, *rest = sys.argv[1:]
    if mode == "backlog":
        out = backlog(url, int(rest[0]), int(rest[1]), int(rest[2]))
    else:
        out = steady(url, int(rest[0]), float(rest[1]), float(rest[2]))
    print(json.dumps(out), flush=True)
