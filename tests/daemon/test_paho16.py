"""The daemon on Debian 12's own packages (paho-mqtt 1.6.1, psutil 5.9.4, icmplib 2.1.1, dnspython 2.3.0).

The venv has paho 2.x; Raspberry Pi OS and Debian 12 ship 1.6.1, whose callbacks differ. These run
`netprobe run` under /usr/bin/python3 with the distribution's modules against a real Mosquitto.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.daemon.test_mqtt import NODE, PREFIX, readings, reported, seqs, statuses
from tests.fixtures.agentd import agent_toml

DEBIAN_PYTHON = "/usr/bin/python3"
CHECK = "import paho.mqtt, psutil, icmplib, dns.resolver, tomllib; assert paho.mqtt.__version__.startswith('1.')"


def debian_python_ready() -> bool:
    try:
        return subprocess.run([DEBIAN_PYTHON, "-c", CHECK], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        not debian_python_ready(),
        reason="needs Debian 12's python3 with python3-paho-mqtt 1.6 (+ psutil, icmplib, dnspython) "
        "(tools/install-system-deps)",
    ),
]


def test_on_paho_1_6_readings_arrive_in_order_with_retained_status_and_the_will(
    broker, subscriber, agentd, tcp_listener, tmp_path
):
    sub = subscriber(broker, "netprobe/#")
    agent = agentd(agent_toml(tmp_path / "s", tcp=tcp_listener.address, broker=broker.url), python=DEBIAN_PYTHON)
    assert sub.wait_for(lambda m: len(readings(sub)) >= 4, 20), agent.stderr()
    got = seqs(sub)
    assert got == list(range(1, len(got) + 1))
    assert {t for t, _, _ in sub.snapshot()} == {PREFIX + "tcp", PREFIX + "status"}
    assert statuses(sub)[0]["state"] == "online"
    agent.kill9()
    assert sub.wait_for(lambda m: statuses(sub)[-1] == {"state": "offline", "node": NODE}, 10)


def test_on_paho_1_6_a_wrong_password_is_reported_once_then_the_right_one_delivers(
    mosquitto, subscriber, agentd, tcp_listener, tmp_path
):
    broker = mosquitto(users={NODE: "right", "reader": "r"})
    sub = subscriber(broker, "netprobe/#", username="reader", password="r")
    mqtt = {"username": NODE, "reconnect_min": 0.3, "reconnect_max": 1.0}
    cfg = agent_toml(tmp_path / "s", tcp=tcp_listener.address, broker=broker.url, mqtt=mqtt)
    wrong = agentd(cfg, env={"NETPROBE_MQTT_PASSWORD": "wrong"}, python=DEBIAN_PYTHON)
    assert wrong.wait_stderr("refused the connection", 10), wrong.stderr()
    time.sleep(2.0)
    log = wrong.stderr()
    wrong.kill9()
    assert reported(log, "refused the connection") == 1 and "not authorised" in log.lower(), log
    right = agentd(cfg, env={"NETPROBE_MQTT_PASSWORD": "right"}, python=DEBIAN_PYTHON)
    assert sub.wait_for(lambda m: len(readings(sub)) >= 2, 15), right.stderr()
    assert json.loads(sub.snapshot()[-1][1])["node"] == NODE


def test_on_paho_1_6_mtls_delivers_and_a_wrong_ca_is_refused(
    mosquitto, subscriber, agentd, tcp_listener, test_ca, tmp_path
):
    broker = mosquitto(mtls=True)
    client_tls = {"cert_file": test_ca.client_cert, "key_file": test_ca.client_key}
    sub = subscriber(broker, "netprobe/#", ca_file=test_ca.ca_file, **client_tls)
    wrong_cfg = agent_toml(tmp_path / "s1", tcp=tcp_listener.address, broker=broker.url,
                           mqtt={"ca_file": test_ca.other_ca_file, **client_tls})  # fmt: skip
    wrong = agentd(wrong_cfg, python=DEBIAN_PYTHON)
    assert wrong.wait_stderr("TLS handshake", 10), wrong.stderr()
    wrong.kill9()
    assert "certificate verify failed" in wrong.stderr() and readings(sub) == []
    right_cfg = agent_toml(tmp_path / "s2", tcp=tcp_listener.address, broker=broker.url,
                           mqtt={"ca_file": test_ca.ca_file, **client_tls})  # fmt: skip
    right = agentd(right_cfg, python=DEBIAN_PYTHON)
    assert sub.wait_for(lambda m: len(readings(sub)) >= 2, 15), right.stderr()
