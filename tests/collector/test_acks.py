"""The collector's acknowledgements (docs/delivery.md): published after the commit, retained per node,
coalesced, compact, built from the database (so several collectors agree), never taken for readings."""

from __future__ import annotations

import json
import random
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from agent.collector.acks import AckBook, wire_bytes
from agent.collector.settings import AckSettings
from agent.collector.store import open_store
from agent.reading import acks
from agent.reading.topics import collector_ack_topic
from tests.fixtures.collector import Publisher, reading, split_pg, topic_for, wait_until

FAST_ACKS = {"max_delay_s": 0.4, "min_gap_s": 0.2}
DEBIAN_PYTHON = "/usr/bin/python3"


def covered(payload: bytes) -> set[int]:
    ack = acks.decode(payload)
    assert ack is not None, payload
    return set(range(1, ack.upto + 1)).union(*(set(range(a, b + 1)) for a, b in ack.also))


def stored(store: Any, node: str) -> set[int]:
    return {int(s) for (s,) in store.query("SELECT seq FROM readings WHERE node = ?", (node,))}


def send(pub: Publisher, node: str, seqs: list[int]) -> None:
    pub.publish_all([(topic_for(r), json.dumps(r).encode()) for r in (reading(node, s) for s in seqs)])


@pytest.mark.broker
def test_acks_follow_the_commit_retained_per_node_coalesced_and_compact(
    mosquitto: Any, collector_proc: Any, subscriber: Any, tmp_path: Path
) -> None:
    broker = mosquitto()
    db = str(tmp_path / "c.db")
    col = collector_proc(broker.url, {"path": db}, acks=FAST_ACKS)
    assert col.wait_log("subscribed to netprobe/+/+/+/+"), col.log()  # plain by default: no $share
    store = open_store(path=db)
    at_receipt: list[tuple[str, set[int], set[int]]] = []  # (node, what the ack says, what the database held)
    sub = subscriber(broker, "netprobe/ack/#")
    original = sub.client.on_message

    def check(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        node = topic.rsplit("/", 1)[1]
        at_receipt.append((node, covered(payload), stored(store, node)))
        assert original is not None
        original(topic, payload, qos, retain)

    sub.client.on_message = check
    pub = Publisher(broker.url)
    send(pub, "muba-node-a", [s for s in range(1, 41) if s != 20])  # seq 20 lost on the way
    send(pub, "muba-node-b", [1, 2, 3, 4, 5])
    assert sub.wait_for(lambda m: [json.loads(p) for t, p, _ in m if t.endswith("/muba-node-a")][-1:]
                        == [{"upto": 19, "also": [[21, 40]]}], 10), sub.snapshot()  # fmt: skip
    assert sub.wait_for(lambda m: ("netprobe/ack/muba-node-b", b'{"upto":5}', False) in m, 10), sub.snapshot()
    send(pub, "muba-node-a", [20])  # the gap is filled: one range again
    assert sub.wait_for(lambda m: m[-1][1] == b'{"upto":40}', 10), sub.snapshot()
    pub.close()
    for node, says, held in at_receipt:  # never ahead of the database: published after the commit
        assert says <= held, (node, says - held)
    per_node = {t for t, _, _ in sub.snapshot()}
    assert len(sub.snapshot()) <= 6 and per_node == {"netprobe/ack/muba-node-a", "netprobe/ack/muba-node-b"}
    late = subscriber(broker, "netprobe/ack/#")  # retained: a node that reconnects hears the latest at once
    assert late.wait_for(lambda m: len(m) == 2, 5)
    assert {(t, p, r) for t, p, r in late.snapshot()} == {
        ("netprobe/ack/muba-node-a", b'{"upto":40}', True),
        ("netprobe/ack/muba-node-b", b'{"upto":5}', True),
    }
    assert col.stop() == 0 and store.rejects() == {}
    assert "acks 3 (" in col.log() or "acks 4 (" in col.log()  # counted, with their bytes
    store.close()


@pytest.mark.broker
def test_the_collector_never_takes_an_ack_for_a_reading_nor_counts_it_as_a_reject(
    mosquitto: Any, collector_proc: Any, tmp_path: Path
) -> None:
    broker = mosquitto()
    db = str(tmp_path / "c.db")
    col = collector_proc(broker.url, {"path": db}, acks=FAST_ACKS)
    assert col.wait_log("subscribed to netprobe/+/+/+/+"), col.log()
    pub = Publisher(broker.url)
    r = reading("muba-node-a", 1)
    junk = [
        ("netprobe/ack/muba-node-a", b'{"upto":99}'), ("netprobe/ack/muba-node-b", b"not json"),
        ("netprobe/ack/x/y", json.dumps(r).encode()), ("netprobe/ack", b"{}"),
    ]  # fmt: skip
    pub.publish_all(junk, retain=True)
    send(pub, "muba-node-a", [1])
    store = open_store(path=db)
    assert wait_until(lambda: store.count() == 1, 10)
    pub.close()
    assert col.stop() == 0
    assert store.rejects() == {} and "rejected" not in col.log().replace("rejected 0", "")
    assert store.ack_states(["muba-node-a", "muba-node-b"]) == {"muba-node-a": (1, [])}  # only what it stored
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"path": str(tmp_path / "c.db"), "busy_timeout_s": 5.0}
    dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
    return {"dsn": dsn, "pg_schema": schema}


