"""The shipped broker policy together with the real collector: a node writes only under its own node
id, reads nothing but its own acks and commands, and a forged node id inside its own topic passes the
broker but is caught by the collector's spoof check.

The broker runs packaging/mosquitto/ as installed, over TLS, changed only in ports and file paths
(the ``shipped_broker`` fixture); tests/collector/test_shipped_broker.py proves the broker's side alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.collector import Publisher, reading, topic_for, wait_until

pytestmark = pytest.mark.broker
A, B = "muba-sekayu-balai-agung-01", "muba-lais-tanjung-agung-01"
USERS = {"collector-1": "c-secret", A: "a-secret", B: "b-secret"}


def site(kec: str, desa: str) -> dict[str, Any]:
    return {"kabupaten": "Musi Banyuasin", "kecamatan": kec, "desa": desa}


def test_a_node_cannot_publish_into_another_nodes_topic_and_a_forged_node_id_is_caught(
    shipped_broker: Any, collector_proc: Any, subscriber: Any, tmp_path: Path
) -> None:
    broker = shipped_broker(USERS)
    tls = {"ca_file": broker.ca_file}
    pw = tmp_path / "collector.password"
    pw.write_text("c-secret\n")
    db = str(tmp_path / "c.db")
    col = collector_proc(
        broker.url, {"path": db},
        broker={"client_id": "collector-1", "username": "collector-1", "password_file": str(pw), **tls},
    )  # fmt: skip
    assert col.wait_log("subscribed to netprobe/"), col.log()

    node_a = Publisher(broker.url, client_id=A, username=A, password="a-secret", protocol="5", **tls)
    own = reading(A, 1, site=site("Sekayu", "Balai Agung"))
    into_b = reading(B, 1, site=site("Lais", "Tanjung Agung"))
    forged = reading(B, 2, site=site("Sekayu", "Balai Agung"))  # B's id, inside A's own topic
    codes = node_a.publish_all(
        [(topic_for(own), json.dumps(own).encode()), (topic_for(into_b), json.dumps(into_b).encode()),
         (topic_for(forged, node=A), json.dumps(forged).encode())]
    )  # fmt: skip
    assert codes[1] == 0x87  # MQTT 5 PUBACK: not authorized
    assert codes[0] in (0, None) and codes[2] in (0, None)
    node_a.close()

    # Claiming B's client id does not help: the broker uses the username as client id.
    sneaky = Publisher(broker.url, client_id=B, username=A, password="a-secret", protocol="5", **tls)
    again = reading(B, 3, site=site("Lais", "Tanjung Agung"))
    assert sneaky.publish_all([(topic_for(again), json.dumps(again).encode())]) == [0x87]
    sneaky.close()

    store = open_store(path=db)
    assert wait_until(lambda: store.rejects().get("spoofed") == 1, 10), store.rejects()
    assert store.query("SELECT node FROM readings") == [(A,)]

    # A node reads nothing but its own acks and commands; the collector reads everything.
    spy = subscriber(broker, "netprobe/#", username=A, password="a-secret", **tls)
    node_b = Publisher(broker.url, client_id=B, username=B, password="b-secret", protocol="5", **tls)
    legit = reading(B, 10, site=site("Lais", "Tanjung Agung"))
    assert node_b.publish_all([(topic_for(legit), json.dumps(legit).encode())]) in ([0], [None])
    node_b.close()
    assert wait_until(lambda: store.count() == 2, 10)
    assert {t for t, _, _ in spy.snapshot()} <= {f"netprobe/ack/{A}", f"netprobe/cmd/{A}"}, spy.snapshot()
    assert col.running() and "rejected a spoofed message" in col.log()
    store.close()
