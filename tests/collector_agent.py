"""A stand-in agent for the collector tests: a real MQTT client with a last will, publishing
Readings made by agent.reading.model at a short interval until it is killed.

usage: collector_agent.py URL NODE KECAMATAN DESA INTERVAL [--gateway-only] [--skip SEQ]
       [--lat X --lon Y] [--link TYPE]
"""

from __future__ import annotations

import argparse
import json
import signal
import time

from agent.net.mqttclient import BrokerUrl, ConnectOptions, MqttClient, Will
from agent.reading.model import Identity, Outcome, make_reading
from agent.reading.topics import DEFAULT_TOPIC, status_topic, topic


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("url", "node", "kecamatan", "desa"):
        p.add_argument(name)
    p.add_argument("interval", type=float)
    p.add_argument("--gateway-only", action="store_true")
    p.add_argument("--skip", type=int, default=-1)
    p.add_argument("--lat", type=float)
    p.add_argument("--lon", type=float)
    p.add_argument("--link", default="fiber")
    a = p.parse_args()
    site = {"kabupaten": "Musi Banyuasin", "kecamatan": a.kecamatan, "desa": a.desa}
    if a.lat is not None:
        site.update(lat=a.lat, lon=a.lon)
    ident = Identity(a.node, site)
    status = status_topic(DEFAULT_TOPIC, a.node, site)
    will = Will(status, json.dumps({"state": "offline", "node": a.node}).encode())
    client = MqttClient(ConnectOptions(url=BrokerUrl.parse(a.url), client_id=a.node, keepalive=5, will=will))
    online = json.dumps({"state": "online", "node": a.node, "version": "test", "ts": "2026-11-28T10:00:00.000Z"})
    client.on_connect = lambda ok, reason, sp: ok and client.publish(status, online.encode(), qos=1, retain=True)
    client.connect_async()
    client.loop_start()
    seq = 0

    def send(measurement: str, target: str, outcome: Outcome) -> None:
        nonlocal seq
        seq += 1
        if seq == a.skip:
            seq += 1
        r = make_reading(ident, measurement, target, outcome, time.time(), time.monotonic(), 0.01, seq=seq)
        client.publish(topic(DEFAULT_TOPIC, a.node, site, measurement), r.to_json().encode(), qos=1)

    quiet = []  # SIGUSR1: stay connected but publish nothing more (a silent node)
    signal.signal(signal.SIGUSR1, lambda *_: quiet.append(True))
    send("linktype", "uplink", Outcome(True, {"link_type": a.link, "confidence": 0.9}))
    send("throughput", "speed", Outcome(True, {"download_mbps": 48.5, "upload_mbps": 20.1, "bytes_used": 1_000_000}))
    while True:
        if quiet:
            time.sleep(0.1)
            continue
        send("icmp", "gateway", Outcome(True, {"sent": 3, "received": 3, "loss_pct": 0.0, "rtt_p50_ms": 1.2}))
        if a.gateway_only:
            send("icmp", "1.1.1.1", Outcome.failed("timeout", "no reply", sent=3, received=0, loss_pct=100.0))
        else:
            send("icmp", "1.1.1.1", Outcome(True, {"sent": 3, "received": 3, "loss_pct": 0.0, "rtt_p50_ms": 25.0}))
        time.sleep(a.interval)


if __name__ == "__main__":
    main()