@pytest.mark.broker
def test_collectors_sharing_a_subscription_ack_what_the_database_holds_not_what_each_saw(
    mosquitto: Any, collector_proc: Any, subscriber: Any, store_settings: dict[str, Any]
) -> None:
    broker = mosquitto()
    cols = [collector_proc(broker.url, store_settings, broker={"share_group": "muba"}, acks=FAST_ACKS)
            for _ in range(2)]  # fmt: skip
    for c in cols:
        assert c.wait_log("subscribed to $share/muba/"), c.log()
    sub = subscriber(broker, "netprobe/ack/#")
    pub = Publisher(broker.url)
    rng = random.Random(3)
    sent = {"muba-node-a": list(range(1, 301)), "muba-node-b": sorted(rng.sample(range(1, 200), 120))}
    for node, seqs in sent.items():
        for i in range(0, len(seqs), 50):
            send(pub, node, seqs[i : i + 50])
    pub.close()
    store = open_store(store_settings.get("dsn", ""), store_settings.get("path", ""),
                       store_settings.get("pg_schema", "netprobe"))  # fmt: skip

    def heard(node: str) -> set[int]:
        return set().union(*(covered(p) for t, p, _ in sub.snapshot() if t.endswith("/" + node)))

    assert wait_until(lambda: all(heard(n) == set(s) for n, s in sent.items()), 15), {
        n: sorted(set(s) ^ heard(n))[:10] for n, s in sent.items()}  # fmt: skip
    for node in sent:
        for t, p, _ in sub.snapshot():
            if t.endswith("/" + node):
                assert covered(p) <= stored(store, node)  # no ack ever covers what is not stored
        upto, ranges = store.ack_states([node])[node]
        assert acks.merge(0, [], sent[node]) == (upto, ranges)
    for c in cols:
        assert c.stop() == 0
    published = [int(c.log().rsplit("acks ", 1)[1].split()[0]) for c in cols]
    assert all(n > 0 for n in published), published  # both collectors acked, each from the shared state
    store.close()


def test_two_collectors_merging_one_nodes_acks_at_once_take_turns_on_postgresql(pg_dsn: str) -> None:
    """One collector holds the node's ack row (SELECT ... FOR UPDATE) in its open transaction; the
    other's merge must wait for it, not compute from the state before it and overwrite it."""
    import time

    from agent.collector.store.postgres import PostgresStore
    from agent.reading.validate import check_message

    dsn, schema = split_pg(pg_dsn)
    first, second = PostgresStore(dsn, schema), PostgresStore(dsn, schema)

    def record(seq: int) -> Any:
        r = reading("muba-node-a", seq)
        return check_message(topic_for(r), json.dumps(r).encode())

    first.write([record(1)])
    other = threading.Thread(target=second.write, args=([record(3)],))
    with first._transaction() as cur:
        # The first half of a merge: read the node's state as _update_acks does (with its lock clause)...
        cur.execute(f"SELECT upto FROM acks WHERE node = %s{first.lock_rows}", ("muba-node-a",))
        other.start()
        other.join(0.5)
        assert other.is_alive()  # ...the other collector waits for it, instead of merging from the same state
        first._update_acks(cur, [record(2)], time.time())
    other.join(10)
    assert first.ack_states(["muba-node-a"]) == {"muba-node-a": (3, [])}
    first.close()
    second.close()


