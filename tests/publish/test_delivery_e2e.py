"""Delivery end to end (docs/delivery.md): real Mosquitto, real `netprobe run` agents, real `netprobe collect`.

"Delivered" means stored in the collector's database; a Reading may leave a node's spool only once
the collector's ack covers it. Each scenario is one of the ways issue 15 found readings lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.agentd import agent_toml
from tests.fixtures.collector import wait_until

pytestmark = pytest.mark.broker

NODE = "test-node-1"
DEBIAN_PYTHON = "/usr/bin/python3"
FAST_ACKS = {"max_delay_s": 0.3, "min_gap_s": 0.2}
TIMEOUT_S = 1.0  # mqtt.confirm_timeout in these tests: a second, not the default ten minutes


def debian_paho_ready() -> bool:
    check = "import paho.mqtt, psutil, icmplib, dns.resolver; assert paho.mqtt.__version__.startswith('1.')"
    try:
        return subprocess.run([DEBIAN_PYTHON, "-c", check], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_debian = pytest.mark.skipif(not debian_paho_ready(), reason="needs Debian's python3 with paho-mqtt 1.6")


def config(state: Path, tcp: str, url: str, node: str = NODE, interval: float = 0.5, **mqtt: Any) -> str:
    return agent_toml(state, tcp=tcp, broker=url, node=node, interval=interval,
                      mqtt={"confirm_timeout": TIMEOUT_S, **mqtt})  # fmt: skip


def prefill(state: Path, n: int, node: str = NODE) -> None:
    """n real Readings in the node's spool, as an outage leaves them (the test of publishing's helper)."""
    from tests.daemon.test_mqtt import prefill_spool

    if node == NODE:
        prefill_spool(state, n)
        return
    from agent.publish.spool import Spool, spool_path
    from agent.reading import topics
    from agent.reading.model import Identity, Outcome, make_reading

    site = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
    spool = Spool(spool_path(str(state)))
    for i in range(n):
        r = make_reading(Identity(node, site), "tcp", "127.0.0.1:9", Outcome(True, {"connect_avg_ms": 0.1 * i}),
                         time.time() - 3600 + i, 100.0 + i, 0.001, spool.next_seq(node))  # fmt: skip
        spool.append(r, topics.topic(topics.DEFAULT_TOPIC, node, site, "tcp"))
    spool.close()


class Db:
    """The collector's SQLite database, as the test sees it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: Any = None

    def rows(self, node: str = NODE) -> list[tuple[int, str]]:
        if self.store is None:
            if not self.path.exists():
                return []
            self.store = open_store(path=str(self.path))
        return [(int(s), str(i)) for s, i in self.store.query("SELECT seq, id FROM readings WHERE node = ?", (node,))]

    def seqs(self, node: str = NODE) -> list[int]:
        return sorted(s for s, _ in self.rows(node))

    def holds(self, upto: int, node: str = NODE) -> bool:
        return set(range(1, upto + 1)) <= set(self.seqs(node))

    def exactly_once(self, node: str = NODE) -> bool:
        rows = self.rows(node)
        seqs = [s for s, _ in rows]
        return bool(seqs) and len(seqs) == len(set(seqs)) == len({i for _, i in rows}) == max(seqs)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def all_confirmed(agent: Any, db: Db, node: str = NODE, slack: int = 0) -> bool:
    """Every seq the agent issued up to its newest unconfirmed ones is stored, and its spool holds only those."""
    counts = agent.spool()
    last = counts.last_seq.get(node, 0)
    return last > 0 and counts.rows <= slack and db.holds(last - counts.rows, node)


def resent(agent: Any) -> int:
    """Readings the agent has sent again, from its log lines "re-sent N reading(s)"."""
    return sum(
        int(line.split("re-sent ", 1)[1].split()[0]) for line in agent.stderr().splitlines() if "re-sent " in line
    )


def unconfirmed_logged(agent: Any) -> bool:
    return "not confirmed by the collector" in agent.stderr()


@pytest.fixture
def db(tmp_path: Path) -> Any:
    d = Db(tmp_path / "collector.db")
    yield d
    d.close()


def collector(collector_proc: Any, url: str, db: Db, **broker: Any) -> Any:
    col = collector_proc(url, {"path": str(db.path)}, broker={"client_id": "collector-1", **broker}, acks=FAST_ACKS)
    assert col.wait_log("subscribed to"), col.log()
    return col


