"""`netprobe run` against real Mosquitto brokers, with real subscribers checking what arrives."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.agentd import ROOT, agent_toml

pytestmark = pytest.mark.broker

NODE = "test-node-1"
PREFIX = f"netprobe/sekayu/balai-agung/{NODE}/"


def readings(sub, measurement: str = "tcp") -> list[dict]:
    return sub.json_on(f"/{measurement}")


def seqs(sub) -> list[int]:
    return [r["seq"] for r in readings(sub)]


def no_gaps(values: list[int]) -> bool:
    return bool(values) and set(range(1, max(values) + 1)) <= set(values)


def reported(log: str, phrase: str) -> int:
    """How often `phrase` was logged above debug level (the tests run the agent with -v)."""
    return sum(1 for line in log.splitlines() if phrase in line and " DEBUG " not in line)


def statuses(sub) -> list[dict]:
    return sub.json_on("/status")


def spool_status(agent) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "agent", "spool", "status", "--json", "-c", str(agent.config_path)],
        capture_output=True, text=True, cwd=str(ROOT), timeout=20,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_readings_arrive_in_order_on_their_topics_and_the_will_marks_a_killed_node_offline(
    broker, subscriber, agentd, tcp_listener, tmp_path
):
    sub = subscriber(broker, "netprobe/#")
    agent = agentd(agent_toml(tmp_path / "state", tcp=tcp_listener.address, broker=broker.url))
    assert sub.wait_for(lambda m: len(readings(sub)) >= 6, 20), agent.stderr()

    msgs = sub.snapshot()
    assert {t for t, _, _ in msgs} == {PREFIX + "tcp", PREFIX + "status"}
    got = seqs(sub)
    assert got == list(range(1, len(got) + 1))  # in order, no gap, no duplicate
    first = readings(sub)[0]
    assert first["node"] == NODE and first["measurement"] == "tcp" and first["target"] == tcp_listener.address
    assert first["ok"] is True and first["fields"]["received"] == 1
    assert first["site"]["desa"] == "Balai Agung" and isinstance(first["clock_synced"], bool)
    raw = next(p for t, p, _ in msgs if t.endswith("/tcp"))
    assert b": " not in raw and b", " not in raw  # compact JSON
    # MQTT 3.1.1 (p2), persistent session (c0), keepalive 60, client id = node id; QoS 1 publishes.
    log = broker.log_text()
    assert f"as {NODE} (p2, c0, k60)" in log
    assert any(f"Received PUBLISH from {NODE} (d0, q1, r0, m" in ln and f"'{PREFIX}tcp'" in ln for ln in log.splitlines())
    assert f"{NODE} 0 netprobe/ack/{NODE}" in log  # it listens for the collector's acks (QoS 0: retained on connect)
    assert f"Received PUBLISH from {NODE} (d0, q1, r1, " in log  # the retained status

    # A late subscriber gets the retained online status, with the digest of the running config.
    late = subscriber(broker, PREFIX + "status")
    assert late.wait_for(lambda m: len(m) >= 1, 5)
    topic, payload, retained = late.snapshot()[0]
    status = json.loads(payload)
    assert retained and status["state"] == "online" and status["node"] == NODE
    assert status["config"] == hashlib.sha256(agent.config_path.read_bytes()).hexdigest()[:12]
    assert status["version"] and status["dropped"] == 0 and isinstance(status["spool_depth"], int)
    assert isinstance(status["uptime_s"], int) and status["ts"].endswith("Z")

    agent.kill9()
    assert sub.wait_for(lambda m: statuses(sub)[-1]["state"] == "offline", 10)
    assert statuses(sub)[-1] == {"state": "offline", "node": NODE}
    after = subscriber(broker, PREFIX + "status")
    assert after.wait_for(lambda m: len(m) >= 1, 5)
    assert json.loads(after.snapshot()[0][1])["state"] == "offline"  # the will is retained


def test_sighup_keeps_the_session_and_sigterm_flushes_announces_offline_and_exits_within_5s(
    broker, subscriber, agentd, tcp_listener, tmp_path
):
    sub = subscriber(broker, "netprobe/#")
    agent = agentd(agent_toml(tmp_path / "state", tcp=tcp_listener.address, broker=broker.url, interval=0.3))
    assert sub.wait_for(lambda m: len(readings(sub)) >= 3, 20), agent.stderr()

    # SIGHUP with a changed config: the new digest is announced over the same connection.
    agent.config_path.write_text(agent.config_path.read_text() + "# edited\n")
    digest = hashlib.sha256(agent.config_path.read_bytes()).hexdigest()[:12]
    agent.signal(signal.SIGHUP)
    assert sub.wait_for(lambda m: statuses(sub)[-1]["config"] == digest, 5), agent.stderr()
    assert broker.count_log(f"as {NODE} (") == 1  # one connection: the session stayed

    started = time.monotonic()
    code = agent.stop(timeout=10)
    took = time.monotonic() - started
    assert code == 0 and took < 5.0, (code, took)
    assert sub.wait_for(lambda m: statuses(sub)[-1]["state"] == "offline", 5)
    assert spool_status(agent)["waiting"] == 0  # everything taken before the stop was sent (no collector confirms it here)
    assert no_gaps(seqs(sub)) and max(seqs(sub)) == spool_status(agent)["last_seq"][NODE]


def test_outage_of_30s_loses_no_reading_and_leaves_no_seq_gap(mosquitto, subscriber, agentd, tcp_listener, tmp_path):
    broker = mosquitto(persistence=True)
    sub = subscriber(broker, "netprobe/#", persistent=True, client_id="outage-collector")
    agent = agentd(agent_toml(tmp_path / "state", tcp=tcp_listener.address, broker=broker.url))
    assert sub.wait_for(lambda m: len(readings(sub)) >= 3, 20), agent.stderr()

    broker.stop()
    down_at = time.time()
    time.sleep(30)
    during = spool_status(agent)
    broker.start()
    up_at = time.time()
    assert during["rows"] >= 40  # the agent kept measuring into the spool (2 a second)
    last_during = during["last_seq"][NODE]

    assert sub.wait_for(lambda m: seqs(sub) and max(seqs(sub)) >= last_during + 3 and no_gaps(seqs(sub)), 25), (
        sorted(set(range(1, last_during)) - set(seqs(sub)))[:20],
        agent.stderr()[-2000:],
    )
    taken_during = [r for r in readings(sub) if down_at + 1 < iso_epoch(r["ts"]) < up_at - 1]
    assert len(taken_during) >= 40  # delivered late, with their original timestamps
    first_seen: list[int] = []
    for s in seqs(sub):
        if s not in first_seen:
            first_seen.append(s)
    assert first_seen == sorted(first_seen)  # replay keeps the original order
    log = agent.stderr()
    assert (
        1 <= reported(log, "cannot reach broker") + reported(log, "lost the connection") <= 2
    )  # reported, not spammed


def iso_epoch(ts: str) -> float:
    import datetime as dt

    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


def prefill_spool(state_dir: Path, n: int) -> list[dict]:
    """n real Readings in the agent's spool, as a long outage would leave them."""
    from agent.publish.spool import Spool, spool_path
    from agent.reading import topics
    from agent.reading.model import Identity, Outcome, make_reading

    spool = Spool(spool_path(str(state_dir)))
    site = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
    ident = Identity(NODE, site)
    made = []
    for i in range(n):
        outcome = Outcome(ok=True, fields={"connect_avg_ms": 0.1 * i})
        r = make_reading(
            ident, "tcp", "127.0.0.1:9", outcome, time.time() - 3600 + i, 100.0 + i, 0.001, spool.next_seq(NODE)
        )
        spool.append(r, topics.topic(topics.DEFAULT_TOPIC, NODE, site, "tcp"))
        made.append(r.to_dict())
    spool.close()
    return made


