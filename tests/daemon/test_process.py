"""`netprobe run` as a process: no-broker mode, SIGHUP reload, systemd notify, refusals; `netprobe spool`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.fixtures.agentd import ROOT, agent_toml
from tests.helpers import free_port


def netprobe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, cwd=str(ROOT), timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip


def wait_lines(agent, n: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = agent.stdout_lines()
        if len(lines) >= n:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"only {len(agent.stdout_lines())} lines; stderr:\n{agent.stderr()}")


def test_without_a_broker_readings_go_to_stdout_and_the_spool_and_sighup_with_a_broken_config_keeps_the_old_one(
    agentd, tcp_listener, tmp_path
):
    state = tmp_path / "state"
    good = agent_toml(state, tcp=tcp_listener.address)
    agent = agentd(good)
    lines = wait_lines(agent, 3, 15)
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))
    assert all(r["measurement"] == "tcp" and r["node"] == "test-node-1" for r in lines)
    assert all(isinstance(r["clock_synced"], bool) and r["mono_s"] > 0 and r["boot"] for r in lines)

    agent.config_path.write_text(good.replace("interval = 0.5", "interval = 'soon'"))
    agent.signal(signal.SIGHUP)
    assert agent.wait_stderr("keeping the running config", 5), agent.stderr()
    assert "targets[0].interval: expected a number" in agent.stderr()
    count = len(agent.stdout_lines())
    time.sleep(1.2)
    assert agent.proc.poll() is None and len(agent.stdout_lines()) >= count + 2  # still measuring, old config

    # A valid new config does take effect: a second target appears (a closed port: refused readings).
    closed = f"127.0.0.1:{free_port()}"
    second = f'[[targets]]\nkind = "tcp"\ntarget = "{closed}"\ninterval = 0.5\ntimeout = 0.25\ncount = 1\n'
    agent.config_path.write_text(good + second)
    agent.signal(signal.SIGHUP)
    assert agent.wait_stderr("config reloaded", 5), agent.stderr()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(closed in line for line in agent.stdout_lines()):
        time.sleep(0.05)
    refused = [json.loads(x) for x in agent.stdout_lines() if closed in x]
    assert refused and refused[0]["ok"] is False and refused[0]["error"]["code"] == "refused"
    assert agent.stop() == 0
    lines = [json.loads(x) for x in agent.stdout_lines()]
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))  # one counter across reloads
    # Every reading printed is also in the spool (nothing deletes it without a broker).
    status = json.loads(netprobe("spool", "status", "--json", "-c", str(agent.config_path)).stdout)
    assert status["rows"] == len(lines) and status["last_seq"] == {"test-node-1": len(lines)}
    assert status["dropped"] == 0


def test_run_without_node_id_exits_78_naming_the_key(tmp_path, tcp_listener):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(tmp_path / "state", tcp=tcp_listener.address).replace('id = "test-node-1"', ""))
    out = netprobe("run", "-c", str(cfg))
    assert out.returncode == 78
    assert "node.id is not set" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_bad_broker_url_is_a_config_error_not_a_crash(tmp_path, tcp_listener):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(tmp_path / "state", tcp=tcp_listener.address, broker="http://broker"))
    out = netprobe("run", "-c", str(cfg))
    assert out.returncode == 78 and "mqtt.broker: must start with mqtt:// or mqtts://" in out.stderr


def test_sd_notify_ready_status_and_watchdog_and_journald_priorities(agentd, tcp_listener, tmp_path):
    name = f"netprobe-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(0.2)
    try:
        agent = agentd(
            agent_toml(tmp_path / "state", tcp=tcp_listener.address),
            env={"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "400000", "JOURNAL_STREAM": "8:4242"},
        )
        got: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and got.count("WATCHDOG=1") < 3:
            try:
                got += sock.recv(4096).decode().splitlines()
            except socket.timeout:
                pass
        assert agent.stop() == 0
        while "STOPPING=1" not in got:
            try:
                got += sock.recv(4096).decode().splitlines()
            except socket.timeout:
                break
    finally:
        sock.close()
    assert got[0] == "READY=1", got
    assert got.count("WATCHDOG=1") >= 3
    assert any(line.startswith("STATUS=1 targets, no broker, spool") for line in got)
    assert "STOPPING=1" in got
    # Under systemd, stderr lines carry syslog priorities for journald (<6> info, <7> debug).
    log = agent.stderr().splitlines()
    assert any(line.startswith("<6>agent.daemon.daemon: netprobe") for line in log)
    assert all(line[:3] in ("<7>", "<6>", "<4>", "<3>", "<2>") for line in log), log


@pytest.mark.broker
def test_spool_flush_delivers_the_backlog_and_spool_status_reports_it(
    broker, subscriber, collector_proc, tcp_listener, tmp_path
):
    from agent.collector.store import open_store
    from tests.daemon.test_mqtt import prefill_spool
    from tests.fixtures.collector import wait_until

    state = tmp_path / "state"
    prefill_spool(state, 50)
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(state, tcp=tcp_listener.address, broker=broker.url))
    status = json.loads(netprobe("spool", "status", "--json", "-c", str(cfg)).stdout)
    assert status["rows"] == 50 and status["last_seq"] == {"test-node-1": 50}
    assert (status["waiting"], status["sent"], status["confirmed"], status["delivery"]) == (50, 0, 0, "confirmed")
    human = netprobe("spool", "status", "-c", str(cfg)).stdout
    assert "waiting:  50 readings" in human and "seq 1)" in human

    sub = subscriber(broker, "netprobe/#")
    db = str(tmp_path / "collector.db")
    col = collector_proc(broker.url, {"path": db}, acks={"max_delay_s": 0.3, "min_gap_s": 0.2})
    assert col.wait_log("subscribed to"), col.log()
    out = netprobe("spool", "flush", "-c", str(cfg), "--timeout", "20")
    assert out.returncode == 0, out.stderr
    assert "delivered 50 readings (stored by the collector)" in out.stdout  # it waited for the collector's ack
    assert sub.wait_for(lambda m: len([t for t, _, _ in m if t.endswith("/tcp")]) >= 50, 5)
    assert [json.loads(p)["seq"] for t, p, _ in sub.snapshot() if t.endswith("/tcp")] == list(range(1, 51))
    assert not any(t.endswith("/status") for t, _, _ in sub.snapshot())  # flush does not pose as the node
    store = open_store(path=db)
    assert wait_until(lambda: store.count() == 50, 5)
    store.close()
    status = json.loads(netprobe("spool", "status", "--json", "-c", str(cfg)).stdout)
    assert (status["rows"], status["confirmed"]) == (0, 50)


def test_spool_flush_without_a_broker_says_so(tmp_path, tcp_listener):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_toml(tmp_path / "state", tcp=tcp_listener.address))
    out = netprobe("spool", "flush", "-c", str(cfg))
    assert out.returncode == 78 and "no broker configured (mqtt.broker)" in out.stderr


def test_a_damaged_spool_is_moved_aside_and_the_agent_keeps_measuring(agentd, tcp_listener, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "spool.sqlite3").write_bytes(b"this is not an SQLite database, a power cut ate it" * 100)
    agent = agentd(agent_toml(state, tcp=tcp_listener.address))
    lines = wait_lines(agent, 2, 15)
    assert [r["seq"] for r in lines][:2] == [1, 2]
    assert "is damaged" in agent.stderr()
    aside = [p.name for p in state.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and (state / aside[0]).read_bytes().startswith(b"this is not")


def test_the_watchdog_is_not_petted_once_a_scheduler_task_has_died(tcp_listener, tmp_path, monkeypatch, caplog):
    import asyncio
    import io

    from agent.config import load_config
    from agent.daemon.daemon import Daemon

    name = f"netprobe-wd-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # pet every 0.1 s
    cfg_path = tmp_path / "agent.toml"
    cfg_path.write_text(agent_toml(tmp_path / "state", tcp=tcp_listener.address))
    daemon = Daemon(load_config(str(cfg_path)), str(cfg_path), io.StringIO())

    def drain() -> list[str]:
        got: list[str] = []
        while True:
            try:
                got += sock.recv(4096).decode().splitlines()
            except BlockingIOError:
                return got

    async def scenario() -> tuple[list[str], list[str]]:
        runner = asyncio.ensure_future(daemon.run())
        await asyncio.sleep(0.6)
        healthy = drain()
        next(iter(daemon.scheduler.tasks.values())).cancel()  # a target's task dies
        await asyncio.sleep(0.15)
        drain()
        await asyncio.sleep(0.6)
        sick = drain()
        daemon.stopping.set()
        await runner
        return healthy, sick

    try:
        healthy, sick = asyncio.run(scenario())
    finally:
        sock.close()
    assert healthy.count("WATCHDOG=1") >= 3
    assert "WATCHDOG=1" not in sick and any(line.startswith("STATUS=") for line in sick)
    assert "not petting the systemd watchdog" in caplog.text


def test_sigterm_during_a_reload_that_swaps_the_publisher_exits_cleanly(agentd, broker, tcp_listener, tmp_path):
    """The stop path waits for a reload in flight, so no publisher starts after the spool closes."""
    state = tmp_path / "state"
    agent = agentd(agent_toml(state, tcp=tcp_listener.address, broker=broker.url))
    assert agent.wait_stderr("running as", 10), agent.stderr()
    # A frozen broker never acknowledges: the old publisher spends its 2 s trying to flush, so
    # the reload (which swaps publishers for the new broker URL) is still in flight at SIGTERM.
    broker.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(0.6)  # a few readings wait for PUBACK
        agent.config_path.write_text(agent_toml(state, tcp=tcp_listener.address, broker=f"mqtt://127.0.0.1:{free_port()}"))
        agent.signal(signal.SIGHUP)
        time.sleep(0.3)  # the reload is now waiting for the old publisher
        agent.signal(signal.SIGTERM)
    finally:
        broker.proc.send_signal(signal.SIGCONT)
    started = time.monotonic()
    assert agent.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 5.0
    err = agent.stderr()
    assert "Traceback" not in err and "closed database" not in err, err
