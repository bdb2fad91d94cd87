"""The host-health probe, checked against the kernel's own numbers (/proc, /sys, statvfs)."""

from __future__ import annotations

import asyncio
import os

from agent.probes import host, registry
from agent.probes.base import ProbeContext
from agent.runner import adhoc_target, run_target
from agent.reading.model import Identity


def sys_counter(iface: str, name: str) -> int:
    with open(f"/sys/class/net/{iface}/statistics/{name}") as f:
        return int(f.read())


def test_host_reading_matches_the_kernels_numbers(tmp_path):
    assert "host" in registry()  # found by the registry, no other file edited
    target = adhoc_target("host", "self", None, interfaces=["lo"])
    lo_rx_before = sys_counter("lo", "rx_bytes")
    ctx = ProbeContext(state_dir=str(tmp_path / "not-yet-created"))
    r = asyncio.run(run_target(target, Identity("n", {}), ctx))
    lo_rx_after = sys_counter("lo", "rx_bytes")
    f = r.fields
    assert r.ok and r.measurement == "host"

    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    assert abs(f["uptime_s"] - uptime) <= 3
    st = os.statvfs(str(tmp_path))  # the nearest existing parent of the state dir
    free_mb = st.f_bavail * st.f_frsize / 2**20
    assert abs(f["disk_free_mb"] - free_mb) < max(50.0, free_mb * 0.01)
    assert 0 <= f["disk_used_pct"] <= 100 and 0 <= f["cpu_pct"] <= 100 and 0 <= f["mem_used_pct"] <= 100
    with open("/proc/meminfo") as fh:
        total_kb = int(fh.readline().split()[1])
    assert abs(f["mem_total_mb"] - total_kb / 1024) < 1
    with open("/proc/self/status") as fh:
        rss_kb = int(next(line for line in fh if line.startswith("VmRSS")).split()[1])
    assert abs(f["agent_rss_mb"] - rss_kb / 1024) < 5
    assert f["agent_cpu_s"] > 0 and f["load_1m"] >= 0
    assert lo_rx_before <= f["if_lo_rx_bytes"] <= lo_rx_after and f["if_lo_up"] is True
    assert "if_lo_speed_mbps" not in f  # loopback has no link speed: left out, not a fake 0


def test_default_interfaces_skip_loopback_and_virtual_ones():
    class S:
        def __init__(self, up: bool) -> None:
            self.isup = up

    stats = {"lo": S(True), "eth0": S(True), "wlan0": S(False), "veth12": S(True), "docker0": S(True), "wwan0": S(True)}
    assert host.pick_interfaces(stats, []) == ["eth0", "wwan0"]
    assert host.pick_interfaces(stats, ["wlan0", "nope"]) == ["wlan0"]
    assert host.field_name("eth0.100") == "if_eth0_100"


def test_cpu_temperature_prefers_the_cpu_zone(tmp_path):
    for i, (kind, milli) in enumerate([("acpitz", "61000"), ("cpu-thermal", "48312"), ("broken", "x")]):
        zone = tmp_path / f"thermal_zone{i}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    assert host.cpu_temperature(str(tmp_path)) == 48.3
    assert host.cpu_temperature(str(tmp_path / "none")) is None
