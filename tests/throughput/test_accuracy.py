"""Throughput on emulated links (the testbed): accuracy against iperf3, the byte cap, speedtest-cli
against a local legacy-protocol server, and latency under load on a deep queue.

The link is shaped by tbf on the router; iperf3 (4 streams, first second omitted) is the
trusted peer. Each test runs `netprobe probe throughput ... --json` inside the node namespace.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.fixtures.throughput import IPERF_PORT, server_wire_bytes, start_speed_server
from tests.helpers import requires_tool
from tests.testbed import Direction

pytestmark = [pytest.mark.testbed, requires_tool("iperf3")]

MIB = 1 << 20
READING_KEYS = {
    "download_mbps", "upload_mbps", "bytes_used", "duration_s", "streams", "backend", "server",
    "rtt_idle_ms", "rtt_loaded_ms", "bufferbloat_grade", "stop_reason",
}  # fmt: skip
LINK = {"down": Direction(delay_ms=20, rate_mbit=20), "up": Direction(delay_ms=20, rate_mbit=5)}
# TCP payload per full Ethernet frame (1448 of 1514 bytes, timestamps on): the share of tbf's rate
# a transfer can carry. On the clean link above, iperf3 reads this share of the rate to within 1 %.
PAYLOAD_SHARE = 1448 / 1514


def probe(tb, target: str, *options: str) -> dict:
    argv = ["probe", "throughput", target]
    for o in options:
        argv += ["-o", o]
    reading = tb.agent_json(argv, timeout=120)
    assert reading["measurement"] == "throughput"
    return reading


def probe_counting_wire(tb, target: str, *options: str) -> tuple[dict, int]:
    """A probe run, and the bytes the server's interface carried meanwhile (headers and ACKs included)."""
    before = server_wire_bytes(tb)
    reading = probe(tb, target, *options)
    return reading, server_wire_bytes(tb) - before


def iperf3_mbps(tb, reverse: bool) -> float:
    argv = ["iperf3", "-c", tb.server_ip, "-p", str(IPERF_PORT), "-J", "-t", "4", "-O", "1", "-P", "4"]
    out = tb.exec(tb.node_ns, [*argv, *(["-R"] if reverse else [])], timeout=30).stdout
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e6



def test_http_backend_is_within_5pct_of_iperf3_both_directions(testbed):
    tb = testbed("fiber", **LINK)
    srv = start_speed_server(tb)
    before = iperf3_mbps(tb, reverse=True), iperf3_mbps(tb, reverse=False)
    reading = probe(tb, srv.url)
    after = iperf3_mbps(tb, reverse=True), iperf3_mbps(tb, reverse=False)
    # iperf3 before and after, averaged: the shared machine's load makes any single run drift.
    truth_down, truth_up = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    f = reading["fields"]
    assert reading["ok"], reading["error"]
    assert set(f) >= READING_KEYS and f["backend"] == "http" and f["streams"] == 4
    assert f["download_mbps"] == pytest.approx(truth_down, rel=0.05), (f, truth_down)
    assert f["upload_mbps"] == pytest.approx(truth_up, rel=0.05), (f, truth_up)
    assert f["stop_reason"] in ("stable", "time_cap")
    assert f["warmup_down_s"] > 0  # slow start was measured and left out


def test_on_a_lossy_geo_link_the_http_backend_reads_the_link_rate(testbed):
    # 600 ms RTT, 0.5 % random loss, a 300 ms modem queue. Counted in sequence only, each loss
    # froze the count for 600 ms and runs read 5.0 to 9.8 Mbit/s; an 8 s iperf3 reads 6 to 7 here.
    tb = testbed("geo")
    srv = start_speed_server(tb)
    reading = probe(tb, srv.url)
    f = reading["fields"]
    assert reading["ok"], reading["error"]
    down, up = tb.profile.down.rate_mbit * PAYLOAD_SHARE, tb.profile.up.rate_mbit * PAYLOAD_SHARE
    assert f["download_mbps"] == pytest.approx(down, rel=0.05), (f, down)
    assert f["upload_mbps"] == pytest.approx(up, rel=0.05), (f, up)
    assert f["stop_reason"] == "stable", f  # it settled, rather than running into the time cap
    assert f["warmup_down_s"] > 2 * 0.6  # slow start at 600 ms RTT takes seconds, and was left out


def test_a_2mb_byte_cap_stops_at_2mb_plus_one_chunk_and_the_reading_says_so(testbed):
    tb = testbed("fiber", **LINK)
    srv = start_speed_server(tb)
    reading, wire = probe_counting_wire(tb, srv.url, "max_mb=2")
    f = reading["fields"]
    assert reading["ok"], reading["error"]
    assert f["stop_reason"] == "byte_cap"
    assert 1_000_000 < f["bytes_used"] <= 2_000_000 + MIB
    # On the wire: the same payload plus Ethernet/IP/TCP headers and ACKs (under 10 %).
    assert f["bytes_used"] < wire <= (2_000_000 + MIB) * 1.10, (f["bytes_used"], wire)


