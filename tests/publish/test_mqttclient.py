"""The paho adapter against a real Mosquitto, on paho 2.x (the venv) and 1.6.1 (Debian's python3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.net.mqttclient import BrokerUrl

ROOT = Path(__file__).resolve().parents[2]

# Runs in a separate interpreter: connect, publish QoS 1 retained, wait for PUBACK, subscribe, get it back.
ROUND_TRIP = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
import paho.mqtt
from agent.net.mqttclient import BrokerUrl, ConnectOptions, MqttClient
events = []
c = MqttClient(ConnectOptions(url=BrokerUrl.parse(sys.argv[1]), client_id="rt-" + paho.mqtt.__version__ + sys.argv[2], protocol=sys.argv[2]))
c.on_connect = lambda ok, reason, sp: events.append(("connect", ok))
c.on_publish = lambda mid, code: events.append(("puback", mid))
c.on_subscribe = lambda mid, codes: events.append(("suback", codes))
c.on_message = lambda t, p, q, r: events.append(("message", t, p, r))
c.connect()
deadline = time.time() + 5
mid = None
subscribed = False
while time.time() < deadline and not any(e[0] == "message" for e in events):
    c.loop(0.1)
    if ("connect", True) in events and mid is None:
        mid = c.publish("rt/" + sys.argv[2], b"hello", qos=1, retain=True)
    if ("puback", mid) in events and not subscribed:  # retained by now: it must come back flagged so
        subscribed = c.subscribe("rt/#", 1) > 0
print(paho.mqtt.__version__, sorted({e[0] for e in events}), [e for e in events if e[0] in ("message", "suback")])
"""


def interpreters() -> list[str]:
    found = [sys.executable]
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import paho.mqtt; print(paho.mqtt.__version__)"], capture_output=True, text=True
    )
    if probe.returncode == 0 and probe.stdout.startswith("1."):
        found.append("/usr/bin/python3")
    return found


@pytest.mark.broker
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_adapter_round_trip_on_paho_1_and_2(broker, protocol):
    pythons = interpreters()
    if len(pythons) < 2:
        pytest.skip("Debian's python3-paho-mqtt 1.6.1 is not installed (tools/install-system-deps installs it)")
    versions = []
    for py in pythons:
        out = subprocess.run(
            [py, "-c", ROUND_TRIP, broker.url, protocol, str(ROOT)],
            capture_output=True, text=True, timeout=20, env={**os.environ, "PYTHONPATH": ""},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "['connect', 'message', 'puback', 'suback']" in out.stdout, (py, out.stdout)
        assert "b'hello', True)" in out.stdout  # the retained message came back flagged retained
        versions.append(out.stdout[0])
    assert versions == ["2", "1"]


@pytest.mark.parametrize(
    "url,expected",
    [
        ("mqtt://broker.local", BrokerUrl("broker.local", 1883, False)),
        ("mqtts://10.0.0.5", BrokerUrl("10.0.0.5", 8883, True)),
        ("mqtts://[::1]:9999", BrokerUrl("::1", 9999, True)),
    ],
)
def test_broker_url_defaults_ports_by_scheme(url, expected):
    assert BrokerUrl.parse(url) == expected


@pytest.mark.parametrize(
    "url,why",
    [
        ("http://x", "mqtt:// or mqtts://"),
        ("mqtt://", "no host"),
        ("mqtt://u:pw@host", "must not contain a user"),
        ("mqtt://host:99999", "invalid port"),
        ("mqtt://host/topic", "path"),
    ],
)
def test_broker_url_rejects_bad_urls_with_a_reason(url, why):
    with pytest.raises(ValueError, match=why):
        BrokerUrl.parse(url)
