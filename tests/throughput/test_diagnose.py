"""`netprobe diagnose` with a throughput check, against a loopback speed-server."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time

from agent.throughput import budget


def write_config(tmp_path, server: str, **extra: str) -> str:
    lines = [
        "[node]", f'state_dir = "{tmp_path / "state"}"',
        "[throughput]", f'server = "{server}"', "diagnose_max_mb = 3.0",
        *(f"{k} = {v}" for k, v in extra.items()),
        "[linktype]", "enabled = false",  # the link-type look is another check's time
        "[[targets]]", 'kind = "tcp"', f'target = "{server.split("//")[1]}"', 'role = "gateway"',
    ]  # fmt: skip
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def diagnose(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "diagnose", *argv], capture_output=True, text=True,
                          timeout=90)  # fmt: skip


def test_diagnose_runs_one_capped_test_and_counts_it_in_the_ledger(speed_server, tmp_path):
    srv = speed_server()
    cfg = write_config(tmp_path, srv.url)
    r = diagnose("-c", cfg, "--json")
    out = json.loads(r.stdout)
    check = next(c for c in out["checks"] if c["check"] == "throughput")
    reading = next(x for x in out["readings"] if x["measurement"] == "throughput")
    assert check["status"] == "OK" and check["readings"] == [reading["id"]]
    assert reading["fields"]["bytes_used"] <= 3_000_000 + (1 << 20)
    assert reading["fields"]["stop_reason"] == "byte_cap"
    assert "Measuring" not in r.stdout  # no progress line into a pipe
    assert budget.Ledger(str(tmp_path / "state")).load().day_bytes == reading["fields"]["bytes_used"]


def test_no_throughput_switch_and_an_exhausted_budget(speed_server, tmp_path):
    srv = speed_server()
    out = json.loads(diagnose("-c", write_config(tmp_path, srv.url), "--json", "--no-throughput").stdout)
    assert all(c["check"] != "throughput" for c in out["checks"])
    assert all(x["measurement"] != "throughput" for x in out["readings"])
    cfg = write_config(tmp_path, srv.url, daily_budget_mb="1.0")
    out = json.loads(diagnose("-c", cfg, "--json").stdout)
    check = next(c for c in out["checks"] if c["check"] == "throughput")
    reading = next(x for x in out["readings"] if x["measurement"] == "throughput")
    assert check["status"] == "SKIP" and check["hint"] == "throughput_budget"
    assert reading["error"]["code"] == "skipped"


def test_progress_line_shows_on_a_terminal_only(speed_server, tmp_path):
    srv = speed_server()
    cfg = write_config(tmp_path, srv.url)
    pid, fd = pty.fork()
    if pid == 0:  # the child: diagnose with a terminal as stdout
        os.execv(sys.executable, [sys.executable, "-m", "agent", "diagnose", "-c", cfg, "--lang", "id"])
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "Mengukur unduhan" in screen  # the progress line, in Bahasa Indonesia
    assert "Kecepatan" in screen and "unduh" in screen and "MB" in screen