def test_kill_9_during_replay_then_restart_leaves_no_gap_and_duplicates_keep_their_id(
    broker, subscriber, agentd, tcp_listener, tmp_path
):
    state = tmp_path / "state"
    backlog = prefill_spool(state, 300)
    sub = subscriber(broker, "netprobe/#")
    cfg = agent_toml(state, tcp=tcp_listener.address, broker=broker.url, mqtt={"replay_rate": 100.0})
    agent = agentd(cfg)
    assert sub.wait_for(lambda m: len(readings(sub)) >= 80, 20), agent.stderr()
    # Freeze the broker so publishes are in flight, unacknowledged, when the agent dies; the thawed
    # broker still delivers them, and the restarted agent must send them again: real duplicates.
    broker.proc.send_signal(signal.SIGSTOP)
    time.sleep(0.4)
    agent.kill9()
    broker.proc.send_signal(signal.SIGCONT)
    left = spool_status(agent)["waiting"]
    assert left > 50  # killed in the middle of the replay
    agent.start()
    assert sub.wait_for(lambda m: no_gaps(seqs(sub)) and max(seqs(sub)) >= 300 + 5, 25), agent.stderr()[-2000:]

    by_seq: dict[int, set[str]] = {}
    for r in readings(sub):
        by_seq.setdefault(r["seq"], set()).add(r["id"])
    assert all(len(ids) == 1 for ids in by_seq.values())  # a duplicate is the same reading, same id
    assert len(readings(sub)) > len(by_seq)  # there were duplicates, and they kept their id
    for original in backlog:  # replayed unchanged: original timestamp and id
        delivered = next(r for r in readings(sub) if r["seq"] == original["seq"])
        assert delivered == original
    live = [r for r in readings(sub) if r["seq"] > 300]
    assert live and live[0]["target"] == tcp_listener.address  # the counter survived both restarts


