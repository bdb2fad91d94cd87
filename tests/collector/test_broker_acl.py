"""packaging/mosquitto on a real broker: a node writes only under its own node id, reads nothing,
and a forged node id inside an allowed topic is caught by the collector's spoof check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.collector import ROOT, Publisher, reading, topic_for, wait_until

pytestmark = pytest.mark.broker
PACKAGING = ROOT / "packaging" / "mosquitto"
# Lines of netprobe.conf about files, TLS and the listener: the test fixture sets its own.
FIXTURE_OWNED = {
    "per_listener_settings", "allow_anonymous", "password_file", "acl_file", "listener", "cafile", "certfile",
    "keyfile", "tls_version", "persistence", "persistence_location", "autosave_interval",
}  # fmt: skip
A, B = "muba-sekayu-balai-agung-01", "muba-lais-tanjung-agung-01"
USERS = {"collector-1": "c-secret", A: "a-secret", B: "b-secret"}


def policy_lines() -> str:
    lines = [ln.strip() for ln in (PACKAGING / "netprobe.conf").read_text().splitlines()]
    return "\n".join(ln for ln in lines if ln and not ln.startswith("#") and ln.split()[0] not in FIXTURE_OWNED) + "\n"


def site(kec: str, desa: str) -> dict[str, Any]:
    return {"kabupaten": "Musi Banyuasin", "kecamatan": kec, "desa": desa}


def test_a_node_cannot_publish_into_another_nodes_topic_and_a_forged_node_id_is_caught(
    mosquitto: Any, collector_proc: Any, subscriber: Any, tmp_path: Path
) -> None:
    acl = (PACKAGING / "netprobe.acl").read_text()
    broker = mosquitto(users=USERS, acl=acl, extra=policy_lines())
    pw = tmp_path / "collector.password"
    pw.write_text("c-secret\n")
    db = str(tmp_path / "c.db")
    col = collector_proc(
        broker.url, {"path": db}, broker={"client_id": "collector-1", "username": "collector-1", "password_file": str(pw)}
    )
    assert col.wait_log("subscribed to $share/collectors/"), col.log()

    node_a = Publisher(broker.url, client_id=A, username=A, password="a-secret", protocol="5")
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
    sneaky = Publisher(broker.url, client_id=B, username=A, password="a-secret", protocol="5")
    again = reading(B, 3, site=site("Lais", "Tanjung Agung"))
    assert sneaky.publish_all([(topic_for(again), json.dumps(again).encode())]) == [0x87]
    sneaky.close()

    store = open_store(path=db)
    assert wait_until(lambda: store.rejects().get("spoofed") == 1, 10), store.rejects()
    assert store.query("SELECT node FROM readings") == [(A,)]

    # Nodes read nothing; the collector reads everything.
    spy = subscriber(broker, "netprobe/#", username=A, password="a-secret")
    node_b = Publisher(broker.url, client_id=B, username=B, password="b-secret", protocol="5")
    legit = reading(B, 10, site=site("Lais", "Tanjung Agung"))
    assert node_b.publish_all([(topic_for(legit), json.dumps(legit).encode())]) in ([0], [None])
    node_b.close()
    assert wait_until(lambda: store.count() == 2, 10)
    assert spy.snapshot() == []
    assert col.running() and "rejected a spoofed message" in col.log()
    store.close()