def test_speedtest_backend_runs_against_the_local_legacy_server_and_reports_bytes(testbed):
    tb = testbed("fiber", **LINK)
    srv = start_speed_server(tb)
    reading, wire = probe_counting_wire(tb, srv.url, 'backend="speedtest"')
    f = reading["fields"]
    assert reading["ok"], reading["error"]
    assert f["backend"] == "speedtest" and srv.url in f["server"]
    assert f["rtt_method"] == "icmp" and f["rtt_loaded_ms"] > f["rtt_idle_ms"]
    assert 0 < f["download_mbps"] <= 20 and 0 < f["upload_mbps"] <= 5  # cannot beat the shaped link
    assert 5_000_000 < f["bytes_used"] < wire  # counted body bytes; the wire carried them and more


def test_iperf3_backend_measures_its_loaded_rtt_by_echo(testbed):
    tb = testbed("fiber", **LINK)  # the router's queue holds 50 ms
    start_speed_server(tb)
    reading = probe(tb, f"{tb.server_ip}:{IPERF_PORT}", 'backend="iperf3"', "max_seconds=3")
    f = reading["fields"]
    assert reading["ok"], reading["error"]
    assert f["download_mbps"] == pytest.approx(20 * PAYLOAD_SHARE, rel=0.05), f
    assert f["rtt_method"] == "icmp" and 38 < f["rtt_idle_ms"] < 45, f
    # A standing queue of up to 50 ms while iperf3 runs, both ways.
    assert f["rtt_idle_ms"] + 20 < f["rtt_loaded_ms"] < f["rtt_idle_ms"] + 70, f
    assert f["bufferbloat_grade"] in ("A", "B", "C"), f


def test_speedtest_without_speedtest_net_is_a_clear_error_reading(testbed):
    tb = testbed("fiber", **LINK)
    result = tb.agent(["probe", "throughput", "auto", "-o", 'backend="speedtest"', "--json"], timeout=60)
    reading = json.loads(result.stdout)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert reading["ok"] is False and reading["error"]["code"] == "unreachable"
    assert reading["error"]["message"].startswith("speedtest.net cannot be reached")


def test_latency_under_load_on_a_deep_queue_is_graded_worse_than_on_a_short_one(testbed):
    # A 2 Mbit/s downlink whose modem queue holds 800 ms (a VSAT-like bufferbloat), then 15 ms.
    up = Direction(delay_ms=20, rate_mbit=10)
    tb = testbed("fiber", down=Direction(delay_ms=20, rate_mbit=2, queue_ms=800), up=up)
    srv = start_speed_server(tb)
    bloated = probe(tb, srv.url, "upload=false")["fields"]
    tb.set_profile(dataclasses.replace(tb.profile, down=Direction(delay_ms=20, rate_mbit=2, queue_ms=15)))
    short = probe(tb, srv.url, "upload=false")["fields"]
    assert bloated["rtt_method"] == short["rtt_method"] == "icmp"
    assert bloated["rtt_loaded_ms"] > bloated["rtt_idle_ms"] + 150, bloated
    assert bloated["bufferbloat_grade"] in ("D", "F"), bloated
    # 15 ms of queue plus the tbf bucket: about 20 ms. TCP pings read 80+ ms more here (a dropped
    # answer waits for a retransmission), echoes do not.
    assert short["rtt_loaded_ms"] < short["rtt_idle_ms"] + 40, short
    assert short["bufferbloat_grade"] in ("A+", "A"), short
    assert short["rtt_idle_ms"] == pytest.approx(bloated["rtt_idle_ms"], abs=15)  # same path, same idle RTT


@requires_tool("setpriv")
def test_without_icmp_latency_under_load_falls_back_to_http_pings(testbed):
    # No CAP_NET_RAW and no ping group (a fresh namespace's ping_group_range is "1 0"): no echoes.
    tb = testbed("fiber", down=Direction(delay_ms=20, rate_mbit=2, queue_ms=800), up=Direction(delay_ms=20))
    srv = start_speed_server(tb)
    argv = ["probe", "throughput", srv.url, "-o", "upload=false"]
    f = tb.agent_json(argv, timeout=120, prefix=("setpriv", "--bounding-set", "-net_raw"))["fields"]
    assert f["rtt_method"] == "http", f
    assert f["rtt_idle_ms"] >= 40 and f["bufferbloat_grade"] in ("D", "F"), f  # a standing queue shows in full