# -- the basic promise, on both paho versions and both protocols --------------------------------------
@pytest.mark.parametrize(
    ("python", "protocol"),
    [("venv", "3.1.1"), pytest.param("debian", "5", marks=needs_debian)],
)
def test_a_reading_leaves_the_spool_only_when_the_collector_has_stored_it(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db, python: str,
    protocol: str,
) -> None:  # fmt: skip
    import sys

    broker = mosquitto()
    cfg = config(tmp_path / "state", tcp_listener.address, broker.url, protocol=protocol)
    agent = agentd(cfg, python=DEBIAN_PYTHON if python == "debian" else sys.executable)
    # No collector yet: the broker takes every reading, and every one stays in the spool, sent.
    assert wait_until(lambda: agent.spool().sent >= 4, 15), agent.stderr()
    assert agent.spool().confirmed == 0 and agent.spool().rows >= 4
    col = collector(collector_proc, broker.url, db)
    # Sent before the collector subscribed, so the broker dropped them: the probe and the re-sends bring them.
    assert wait_until(lambda: all_confirmed(agent, db, slack=2) and agent.spool().confirmed >= 4, 20), (
        agent.spool(), db.seqs(), agent.stderr()[-3000:], col.log()[-2000:],
    )  # fmt: skip
    assert db.exactly_once() and agent.spool().dropped == 0
    assert "Traceback" not in agent.stderr()


# -- issue 15's table ----------------------------------------------------------------------------------
@pytest.mark.parametrize("share_group", ["", "collectors"])
def test_broker_restart_with_the_agent_replaying_before_the_collector_reconnects_loses_nothing(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db, share_group: str
) -> None:
    """Mosquitto 2.0.11 restores a persistent session across a clean restart, but not its shared
    subscription: with the default (plain) subscription the broker keeps the replay for the
    collector; with `share_group` it drops it, and the agent's re-sends bring it."""
    broker = mosquitto(persistence=True)
    col = collector(collector_proc, broker.url, db, share_group=share_group)
    assert col.stop() == 0  # its session (and subscription) stays with the broker
    broker.stop()
    state = tmp_path / "state"
    prefill(state, 16)  # what the node spooled while the broker was down
    # Plain: the broker keeps the replay, so a long timeout shows nothing is sent twice. Shared: a short one.
    timeout = 1.0 if share_group else 10.0
    agent = agentd(config(state, tcp_listener.address, broker.url, interval=0.3, confirm_timeout=timeout))
    broker.start()
    assert wait_until(lambda: agent.spool().sent >= 16 and agent.spool().waiting == 0, 15), agent.stderr()[-2000:]
    time.sleep(1.0)  # the agent has replayed to the broker a second before the collector comes back
    col.restart()
    assert wait_until(lambda: db.holds(16) and all_confirmed(agent, db, slack=3), 25), (
        sorted(set(range(1, 17)) - set(db.seqs())), agent.spool(), agent.stderr()[-2000:],
    )  # fmt: skip
    assert db.exactly_once() and agent.spool().dropped == 0
    if share_group:  # the broker dropped the replay: the node's spool had it (the log sums re-sends per timeout)
        assert wait_until(lambda: resent(agent) >= 16, 5), agent.stderr()[-2000:]
    else:  # the broker kept it all for the collector: nothing was sent twice
        assert resent(agent) == 0


def test_broker_kill_9_while_the_collector_is_away_loses_nothing(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db
) -> None:
    broker = mosquitto(persistence=True, extra="autosave_interval 60\n")  # as packaging/mosquitto ships it
    col = collector(collector_proc, broker.url, db)
    agent = agentd(config(tmp_path / "state", tcp_listener.address, broker.url, interval=0.15))
    assert wait_until(lambda: agent.spool().confirmed >= 3, 15), agent.stderr()[-2000:]
    assert col.stop() == 0  # away: the broker queues for its persistent session
    before = agent.spool().last_seq[NODE]
    assert wait_until(lambda: agent.spool().last_seq[NODE] >= before + 10 and agent.spool().waiting == 0, 15)
    queued_to = agent.spool().last_seq[NODE]
    broker.kill()  # kill -9: whatever was queued since the last autosave is gone
    broker.start()
    col.restart()
    assert wait_until(lambda: db.holds(queued_to) and all_confirmed(agent, db, slack=3), 25), (
        sorted(set(range(1, queued_to + 1)) - set(db.seqs())), agent.spool(), agent.stderr()[-2000:],
    )  # fmt: skip
    assert db.exactly_once() and agent.spool().dropped == 0
    assert resent(agent) >= 1  # what the crash lost came from the node's spool


