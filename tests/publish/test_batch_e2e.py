"""Batches end to end (docs/data-cost.md): real Mosquitto, real `netprobe run` agents, real `netprobe collect`.

The collector stores batched and single Readings alike: each exactly once, each acknowledged by
its seq, so a batch leaves the node's spool row by row; a bad Reading in a batch is rejected alone.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from agent.reading import batch
from tests.fixtures.agentd import agent_toml
from tests.fixtures.collector import Publisher, reading, wait_until

pytestmark = pytest.mark.broker

DEBIAN_PYTHON = "/usr/bin/python3"


def debian_paho_ready() -> bool:
    check = "import paho.mqtt, psutil, dns.resolver; assert paho.mqtt.__version__.startswith('1.')"
    try:
        return subprocess.run([DEBIAN_PYTHON, "-c", check], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_debian = pytest.mark.skipif(not debian_paho_ready(), reason="needs Debian's python3 with paho-mqtt 1.6")

FAST_ACKS = {"max_delay_s": 0.3, "min_gap_s": 0.2}


class Db:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: Any = None

    def rows(self, node: str) -> list[tuple[int, str, bool]]:
        if self.store is None:
            if not self.path.exists():
                return []
            self.store = open_store(path=str(self.path))
        return [
            (int(s), str(i), bool(ok))
            for s, i, ok in self.store.query("SELECT seq, id, ok FROM readings WHERE node = ?", (node,))
        ]

    def exactly_once(self, node: str) -> bool:
        rows = self.rows(node)
        seqs = [s for s, _, _ in rows]
        return bool(seqs) and len(seqs) == len(set(seqs)) == len({i for _, i, _ in rows}) == max(seqs)

    def rejects(self) -> dict[str, int]:
        return self.store.rejects() if self.store else {}

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


@pytest.fixture
def db(tmp_path: Path) -> Any:
    d = Db(tmp_path / "collector.db")
    yield d
    d.close()


def start_collector(collector_proc: Any, url: str, db: Db, env: Any = None) -> Any:
    col = collector_proc(url, {"path": str(db.path)}, env=env, broker={"client_id": "collector-1"}, acks=FAST_ACKS)
    assert col.wait_log("subscribed to"), col.log()
    return col


def batching(
    state: Path, tcp: str, url: str, node: str, batch_s: float = 1.0, interval: float = 0.2, **mqtt: Any
) -> str:
    return agent_toml(state, tcp=tcp, broker=url, node=node, interval=interval,
                      mqtt={"batch": True, "batch_s": batch_s, "confirm_timeout": 2.0, **mqtt})  # fmt: skip


def confirmed_all(agent: Any, db: Db, node: str, at_least: int) -> bool:
    counts = agent.spool()
    last = counts.last_seq.get(node, 0)
    stored = {s for s, _, _ in db.rows(node)}
    return last >= at_least and counts.confirmed >= at_least and set(range(1, last - counts.rows + 1)) <= stored


def batch_messages(sub: Any, node: str) -> list[bytes]:
    return [p for t, p, _ in sub.snapshot() if t.endswith(f"/{node}/batch")]


@pytest.mark.parametrize("python", ["venv", pytest.param("debian", marks=needs_debian)])
def test_batched_and_single_readings_are_stored_exactly_once_and_each_leaves_its_spool_when_acknowledged(
    mosquitto: Any, subscriber: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db,
    python: str,
) -> None:  # fmt: skip
    broker = mosquitto()
    sub = subscriber(broker, "netprobe/#")
    col = start_collector(collector_proc, broker.url, db)
    interpreter = DEBIAN_PYTHON if python == "debian" else sys.executable  # paho-mqtt 1.6, psutil 5.9.4
    batched = agentd(batching(tmp_path / "b", tcp_listener.address, broker.url, "node-batch"), python=interpreter)
    single = agentd(agent_toml(tmp_path / "s", tcp=tcp_listener.address, broker=broker.url, node="node-single",
                               interval=0.2, mqtt={"batch": False, "confirm_timeout": 2.0}))  # fmt: skip
    assert wait_until(
        lambda: confirmed_all(batched, db, "node-batch", 30) and confirmed_all(single, db, "node-single", 30), 30
    ), (batched.spool(), single.spool(), batched.stderr()[-2000:], col.log()[-2000:])
    for node in ("node-batch", "node-single"):
        assert db.exactly_once(node), sorted(s for s, _, _ in db.rows(node))
    # The batching node published a few batches, the other one message per Reading, on its probe's topic.
    batches = batch_messages(sub, "node-batch")
    in_batches = sum(len(batch.decode(p)) for p in batches)
    assert batches and in_batches >= 30 and len(batches) <= in_batches / 3, (len(batches), in_batches)
    assert not [t for t, _, _ in sub.snapshot() if "/node-batch/tcp" in t]
    assert not batch_messages(sub, "node-single") and [t for t, _, _ in sub.snapshot() if "/node-single/tcp" in t]
    assert db.rejects() == {} and "Traceback" not in batched.stderr() + col.log()


def test_a_collector_dying_between_commit_and_ack_of_a_batch_loses_and_duplicates_nothing(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db
) -> None:
    broker = mosquitto(persistence=True)
    col = start_collector(collector_proc, broker.url, db, env={"NETPROBE_TEST_EXIT_AFTER_COMMIT": "2"})
    agent = agentd(batching(tmp_path / "b", tcp_listener.address, broker.url, "node-batch", batch_s=0.5))
    assert wait_until(lambda: not col.running(), 20), (col.log()[-2000:], agent.stderr()[-3000:])
    stored_before_ack = len(db.rows("node-batch"))
    assert stored_before_ack > 0
    col.restart(env={k: v for k, v in col.env.items() if k != "NETPROBE_TEST_EXIT_AFTER_COMMIT"})
    assert wait_until(lambda: confirmed_all(agent, db, "node-batch", 25), 30), (agent.spool(), col.log()[-2000:])
    assert db.exactly_once("node-batch")  # the broker re-delivered the unacked batch: its ids made it harmless


def test_a_long_outage_is_replayed_in_a_few_compressed_messages(
    mosquitto: Any, subscriber: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db
) -> None:
    broker = mosquitto()
    sub = subscriber(broker, "netprobe/#")
    start_collector(collector_proc, broker.url, db)
    state = tmp_path / "b"
    node = "node-batch"
    backlog = prefill(state, node, 2000)  # two days of outage at the metered profile's pace
    agent = agentd(batching(state, tcp_listener.address, broker.url, node, batch_s=60.0, interval=30.0))
    assert wait_until(lambda: confirmed_all(agent, db, node, 2000), 40), (agent.spool(), agent.stderr()[-2000:])
    assert db.exactly_once(node)
    messages = batch_messages(sub, node)
    assert 4 <= len(messages) <= 8, len(messages)  # 2000 Readings, ~480 a batch
    wire = sum(len(p) for p in messages)
    raw = sum(len(json.dumps(r, separators=(",", ":"))) for r in backlog)
    assert wire < raw / 5, (wire, raw)  # compressed about 8x


def prefill(state: Path, node: str, n: int) -> list[dict[str, Any]]:
    from agent.publish.spool import Spool, spool_path
    from agent.reading import topics
    from agent.reading.model import Identity, Outcome, make_reading

    site = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
    spool = Spool(spool_path(str(state)))
    made = []
    for i in range(n):
        fields = {"sent": 3, "received": 3, "loss_pct": 0.0, "rtt_p50_ms": 600.0 + i % 7, "rtt_min_ms": 598.2}
        r = make_reading(Identity(node, site), "icmp", "1.1.1.1", Outcome(True, fields), time.time() - 86400 + i,
                         100.0 + i, 0.6, spool.next_seq(node))  # fmt: skip
        spool.append(r, topics.topic(topics.DEFAULT_TOPIC, node, site, "icmp"))
        made.append(r.to_dict())
    spool.close()
    return made


def test_a_state_change_does_not_wait_for_the_batch(
    mosquitto: Any, collector_proc: Any, agentd: Any, tmp_path: Path, db: Db
) -> None:
    """batch_s is a minute, but the target failing after it answered goes at once, with what waited before it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    broker = mosquitto()
    start_collector(collector_proc, broker.url, db)
    agent = agentd(batching(tmp_path / "b", address, broker.url, "node-batch", batch_s=60.0))
    # What waited when the connection opened went at once; what follows waits for its batch.
    assert wait_until(lambda: agent.spool().last_seq.get("node-batch", 0) >= 10, 10), agent.stderr()[-2000:]
    time.sleep(1.0)
    last = agent.spool().last_seq["node-batch"]
    assert last - len(db.rows("node-batch")) >= 10 and agent.spool().waiting >= 10
    listener.close()  # the target stops answering: a state change
    failed_at = time.monotonic()
    assert wait_until(lambda: any(not ok for _, _, ok in db.rows("node-batch")), 10), agent.stderr()[-2000:]
    assert time.monotonic() - failed_at < 5
    assert set(range(1, last + 1)) <= {s for s, _, _ in db.rows("node-batch")}  # what waited came with it
    assert db.exactly_once("node-batch")


