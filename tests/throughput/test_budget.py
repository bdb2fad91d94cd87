"""The data budget end to end: real tests against a loopback speed-server, the ledger across restarts."""

from __future__ import annotations

import dataclasses
import asyncio
import json
import socket
import subprocess
import sys
import textwrap

from agent.config import parse_config
from agent.runner import adhoc_target, identity_of, run_target
from agent.throughput import budget

RUN_ONCE = textwrap.dedent(
    """
    import asyncio, json, sys
    from agent.config import parse_config
    from agent.runner import adhoc_target, identity_of, run_target

    url, state_dir, daily_mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cfg = parse_config({"node": {"state_dir": state_dir},
                        "throughput": {"enabled": True, "daily_budget_mb": daily_mb}})
    target = adhoc_target("throughput", url, None, max_mb=3.0, max_seconds=3.0)
    ctx = cfg.probe_context()
    print(asyncio.run(run_target(target, identity_of(cfg), ctx)).to_json())
    """
)


def run_agent_once(url: str, state_dir: str, daily_mb: float) -> dict:
    """One scheduled test in a fresh process, as the daemon after a restart would run it."""
    r = subprocess.run([sys.executable, "-c", RUN_ONCE, url, state_dir, str(daily_mb)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def test_ledger_survives_a_restart_and_an_exhausted_budget_skips_with_a_reading(speed_server, tmp_path):
    srv = speed_server()
    state = str(tmp_path / "state")
    first = run_agent_once(srv.url, state, daily_mb=5.0)
    assert first["ok"], first["error"]
    used = first["fields"]["bytes_used"]
    assert 1_000_000 < used <= 3_000_000 + (1 << 20)
    assert first["fields"]["budget_day_mb"] == round(used / 1e6, 3)
    on_disk = budget.Ledger(state).load()
    assert on_disk.day_bytes == used and on_disk.tests == 1

    second = run_agent_once(srv.url, state, daily_mb=5.0)  # a new process: only the ledger remembers
    assert not second["ok"]
    assert second["error"]["code"] == "skipped"
    assert second["error"]["message"].startswith(f"daily data budget: {used / 1e6:.1f} of 5.0 MB used today")
    assert second["fields"]["bytes_used"] == 0 and second["measurement"] == "throughput"
    assert budget.Ledger(state).load().tests == 1  # a skip costs nothing

    third = run_agent_once(srv.url, state, daily_mb=100.0)  # a bigger budget lets it run and adds up
    assert third["ok"]
    assert budget.Ledger(state).load().day_bytes == used + third["fields"]["bytes_used"]


def test_disabled_by_default_a_scheduled_test_sends_nothing(tmp_path):
    cfg = parse_config({"node": {"state_dir": str(tmp_path)}})
    assert cfg.throughput.enabled is False
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        target = adhoc_target("throughput", url, None)
        ctx = dataclasses.replace(cfg.probe_context(), state_dir=str(tmp_path))
        reading = asyncio.run(run_target(target, identity_of(cfg), ctx))
        try:
            listener.accept()
            connected = True
        except BlockingIOError:
            connected = False
    assert not connected
    assert not reading.ok and reading.error == {
        "code": "skipped",
        "message": "throughput tests are off ([throughput] enabled = false)",
    }


def test_a_token_protected_server_is_reached_with_the_token_and_refused_without(speed_server, tmp_path):
    (tmp_path / "t").write_text("tok-123")
    srv = speed_server("--token-file", str(tmp_path / "t"))
    cfg = parse_config({})
    without = asyncio.run(run_target(adhoc_target("throughput", srv.url, None, max_mb=1.0), identity_of(cfg)))
    assert without.error is not None and "token" in without.error["message"]
    with_token = asyncio.run(
        run_target(adhoc_target("throughput", srv.url, None, max_mb=1.0, token="tok-123"), identity_of(cfg))
    )
    assert with_token.ok and with_token.fields["stop_reason"] == "byte_cap"
    assert "tok-123" not in with_token.to_json()


def test_an_unwritable_state_directory_keeps_the_measurement_and_says_why(speed_server, tmp_path):
    srv = speed_server()
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    cfg = parse_config({"node": {"state_dir": str(not_a_dir)}, "throughput": {"enabled": True}})
    ctx = dataclasses.replace(cfg.probe_context(), state_dir=str(not_a_dir))
    reading = asyncio.run(run_target(adhoc_target("throughput", srv.url, None, max_mb=1.0), identity_of(cfg), ctx))
    assert reading.ok and reading.fields["download_mbps"] > 0
    assert reading.fields["ledger_error"] == "File exists"  # makedirs on a file