def test_wrong_password_is_reported_once_and_retried_with_backoff(
    mosquitto, subscriber, agentd, tcp_listener, tmp_path
):
    broker = mosquitto(users={NODE: "right-password", "reader": "r"})
    sub = subscriber(broker, "netprobe/#", username="reader", password="r")
    mqtt = {"username": NODE, "reconnect_min": 0.3, "reconnect_max": 2.0}
    before = broker.count_log("New connection from")
    agent = agentd(
        agent_toml(tmp_path / "s1", tcp=tcp_listener.address, broker=broker.url, mqtt=mqtt),
        env={"NETPROBE_MQTT_PASSWORD": "wrong-password"},
    )
    time.sleep(5.0)
    attempts = broker.count_log("New connection from") - before
    log = agent.stderr()
    agent.kill9()
    # Delays 0.15-0.3, 0.3-0.6, 0.6-1.2, 1-2, 1-2 s: 5 to 7 attempts in 5 s, where a tight loop makes hundreds.
    assert 4 <= attempts <= 8, (attempts, broker.log_text()[-1500:])
    assert reported(log, "refused the connection") == 1, log
    assert "not authori" in log.lower() or "bad user name or password" in log.lower()
    assert "wrong-password" not in log and "wrong-password" not in broker.log_text()
    assert readings(sub) == []

    # The same node with the right password, read from a file, gets through.
    secret = tmp_path / "mqtt-password"
    secret.write_text("right-password\n")
    mqtt["password_file"] = str(secret)
    agentd(agent_toml(tmp_path / "s2", tcp=tcp_listener.address, broker=broker.url, mqtt=mqtt))
    assert sub.wait_for(lambda m: len(readings(sub)) >= 2, 15)


def test_tls_with_the_wrong_ca_is_refused_and_mtls_with_the_right_one_delivers(
    mosquitto, subscriber, agentd, tcp_listener, test_ca, tmp_path
):
    broker = mosquitto(mtls=True)
    client_tls = {"cert_file": test_ca.client_cert, "key_file": test_ca.client_key}
    sub = subscriber(broker, "netprobe/#", ca_file=test_ca.ca_file, **client_tls)
    wrong = agentd(
        agent_toml(
            tmp_path / "s1", tcp=tcp_listener.address, broker=broker.url,
            mqtt={"ca_file": test_ca.other_ca_file, **client_tls},
        )
    )  # fmt: skip
    assert wrong.wait_stderr("TLS handshake", 10)
    time.sleep(2.0)  # several retries
    log = wrong.stderr()
    wrong.kill9()
    assert reported(log, "TLS handshake") == 1 and "certificate verify failed" in log, log
    assert readings(sub) == []

    right = agentd(
        agent_toml(
            tmp_path / "s2", tcp=tcp_listener.address, broker=broker.url,
            mqtt={"ca_file": test_ca.ca_file, **client_tls},
        )
    )  # fmt: skip
    assert sub.wait_for(lambda m: len(readings(sub)) >= 2, 15), right.stderr()
    assert "TLS handshake" not in right.stderr()