def test_a_bad_reading_in_a_batch_is_rejected_alone(
    mosquitto: Any, collector_proc: Any, tmp_path: Path, db: Db
) -> None:
    broker = mosquitto()
    start_collector(collector_proc, broker.url, db)
    good = [reading("node-x", i) for i in (1, 2, 3)]
    bad = dict(good[1], duration_ms=-5.0)
    payload = batch.encode([good[0], bad, good[2]])
    pub = Publisher(broker.url)
    try:
        pub.publish_all([("netprobe/sekayu/balai-agung/node-x/batch", payload)])
    finally:
        pub.close()
    assert wait_until(lambda: len(db.rows("node-x")) == 2 and db.rejects().get("invalid") == 1, 10), db.rejects()
    assert {i for _, i, _ in db.rows("node-x")} == {good[0]["id"], good[2]["id"]}
    sample = db.store.reject_samples()[0]
    assert sample["kind"] == "invalid" and good[1]["id"] in sample["sample"] and "duration_ms" in sample["why"]


def test_a_reading_of_a_batch_the_database_refuses_is_quarantined_and_the_rest_stored(
    mosquitto: Any, collector_proc: Any, tmp_path: Path, db: Db
) -> None:
    from tests.collector.test_hostile_store import refuse_target

    broker = mosquitto()
    start_collector(collector_proc, broker.url, db)
    store = open_store(path=str(db.path))
    refuse_target({"path": str(db.path)}, store, "refuse-me")
    items = [reading("node-x", i) for i in range(1, 6)]
    items[2] = reading("node-x", 3, target="refuse-me")
    pub = Publisher(broker.url)
    try:
        pub.publish_all([("netprobe/sekayu/balai-agung/node-x/batch", batch.encode(items))])
    finally:
        pub.close()
    assert wait_until(lambda: len(db.rows("node-x")) == 4 and db.rejects().get("unstorable") == 1, 10), db.rejects()
    assert sorted(s for s, _, _ in db.rows("node-x")) == [1, 2, 4, 5]
    (sample,) = store.reject_samples()
    assert "refuse-me" in sample["sample"] and items[2]["id"] in sample["sample"]
    store.close()


def test_spool_flush_delivers_a_backlog_in_batches(
    mosquitto: Any, subscriber: Any, collector_proc: Any, tcp_listener: Any, tmp_path: Path, db: Db
) -> None:
    from tests.fixtures.collector import ROOT, env_for_children

    broker = mosquitto()
    sub = subscriber(broker, "netprobe/#")
    start_collector(collector_proc, broker.url, db)
    state = tmp_path / "b"
    prefill(state, "node-batch", 300)
    conf = tmp_path / "agent.toml"
    conf.write_text(batching(state, tcp_listener.address, broker.url, "node-batch", batch_s=60.0))
    done = subprocess.run([sys.executable, "-m", "agent", "spool", "flush", "-c", str(conf), "--timeout", "30"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=env_for_children())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "delivered 300 readings" in done.stdout and db.exactly_once("node-batch") and len(db.rows("node-batch")) == 300
    )
    assert 1 <= len(batch_messages(sub, "node-batch")) <= 2