def test_collector_killed_between_commit_and_ack_loses_nothing_and_stores_no_duplicate(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db
) -> None:
    broker = mosquitto()
    state = tmp_path / "state"
    prefill(state, 40)
    crashy = collector_proc(broker.url, {"path": str(db.path)}, broker={"client_id": "collector-crashy"},
                            acks=FAST_ACKS, env={"NETPROBE_TEST_EXIT_AFTER_COMMIT": "1"})  # fmt: skip
    assert crashy.wait_log("subscribed to"), crashy.log()
    agent = agentd(config(state, tcp_listener.address, broker.url, interval=3600.0))  # quiet after one reading
    assert wait_until(lambda: crashy.proc.poll() is not None, 15), crashy.log()
    assert crashy.proc.returncode == 70 and "exiting after a commit" in crashy.log()
    committed = db.seqs()
    assert committed and agent.spool().confirmed == 0  # stored, never acknowledged
    # Another collector (its own session: the dead one's unacked queue stays with the broker), so
    # only the agent's re-send, after confirm_timeout, can bring the acknowledgement.
    col = collector(collector_proc, broker.url, db, client_id="collector-2")
    assert wait_until(lambda: all_confirmed(agent, db) and agent.spool().confirmed >= 41, 20), (
        agent.spool(), agent.stderr()[-2000:], col.log()[-2000:],
    )  # fmt: skip
    assert db.exactly_once() and len(db.seqs()) == 41
    assert resent(agent) >= 1
    assert col.stop() == 0
    duplicates = int(col.log().rsplit("duplicates ", 1)[1].split(",")[0])
    assert duplicates >= 1  # the re-sent copy of a stored reading, dropped by its id


def test_agent_kill_9_during_replay_loses_nothing_and_stores_no_duplicate(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db
) -> None:
    broker = mosquitto()
    state = tmp_path / "state"
    prefill(state, 300)
    col = collector(collector_proc, broker.url, db)
    agent = agentd(config(state, tcp_listener.address, broker.url, interval=30.0, replay_rate=150.0))
    assert wait_until(lambda: len(db.seqs()) >= 60, 15), (agent.stderr()[-2000:], col.log())
    agent.kill9()
    left = agent.spool()
    assert left.rows > 100 and left.confirmed > 0  # killed in the middle of the replay
    agent.start()
    assert wait_until(lambda: all_confirmed(agent, db) and agent.spool().last_seq[NODE] >= 302, 25), (
        agent.spool(), agent.stderr()[-2000:],
    )  # fmt: skip
    assert db.exactly_once() and len(db.seqs()) == agent.spool().last_seq[NODE]
    assert col.running()


ACL_DENY = "user {node}\ntopic write netprobe/+/+/{node}/status\ntopic read netprobe/ack/{node}\n"
ACL_ALLOW = "user {node}\ntopic write netprobe/+/+/{node}/#\ntopic read netprobe/ack/{node}\n"
ACL_COLLECTOR = "\nuser collector-1\ntopic read netprobe/#\ntopic write netprobe/ack/+\n"