@pytest.mark.broker
@pytest.mark.skipif(
    subprocess.run([DEBIAN_PYTHON, "-c", "import paho.mqtt"], capture_output=True).returncode != 0,
    reason="needs Debian's python3-paho-mqtt 1.6 in /usr/bin/python3",
)
def test_on_paho_1_6_the_collector_acks_after_the_commit_as_well(
    mosquitto: Any, collector_proc: Any, subscriber: Any, tmp_path: Path
) -> None:
    broker = mosquitto()
    col = collector_proc(broker.url, {"path": str(tmp_path / "c.db")}, python=DEBIAN_PYTHON, acks=FAST_ACKS)
    assert col.wait_log("subscribed to"), col.log()
    sub = subscriber(broker, "netprobe/ack/#")
    pub = Publisher(broker.url)
    send(pub, "muba-node-a", list(range(1, 31)))
    assert sub.wait_for(lambda m: bool(m) and m[-1][1] == b'{"upto":30}', 10), (sub.snapshot(), col.log())
    pub.close()
    assert col.stop() == 0


# -- what acks cost a node at the default schedule -----------------------------------------------------------
DEFAULT_SCHEDULE = [("icmp", 60.0)] * 3 + [("tcp", 60.0)] + [("dns", 300.0)] * 2 + [("http", 300.0),
                    ("host", 300.0), ("link", 14400.0)]  # fmt: skip
NODE = "muba-sekayu-balai-agung-01"


def reading_wire_bytes(measurement: str = "icmp") -> int:
    """A Reading's PUBLISH (QoS 1, MQTT 3.1.1) and its PUBACK, as a node pays for them."""
    fields = {"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_min_ms": 0.037, "rtt_avg_ms": 0.08, "rtt_max_ms": 0.215,
              "rtt_mdev_ms": 0.068, "rtt_p50_ms": 0.049, "rtt_p90_ms": 0.15, "rtt_p99_ms": 0.208, "jitter_ms": 0.049,
              "duplicates": 0, "late": 0, "socket": "dgram"}  # fmt: skip
    r = reading(NODE, 1042, measurement=measurement, fields=fields)
    payload = json.dumps(r, separators=(",", ":")).encode()
    remaining = 2 + len(topic_for(r).encode()) + 2 + len(payload)
    return 1 + (1 if remaining < 128 else 2) + remaining + 4


def simulate_default_schedule(hours: float = 24.0, seed: int = 15, settings: AckSettings | None = None) -> dict:
    """One node at the default schedule (interval ±10 % jitter, random phase), the collector's
    default ack policy ticking every 0.2 s as its loop does: acks and their bytes per Reading."""
    rng = random.Random(seed)
    events = []
    for _, interval in DEFAULT_SCHEDULE:
        t = rng.uniform(0, min(60.0, interval))
        while t < hours * 3600:
            events.append(t + rng.uniform(0.3, 1.5))  # arrival at the collector after the run and the link
            t += interval * rng.uniform(0.9, 1.1)
    events.sort()
    book, sent_bytes, seq, upto = AckBook(settings or AckSettings(), "netprobe"), 0, 0, 0
    i, now = 0, 0.0

    class Record:
        def __init__(self, seq: int) -> None:
            self.node, self.seq = NODE, seq

    class State:
        def ack_states(self, nodes: list[str]) -> dict:
            return {NODE: (upto, [])}

    while now < hours * 3600 + 120:
        while i < len(events) and events[i] <= now:
            seq += 1
            upto = seq
            book.note([Record(seq)], now)  # type: ignore[list-item]
            i += 1
        book.flush(State(), lambda t, p: True, now)
        now += 0.2
    sent_bytes = book.bytes
    per_reading = sent_bytes / seq
    return {"readings": seq, "acks": book.published, "ack_bytes": sent_bytes, "ack_bytes_per_reading": per_reading,
            "reading_bytes": reading_wire_bytes(), "share": per_reading / reading_wire_bytes(),
            "ack_example": wire_bytes(collector_ack_topic("netprobe", NODE), acks.Ack(1042).encode())}  # fmt: skip


def test_ack_traffic_at_the_default_schedule_is_under_5_percent_of_the_readings_bytes() -> None:
    result = simulate_default_schedule(hours=6.0)
    assert result["readings"] > 1500 and result["acks"] < result["readings"] / 3
    assert result["share"] < 0.05, result
