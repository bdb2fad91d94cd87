"""`netprobe spool flush` beside a running `netprobe run` (issue 12, finding 11), on the broker as shipped.

packaging/mosquitto/netprobe.conf sets `use_username_as_clientid true`: every connection of a node gets
the client id = its username, whatever client id it asks for. A flush beside the daemon would therefore
take over the daemon's session (Mosquitto closes the older connection with the same client id), the
daemon would reconnect and close the flush's, and so on. So the daemon holds `state_dir/run.lock` while
it runs; a flush refuses while it is held, and says what to do; the daemon refuses to start while a flush
holds it. Real processes, real TLS, the shipped config (`shipped_broker`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.test_mqtt import NODE, prefill_spool
from tests.fixtures.agentd import ROOT, agent_toml
from tests.fixtures.collector import wait_until

PASSWORD = "node-secret"
USERS = {NODE: PASSWORD, "collector-1": "c1-secret"}
ENV = {"NETPROBE_MQTT_PASSWORD": PASSWORD}
TAKEOVER = "already connected, closing old connection"  # Mosquitto, when a client id connects twice


def netprobe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, cwd=str(ROOT), timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), **ENV},
    )  # fmt: skip


def config(state: Path, tcp: str, broker: Any) -> str:
    # confirm = "broker": no collector runs here, and the flush's own delivery ends at the PUBACK.
    mqtt = {"username": NODE, "ca_file": broker.ca_file, "confirm": "broker"}
    return agent_toml(state, tcp=tcp, broker=broker.url, interval=0.5, mqtt=mqtt)


@pytest.mark.broker
def test_a_flush_beside_the_running_agent_refuses_and_leaves_its_session_alone(
    shipped_broker, agentd, tcp_listener, tmp_path
):
    broker = shipped_broker(USERS)
    state = tmp_path / "state"
    agent = agentd(config(state, tcp_listener.address, broker), env=ENV)
    assert agent.wait_stderr("connected to", 15), agent.stderr()[-2000:] + broker.log_text()[-2000:]
    assert wait_until(lambda: agent.spool().confirmed >= 2, 10), agent.spool()  # publishing

    out = netprobe("spool", "flush", "-c", str(agent.config_path), "--timeout", "5")
    assert out.returncode == 1, out.stdout + out.stderr
    assert re.search(rf"netprobe run \(pid {agent.proc.pid}\) is running and delivers the spool itself", out.stderr)
    assert "systemctl stop netprobe-agent" in out.stderr and "Traceback" not in out.stderr
    time.sleep(1.5)  # a takeover, had there been one, is in the broker's log by now
    # Before: the flush logged in as the node, and the broker closed the agent's session for it.
    assert TAKEOVER not in broker.log_text()
    assert broker.count_log("New client connected from 127.0.0.1:") == 1, broker.log_text()[-3000:]
    assert agent.stderr().count("connected to ") == 1 and "lost the connection" not in agent.stderr()
    before = agent.spool().confirmed
    assert wait_until(lambda: agent.spool().confirmed > before + 2, 10)  # still delivering

    # Stopped, the agent lets go: the flush delivers, as the node (the broker names it by its username).
    assert agent.stop() == 0
    prefill_spool(state, 20)
    out = netprobe("spool", "flush", "-c", str(agent.config_path), "--timeout", "20")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "delivered 20 readings" in out.stdout
    assert re.search(rf"New client connected from 127\.0\.0\.1:\d+ as {NODE} ", broker.log_text())
    assert TAKEOVER not in broker.log_text()


def test_the_agent_does_not_start_while_a_flush_holds_the_spool(tcp_listener, tmp_path):
    from agent.daemon.runlock import RunLock

    state = tmp_path / "state"
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(state, tcp=tcp_listener.address))
    lock = RunLock(str(state), "netprobe spool flush").acquire()  # as a flush in progress holds it
    try:
        out = netprobe("run", "-c", str(cfg))
        assert out.returncode == 73, out.stderr
        assert f"netprobe spool flush (pid {os.getpid()}) is using {state}" in out.stderr
        assert "Traceback" not in out.stderr
        flush = netprobe("spool", "flush", "-c", str(cfg))
        assert flush.returncode == 78  # no broker here: nothing to flush, and the lock is not needed to say so
    finally:
        lock.release()


def test_a_second_flush_refuses_while_one_runs(tmp_path, tcp_listener):
    from agent.daemon.runlock import RunLock

    state = tmp_path / "state"
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(state, tcp=tcp_listener.address, broker="mqtt://127.0.0.1:9"))
    lock = RunLock(str(state), "netprobe spool flush").acquire()
    try:
        out = netprobe("spool", "flush", "-c", str(cfg), "--timeout", "1")
        assert out.returncode == 1 and "another netprobe spool flush" in out.stderr, out.stderr
    finally:
        lock.release()
    out = netprobe("spool", "flush", "-c", str(cfg), "--timeout", "1")
    assert "another netprobe spool flush" not in out.stderr  # released: it tries (and fails to reach the broker)