@pytest.mark.parametrize(
    ("python", "protocol"),
    [("venv", "5"), pytest.param("debian", "3.1.1", marks=needs_debian)],
)
def test_acl_denial_keeps_the_readings_reports_it_within_one_timeout_and_fixing_the_acl_delivers_them(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db, python: str,
    protocol: str, subscriber: Any,
) -> None:  # fmt: skip
    """MQTT 5 on paho 2 hears the denial (PUBACK 0x87); MQTT 3.1.1, and paho 1.6 on either, see a
    plain PUBACK for a reading the broker dropped. All of them notice that no ack comes."""
    import sys

    broker = mosquitto(users={NODE: "pw", "collector-1": "c"}, acl=ACL_DENY.format(node=NODE) + ACL_COLLECTOR)
    pw = tmp_path / "c.pw"
    pw.write_text("c\n")
    col = collector(collector_proc, broker.url, db, username="collector-1", password_file=str(pw))
    statuses = subscriber(broker, f"netprobe/+/+/{NODE}/status", username="collector-1", password="c")
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # the STATUS= lines, as systemd gets them
    name = f"netprobe-delivery-{os.getpid()}-{time.monotonic_ns()}"
    systemd.bind("\0" + name)
    systemd.settimeout(0.1)
    agent = agentd(
        config(tmp_path / "state", tcp_listener.address, broker.url, interval=0.2, username=NODE, protocol=protocol),
        env={"NETPROBE_MQTT_PASSWORD": "pw", "NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "1000000"},
        python=DEBIAN_PYTHON if python == "debian" else sys.executable,
    )  # fmt: skip
    assert wait_until(lambda: agent.spool().sent >= 1, 15), agent.stderr()
    first_sent = time.monotonic()
    assert wait_until(lambda: unconfirmed_logged(agent), TIMEOUT_S + 3), agent.stderr()
    assert time.monotonic() - first_sent <= TIMEOUT_S + 2.5  # within one timeout (and one check)
    assert ("denied publishing" in agent.stderr()) == (python == "venv" and protocol == "5")
    counts = agent.spool()
    assert counts.rows >= 3 and counts.confirmed == 0 and db.seqs() == []  # kept, none stored
    assert agent.stderr().count("not confirmed by the collector") == 1  # said once
    status = subprocess.run(
        [sys.executable, "-m", "agent", "spool", "status", "--json", "-c", str(agent.config_path)],
        capture_output=True, text=True, timeout=20, env={**os.environ, "PYTHONPATH": str(agent.env["PYTHONPATH"])},
    )  # fmt: skip
    report = json.loads(status.stdout)
    assert report["delivery"] == "not_confirmed" and report["unconfirmed_s"] >= TIMEOUT_S and report["sent"] >= 1
    assert statuses.wait_for(lambda m: "not_confirmed" in [json.loads(p).get("delivery") for _, p, _ in m], 5)

    def status_lines() -> list[str]:
        lines = []
        with contextlib.suppress(socket.timeout):
            while True:
                lines += systemd.recv(4096).decode().splitlines()
        return lines

    seen: list[str] = []
    assert wait_until(lambda: any("NOT CONFIRMED for" in ln for ln in seen.extend(status_lines()) or seen), 5), seen
    systemd.close()

    (broker.dir / "acl").write_text(ACL_ALLOW.format(node=NODE) + ACL_COLLECTOR)
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGHUP)  # Mosquitto re-reads its ACL file
    assert wait_until(lambda: all_confirmed(agent, db, slack=2) and agent.spool().confirmed >= counts.rows, 20), (
        agent.spool(), db.seqs(), agent.stderr()[-2000:],
    )  # fmt: skip
    assert db.exactly_once()
    assert wait_until(lambda: "readings are confirmed again" in agent.stderr(), 5)
    assert col.running()


def test_collector_away_longer_than_its_session_expiry_gets_what_the_broker_dropped_from_the_spool(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db
) -> None:
    broker = mosquitto()
    col = collector(collector_proc, broker.url, db, session_expiry_s=1)
    agent = agentd(config(tmp_path / "state", tcp_listener.address, broker.url, interval=0.15))
    assert wait_until(lambda: agent.spool().confirmed >= 3, 15), agent.stderr()[-2000:]
    assert col.stop() == 0
    before = agent.spool().last_seq[NODE]
    assert wait_until(lambda: agent.spool().last_seq[NODE] >= before + 8, 10)
    assert wait_until(lambda: "Expiring client collector-1" in broker.log_text(), 10)  # queue and all
    away_to = agent.spool().last_seq[NODE]
    col.restart()
    assert wait_until(lambda: db.holds(away_to) and all_confirmed(agent, db, slack=3), 25), (
        sorted(set(range(1, away_to + 1)) - set(db.seqs())), agent.spool(), agent.stderr()[-2000:],
    )  # fmt: skip
    assert db.exactly_once() and resent(agent) >= 1


