"""The link emulator's own cost, side by side with a kernel bridge on the same namespaces.

Per round trip: ping RTT through a zero-delay emulator vs through a Linux bridge in its place.
Capacity: iperf3 TCP (download direction, 2 s, unshaped) through each. Medians of 3 runs.
Run with `make bench` (as root); the figures go to README.md "## Testbed".
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from typing import Any

from tests.testbed import Direction

RUNS = 3


def tcp_mbit(tb: Any) -> float:
    tb.popen(tb.server_ns, ["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(30):
        time.sleep(0.1)
        out = tb.exec(tb.node_ns, ["iperf3", "-c", tb.server_ip, "-t", "2", "-O", "0.5", "-R", "-J"], 30, False).stdout
        report = json.loads(out or "{}")
        if "sum_received" in report.get("end", {}):
            return float(report["end"]["sum_received"]["bits_per_second"]) / 1e6
    raise AssertionError(f"iperf3 failed: {report.get('error')}")


def measure(tb: Any) -> dict[str, float]:
    rtts = [statistics.median(tb.ping(tb.node_ns, tb.server_ip, 100, 0.01)) for _ in range(RUNS)]
    rates = [tcp_mbit(tb) for _ in range(RUNS)]
    return {"rtt_ms": statistics.median(rtts), "tcp_mbit": statistics.median(rates)}


def test_bench_emulator_against_a_kernel_bridge(testbed: Any) -> None:
    tb = testbed("fiber", down=Direction(0.0), up=Direction(0.0))
    emulator = measure(tb)
    assert tb.emulator is not None
    tb.emulator.terminate()
    tb.emulator.wait(5)
    for argv in (
        ["link", "add", "br0", "type", "bridge"],
        ["link", "set", "lan0", "master", "br0"],
        ["link", "set", "wan0", "master", "br0"],
        ["link", "set", "br0", "up"],
    ):
        tb.exec(tb.router_ns, ["ip", *argv])
    bridge = measure(tb)
    print()
    print(f"{'':22} {'emulator':>10} {'kernel bridge':>14} {'ratio':>7}")
    for key, label in (("rtt_ms", "RTT, 0 ms set (ms)"), ("tcp_mbit", "TCP down (Mbit/s)")):
        print(f"{label:22} {emulator[key]:10.3f} {bridge[key]:14.3f} {emulator[key] / bridge[key]:7.2f}")
    print(f"emulator cost per round trip: {emulator['rtt_ms'] - bridge['rtt_ms']:.3f} ms")
    assert emulator["tcp_mbit"] > 100 and emulator["rtt_ms"] < 1.0
