"""The `netprobe` command as a technician or a script meets it: output, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import requires_root, requires_tool

AGENT = [sys.executable, "-m", "agent"]
READING_KEYS = {"schema", "id", "node", "site", "seq", "measurement", "target", "ts", "clock_synced",
                "mono_s", "boot", "duration_ms", "ok", "error", "fields"}  # fmt: skip
ICMP_FIELDS = {"rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "rtt_p50_ms", "rtt_p90_ms", "rtt_mdev_ms",
               "jitter_ms", "loss_pct", "sent", "received"}  # fmt: skip


def netprobe(*args: str, prefix: tuple[str, ...] = (), env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *AGENT, *args], capture_output=True, text=True, timeout=60, env=env)


def assert_one_clean_line(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netprobe: "), proc.stderr


def test_version_prints_the_package_version() -> None:
    from agent import __version__

    proc = netprobe("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"netprobe {__version__}"


def test_version_imports_no_heavy_module() -> None:
    code = "import sys; from agent.cli import main; main(['--version']); print(sorted(m for m in sys.modules if m.split('.')[0] in ('scapy','speedtest','paho','psutil','dns','icmplib')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv", [["run", "--help"], ["-v", "run", "--help"], ["check-config", "--help"]])
def test_a_command_loads_its_own_module_not_the_other_commands(argv: list[str]) -> None:
    # The daemon's process holds what `run` needs for years: never diagnose, the speed server or the collector.
    code = (
        "import sys; from agent.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('agent.cli.') or m.split('.')[1:2] in "
        "(['diagnose'], ['collector'], ['incidents']) or m == 'agent.throughput.server'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    command = next(a for a in argv if not a.startswith("-")).replace("-", "_")
    loaded = proc.stdout.strip().splitlines()[-1]
    assert loaded == str(sorted(["agent.cli.common", "agent.cli.exitcodes", f"agent.cli.{command}"])), loaded


def test_probe_icmp_json_prints_a_full_reading() -> None:
    proc = netprobe("probe", "icmp", "127.0.0.1", "--count", "3", "--interval", "0.05", "--json")
    assert proc.returncode == 0, proc.stderr
    reading = json.loads(proc.stdout)
    assert set(reading) == READING_KEYS
    assert set(reading["fields"]) >= ICMP_FIELDS
    assert reading["measurement"] == "icmp" and reading["target"] == "127.0.0.1" and reading["ok"] is True
    assert reading["fields"]["sent"] == 3 and reading["schema"] == 1
    assert reading["ts"].endswith("Z") and len(reading["ts"]) == 24


def test_latency_probe_does_not_load_scapy_or_speedtest() -> None:
    code = (
        "import sys, asyncio; from agent.runner import adhoc_target, run_target; from agent.reading.model import Identity;"
        "asyncio.run(run_target(adhoc_target('icmp', '127.0.0.1', 1.0, count=1), Identity('n', {})));"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scapy', 'speedtest')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == "[]", proc.stderr


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (("probe", "icmp", "no-such-host.invalid", "--count", "1"), 1, "cannot resolve 'no-such-host.invalid'"),
        (("probe", "tcp", "127.0.0.1:99999"), 64, "bad port '99999'"),
        (("probe", "icmp", "127.0.0.1", "--count", "0"), 64, "count: must be at least 1"),
        (("probe", "icmp", "127.0.0.1", "--server", "8.8.8.8"), 64, "server: unknown key"),
        (("probe", "nosuch", "x"), 64, "unknown probe 'nosuch'"),
        (("probe", "icmp", "127.0.0.1", "--count", "many"), 64, "invalid int value: 'many'"),
        (("diagnose", "-c", "/nonexistent/agent.toml"), 78, "cannot read config"),
    ],
)
def test_bad_input_gets_one_line_and_a_nonzero_exit(args: tuple[str, ...], code: int, fragment: str) -> None:
    proc = netprobe(*args)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert fragment in proc.stderr


def test_check_config_reports_all_three_mistakes_and_exits_78(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[node]\nid = "Balai Agung"\n\n[[targets]]\nkind = "icmp"\ntarget = "1.1.1.1"\ncuont = 5\n\n'
        '[[targets]]\nkind = "tcp"\ntarget = "1.1.1.1:443"\ntimeout = -1\n'
    )
    proc = netprobe("check-config", str(path))
    assert proc.returncode == 78
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3, proc.stderr
    assert all(line.startswith(f"netprobe: {path}: ") for line in lines)
    assert "node.id" in lines[0] and "targets[0].cuont" in proc.stderr and "targets[1].timeout" in proc.stderr


def test_check_config_accepts_the_example() -> None:
    proc = netprobe("check-config", "-c", str(Path(__file__).parents[2] / "config.example.toml"))
    assert proc.returncode == 0 and "OK (8 targets" in proc.stdout


# --- in a namespace of the test's own: privileges, IPv6, an offline diagnosis --------------


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"np-cli-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        subprocess.run(["rm", "-rf", f"/etc/netns/{name}"], check=False)


def in_ns(ns: str, *more: str) -> tuple[str, ...]:
    return ("ip", "netns", "exec", ns, *more)


def sysctl(ns: str, setting: str) -> None:
    subprocess.run([*in_ns(ns), "sysctl", "-qw", setting], check=True)


NO_RAW = ("setpriv", "--bounding-set", "-net_raw")  # root without CAP_NET_RAW


@requires_root
@requires_tool("setpriv")
def test_icmp_uses_an_unprivileged_socket_where_ping_group_range_allows(netns: str) -> None:
    sysctl(netns, "net.ipv4.ping_group_range=0 2147483647")
    proc = netprobe("probe", "icmp", "127.0.0.1", "--count", "3", "--interval", "0.02", "--json", prefix=in_ns(netns, *NO_RAW))
    assert proc.returncode == 0, proc.stderr
    fields = json.loads(proc.stdout)["fields"]
    assert fields["socket"] == "dgram" and fields["received"] == 3


@requires_root
def test_icmp_uses_a_raw_socket_with_cap_net_raw(netns: str) -> None:
    sysctl(netns, "net.ipv4.ping_group_range=1 0")
    proc = netprobe("probe", "icmp", "127.0.0.1", "--count", "3", "--interval", "0.02", "--json", prefix=in_ns(netns))
    assert proc.returncode == 0, proc.stderr
    fields = json.loads(proc.stdout)["fields"]
    assert fields["socket"] == "raw" and fields["received"] == 3


@requires_root
@requires_tool("setpriv")
def test_icmp_without_any_privilege_names_both_fixes(netns: str) -> None:
    sysctl(netns, "net.ipv4.ping_group_range=1 0")
    proc = netprobe("probe", "icmp", "127.0.0.1", "--count", "1", prefix=in_ns(netns, *NO_RAW))
    assert proc.returncode == 77
    assert_one_clean_line(proc)
    assert "ping_group_range" in proc.stderr and "CAP_NET_RAW" in proc.stderr


@requires_root
def test_ipv6_target_without_ipv6_is_one_clear_line(netns: str) -> None:
    sysctl(netns, "net.ipv6.conf.all.disable_ipv6=1")
    proc = netprobe("probe", "icmp", "2001:db8::1", "--count", "1", prefix=in_ns(netns))
    assert proc.returncode == 1
    assert_one_clean_line(proc)
    assert "no IPv6 route" in proc.stderr


@requires_root
def test_diagnose_offline_says_gateway_ok_internet_fail_with_a_hint(netns: str, tmp_path: Path) -> None:
    """Only loopback answers, standing in for the gateway; the public targets are unreachable."""
    os.makedirs(f"/etc/netns/{netns}", exist_ok=True)
    Path(f"/etc/netns/{netns}/resolv.conf").write_text("nameserver 203.0.113.53\n")
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        '[node]\nid = "muba-lais-petaling-01"\n'
        '[[targets]]\nkind = "icmp"\ntarget = "127.0.0.1"\nrole = "gateway"\n'
        '[[targets]]\nkind = "icmp"\ntarget = "203.0.113.10"\n'
        '[[targets]]\nkind = "tcp"\ntarget = "203.0.113.10:443"\n'
        '[[targets]]\nkind = "dns"\ntarget = "google.com"\n'
        '[[targets]]\nkind = "http"\ntarget = "http://203.0.113.10/"\n'
    )
    proc = netprobe("diagnose", "-c", str(cfg), "--json", prefix=in_ns(netns))
    assert proc.returncode == 2, proc.stderr
    result = json.loads(proc.stdout)
    checks = {c["check"]: (c["status"], c["hint"]) for c in result["checks"]}
    assert result["verdict"] == "down"
    assert checks["gateway"] == ("OK", None)
    assert checks["internet"] == ("FAIL", "uplink_down")
    assert checks["dns"] == ("FAIL", "dns_no_internet")
    assert len(result["readings"]) == 5 and all(r["error"] for r in result["readings"][1:])

    text = netprobe("diagnose", "-c", str(cfg), "--lang", "id", prefix=in_ns(netns))
    assert text.returncode == 2
    assert "Hasil: MATI" in text.stdout and "Gateway menjawab tetapi tidak ada yang di luar itu" in text.stdout


@requires_root
def test_a_silent_target_does_not_hold_up_another(netns: str) -> None:
    """Two targets at once: one answers, one is silent (nobody answers ARP for it on a veth)."""
    for cmd in (
        "ip link add np-v0 type veth peer name np-v1",
        "ip addr add 198.51.100.1/24 dev np-v0",
        "ip link set np-v0 up",
        "ip link set np-v1 up",
    ):
        subprocess.run([*in_ns(netns), *cmd.split()], check=True)
    code = (
        "import asyncio, json\n"
        "from agent.runner import adhoc_target, run_target\n"
        "from agent.reading.model import Identity\n"
        "async def main():\n"
        "    ident = Identity('n', {})\n"
        "    live = adhoc_target('icmp', '127.0.0.1', 2.0, count=5, packet_interval=0.05)\n"
        "    dead = adhoc_target('icmp', '198.51.100.99', 2.0, count=5, packet_interval=0.05)\n"
        "    rs = await asyncio.gather(run_target(live, ident), run_target(dead, ident))\n"
        "    print(json.dumps([r.to_dict() for r in rs]))\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run([*in_ns(netns), sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    live, dead = json.loads(proc.stdout)
    assert live["ok"] and live["fields"]["received"] == 5
    assert not dead["ok"] and dead["error"]["code"] == "timeout" and dead["fields"]["sent"] == 5
    # The live run ends when its last reply is in, not when the silent one gives up.
    assert live["duration_ms"] < 1000 < dead["duration_ms"]