def test_a_seeded_fault_schedule_over_3_nodes_replaying_hundreds_stores_every_seq_exactly_once(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db
) -> None:
    """Broker and collector restarted (cleanly or by kill -9) at random moments of the replay."""
    rng = random.Random(15)
    broker = mosquitto(persistence=True)
    col = collector(collector_proc, broker.url, db)
    nodes = [f"muba-node-{i}" for i in range(3)]
    agents = []
    for node in nodes:
        state = tmp_path / node
        prefill(state, 300, node)
        agents.append(agentd(config(state, tcp_listener.address, broker.url, node=node, interval=30.0,
                                    replay_rate=200.0)))  # fmt: skip
    schedule = sorted((rng.uniform(0.3, 4.0), rng.choice(["broker", "collector"]), rng.random() < 0.5)
                      for _ in range(5))  # fmt: skip
    started = time.monotonic()
    for at, what, hard in schedule:
        time.sleep(max(0.0, started + at - time.monotonic()))
        if what == "broker":
            broker.kill() if hard else broker.stop()
            broker.start()
        else:
            col.kill() if hard else col.stop()
            col.restart()
    for node, agent in zip(nodes, agents):
        assert wait_until(lambda a=agent, n=node: all_confirmed(a, db, n) and a.spool().last_seq[n] >= 301, 45), (
            node, agent.spool(), sorted(set(range(1, 302)) - set(db.seqs(node)))[:20], agent.stderr()[-1500:],
        )  # fmt: skip
        assert db.exactly_once(node) and agent.spool().dropped == 0
    print("fault schedule:", [(round(at, 2), what, "kill -9" if hard else "restart") for at, what, hard in schedule])


@pytest.mark.parametrize("loss", ["spool_damaged", "state_dir_wiped"])
def test_a_lost_spool_never_lets_the_old_retained_ack_confirm_new_readings(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path, db: Db, loss: str,
    subscriber: Any,
) -> None:  # fmt: skip
    """The broker keeps the last ack retained: {"upto":11}. Were the new spool to start again at
    seq 1, that ack would confirm the first eleven readings taken since, which the collector never
    saw. The high-water mark (seq-hwm.json) continues the sequence above it; with the whole state
    directory gone, the agent hears the retained ack before it publishes, and numbers its
    readings above it. More than eleven are taken meanwhile, so only these can save them."""
    import shutil

    broker = mosquitto(persistence=True)
    col = collector(collector_proc, broker.url, db)
    state = tmp_path / "state"
    prefill(state, 10)
    agent = agentd(config(state, tcp_listener.address, broker.url, interval=3600.0))  # one live reading
    assert wait_until(lambda: agent.spool().confirmed == 11 and agent.spool().rows == 0, 15), agent.stderr()[-2000:]
    agent.kill9()
    assert col.stop() == 0  # away from now on: nothing more can be stored
    acks = subscriber(broker, f"netprobe/ack/{NODE}")
    assert acks.wait_for(lambda m: bool(m), 5) and json.loads(acks.snapshot()[-1][1]) == {"upto": 11}
    broker.stop()

    spool = state / "spool.sqlite3"
    if loss == "spool_damaged":  # moved aside by the agent, like a deleted one (test_delivery_spool.py)
        spool.write_bytes(b"a power cut ate this" * 200)
    else:
        shutil.rmtree(state)
    for suffix in ("-wal", "-shm"):
        Path(f"{spool}{suffix}").unlink(missing_ok=True)
    agent.config_path.write_text(config(state, tcp_listener.address, broker.url, interval=0.1))
    agent.start()
    assert wait_until(lambda: agent.spool().rows >= 15, 15), agent.stderr()[-2000:]  # more than the ack covers
    broker.start()
    assert wait_until(lambda: agent.spool().sent >= 15, 15), agent.stderr()[-2000:]
    time.sleep(1.0)  # the retained ack has long arrived: it must have confirmed nothing
    counts = agent.spool()
    assert counts.confirmed == 0 and counts.rows >= 15, counts
    if loss == "state_dir_wiped":
        assert "left from an earlier install" in agent.stderr()

    col.restart()
    assert wait_until(lambda: agent.spool().confirmed >= 15 and agent.spool().rows <= 3, 15), agent.stderr()[-2000:]
    seqs = db.seqs()
    assert len(seqs) == len(set(seqs)) and seqs[:11] == list(range(1, 12))  # no seq stored twice
    assert min(seqs[11:]) > 11 and len(seqs) >= 11 + 15
