"""Side by side on one shaped link: our http backend, speedtest-cli's default run, and iperf3.

For each: download and upload Mbit/s, the error against iperf3 (4 streams, the ramp
omitted: the trusted peer) and against the link's shaped rate (its TCP payload share),
and the bytes it cost, counted on the server's interface (Ethernet/IP/TCP headers
included, the same ruler for all three). speedtest-cli runs with speedtest.net's usual
settings against `netprobe speed-server`'s legacy endpoints.
Target: within 5 % of iperf3 with at most 25 % of speedtest-cli's bytes.

On the lossy GEO link iperf3 is itself unsteady (its in-order count stalls for an RTT at
every loss): it runs 20 s there, the first 8 omitted, and the shaped rate is the steadier truth.
Run with `make bench` (root); the figures go to the README.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from typing import Any

import pytest

from tests.fixtures import testbed as testbed_fixture
from tests.fixtures.throughput import IPERF_PORT, server_wire_bytes, start_speed_server
from tests.testbed import PROFILES, Direction, Testbed
from tests.throughput.test_accuracy import PAYLOAD_SHARE

LINKS = {  # name: (profile, repetitions, iperf3 seconds measured, iperf3 seconds omitted)
    "fiber-like 20/5 Mbit, 40 ms RTT": (
        dataclasses.replace(
            PROFILES["fiber"], down=Direction(delay_ms=20, rate_mbit=20), up=Direction(delay_ms=20, rate_mbit=5)
        ),
        3,
        8,
        2,
    ),
    "GEO VSAT (testbed 'geo': 10/2 Mbit, 600 ms RTT, 0.5 % loss, deep queue)": (PROFILES["geo"], 3, 20, 8),
}


def iperf3(tb: Testbed, secs: int, omit: int) -> dict[str, Any]:
    before = server_wire_bytes(tb)
    out = {}
    for key, extra in (("down", ["-R"]), ("up", [])):
        argv = ["iperf3", "-c", tb.server_ip, "-p", str(IPERF_PORT), "-J", "-t", str(secs), "-O", str(omit)]
        argv += ["-P", "4", *extra]
        for attempt in range(3):  # on a lossy link iperf3's control connection sometimes gives up
            data = json.loads(tb.exec(tb.node_ns, argv, timeout=secs + 60, check=False).stdout)
            if "error" not in data:
                break
            print(f"  iperf3 {key}, attempt {attempt + 1}: {data['error']}")
        out[key] = data["end"]["sum_received"]["bits_per_second"] / 1e6
    out["wire"] = server_wire_bytes(tb) - before
    return out


def netprobe(tb: Testbed, url: str, *options: str) -> dict[str, Any]:
    argv = ["probe", "throughput", url]
    for o in options:
        argv += ["-o", o]
    before = server_wire_bytes(tb)
    reading = tb.agent_json(argv, timeout=180)
    assert reading["ok"], reading["error"]
    f = reading["fields"]
    return {"down": f["download_mbps"], "up": f["upload_mbps"], "wire": server_wire_bytes(tb) - before,
            "reported": f["bytes_used"], "secs": f["duration_s"], "stop": f["stop_reason"]}  # fmt: skip


@pytest.mark.timeout(900)
@pytest.mark.skipif(bool(testbed_fixture.testbed_unavailable()), reason=testbed_fixture.testbed_unavailable() or "-")
@pytest.mark.parametrize("name", list(LINKS))
def test_bench_http_vs_speedtest_vs_iperf3(name: str) -> None:
    print()
    profile, reps, secs, omit = LINKS[name]
    shaped_down = (profile.down.rate_mbit or 0) * PAYLOAD_SHARE
    shaped_up = (profile.up.rate_mbit or 0) * PAYLOAD_SHARE
    rows: dict[str, list[dict[str, Any]]] = {"iperf3": [], "http": [], "http span 1 s": [], "speedtest-cli": []}
    with Testbed(profile) as tb:
        srv = start_speed_server(tb)
        for _ in range(reps):
            rows["iperf3"].append(iperf3(tb, secs, omit))
            rows["http"].append(netprobe(tb, srv.url))
            rows["http span 1 s"].append(netprobe(tb, srv.url, "stable_span=1.0"))
            rows["speedtest-cli"].append(netprobe(tb, srv.url, 'backend="speedtest"'))
    truth_down = statistics.median(r["down"] for r in rows["iperf3"])
    truth_up = statistics.median(r["up"] for r in rows["iperf3"])
    st_wire = statistics.median(r["wire"] for r in rows["speedtest-cli"])
    print(
        f"{name}: median of {reps}; iperf3 {truth_down:.2f} down / {truth_up:.2f} up Mbit/s; "
        f"shaped rate's payload share {shaped_down:.2f} / {shaped_up:.2f}"
    )
    print(f"  {'backend':<14} {'down':>6} {'err':>7} {'vs rate':>7} {'up':>6} {'err':>7} {'vs rate':>7} "
          f"{'wire MB':>8} {'vs st-cli':>9}  {'secs':>5}  stop / per-run errors vs iperf3 down, up")  # fmt: skip
    for backend, runs in rows.items():
        down = statistics.median(r["down"] for r in runs)
        up = statistics.median(r["up"] for r in runs)
        wire = statistics.median(r["wire"] for r in runs)
        secs = statistics.median(r.get("secs", 20.0) for r in runs)
        errs = ", ".join(
            f"{(r['down'] / truth_down - 1) * 100:+.1f}/{(r['up'] / truth_up - 1) * 100:+.1f}" for r in runs
        )
        stops = ",".join(str(r.get("stop", "-")) for r in runs)
        print(f"  {backend:<14} {down:6.2f} {(down / truth_down - 1) * 100:+6.1f}% "
              f"{(down / shaped_down - 1) * 100:+6.1f}% {up:6.2f} {(up / truth_up - 1) * 100:+6.1f}% "
              f"{(up / shaped_up - 1) * 100:+6.1f}% {wire / 1e6:8.1f} {wire / st_wire * 100:8.0f}%  {secs:5.1f}  "
              f"{stops} / {errs}")  # fmt: skip