def test_tls_to_a_broker_whose_certificate_names_another_host_is_refused(
    mosquitto, agentd, tcp_listener, test_ca, tmp_path
):
    broker = mosquitto(wrong_name=True)
    agent = agentd(
        agent_toml(tmp_path / "s", tcp=tcp_listener.address, broker=broker.url, mqtt={"ca_file": test_ca.ca_file})
    )
    assert agent.wait_stderr("TLS handshake", 10)
    time.sleep(1.0)
    log = agent.stderr()
    assert reported(log, "TLS handshake") == 1 and "certificate is not valid for '127.0.0.1'" in log, log
    assert "New client connected" not in broker.log_text()


def test_a_publish_denied_by_the_acl_is_reported_and_kept_in_the_spool(
    mosquitto, subscriber, agentd, tcp_listener, tmp_path
):
    acl = f"user {NODE}\ntopic write {PREFIX}status\ntopic write {PREFIX}icmp\n\nuser reader\ntopic read netprobe/#\n"
    broker = mosquitto(users={NODE: "pw", "reader": "r"}, acl=acl)
    sub = subscriber(broker, "netprobe/#", username="reader", password="r")
    mqtt = {"username": NODE, "protocol": "5"}
    agent = agentd(
        agent_toml(tmp_path / "s", tcp=tcp_listener.address, broker=broker.url, mqtt=mqtt),
        env={"NETPROBE_MQTT_PASSWORD": "pw"},
    )
    assert agent.wait_stderr("denied publishing", 15), agent.stderr()
    time.sleep(1.5)
    log = agent.stderr()
    assert reported(log, "denied publishing") == 1 and f"'{PREFIX}tcp'" in log and "not authorized" in log
    assert sub.wait_for(lambda m: statuses(sub) and statuses(sub)[-1]["state"] == "online", 5)  # allowed topic
    assert readings(sub) == []
    assert spool_status(agent)["rows"] >= 3  # not lost: kept for when the ACL is fixed
    assert f"as {NODE} (p5, c0, k60, u'{NODE}')" in broker.log_text()  # MQTT 5, session kept (clean_start 0)
    agent.signal(signal.SIGTERM)


def test_a_full_spool_drops_the_oldest_and_the_status_counts_them(
    mosquitto, subscriber, agentd, tcp_listener, tmp_path
):
    state = tmp_path / "state"
    prefill_spool(state, 150)
    broker = mosquitto(persistence=True)
    sub = subscriber(broker, "netprobe/#", persistent=True, client_id="full-spool-collector")
    broker.stop()  # the uplink is down while the spool overflows
    cfg = agent_toml(state, tcp=tcp_listener.address, broker=broker.url, extra="[spool]\nmax_rows = 100\n")
    agent = agentd(cfg)
    assert agent.wait_stderr("spool full", 10), agent.stderr()
    broker.start()
    assert sub.wait_for(lambda m: statuses(sub) and len(readings(sub)) >= 100, 15), agent.stderr()
    status = statuses(sub)[0]
    assert status["state"] == "online" and status["dropped"] >= 51 and status["spool_depth"] == 100
    got = seqs(sub)
    # The oldest went; what is left arrives in order with no gap inside it.
    assert got[0] == status["dropped"] + 1 and got == list(range(got[0], got[0] + len(got)))
    assert reported(agent.stderr(), "spool full") == 1


def test_replay_is_paced_by_replay_rate(broker, subscriber, tmp_path):
    from agent.config import parse_config
    from agent.publish.mqtt import Publisher, PublisherSettings
    from agent.publish.spool import spool_path

    took = {}
    for rate in (0.0, 25.0):  # slow enough that a loaded machine's unpaced replay stays far below it
        state = tmp_path / f"state-{rate:g}"
        prefill_spool(state, 100)
        # batch = false: replay_rate counts publishes, and one batch would carry all 100
        mqtt = parse_config(
            {"mqtt": {"broker": broker.url, "replay_rate": rate, "confirm": "broker", "batch": False}}
        ).mqtt
        settings = PublisherSettings(mqtt=mqtt, node=NODE, site={}, announce=False, client_id=f"pace-{rate:g}")
        started = time.monotonic()
        assert Publisher(settings, spool_path(str(state)), 1000, 10**8).drain(20)
        took[rate] = time.monotonic() - started
    assert took[25.0] >= 3.4, took  # 100 readings at 25/s: about 4 s
    assert took[0.0] < took[25.0] / 2, took
