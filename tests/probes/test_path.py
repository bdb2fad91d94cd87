"""The path probe on the testbed: same hops as the `traceroute` program, notable hops, path MTU,
and scapy only ever in the child process."""

from __future__ import annotations

import json
import re
import socket
import sys

import pytest

from agent.probes.path import hops_text, is_public, notable_hops
from tests.helpers import requires_tool

pytestmark = [pytest.mark.testbed]

TRACEROUTE_FLAGS = {"icmp": ["-I"], "udp": [], "tcp": ["-T", "-p", "80"]}


def quiet_rate_limits(tb) -> None:
    """Linux rate-limits ICMP errors per peer (burst 6, then 1/s); back-to-back traces would starve."""
    for ns in (tb.gw_ns, tb.isp_ns, tb.server_ns):
        tb.exec(ns, ["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])


def traceroute_hops(tb, mode: str) -> list[str]:
    out = tb.exec(tb.node_ns, ["traceroute", "-n", "-q", "3", "-w", "2", *TRACEROUTE_FLAGS[mode], tb.server_ip]).stdout
    hops = []
    for line in out.splitlines()[1:]:
        found = re.findall(r"\d+\.\d+\.\d+\.\d+", line)
        hops.append(found[0] if found else "")
    return hops


def path_reading(tb, mode: str, *extra: str) -> dict:
    port = ["--port", "80"] if mode == "tcp" else []
    result = tb.agent(["probe", "path", tb.server_ip, "--mode", mode, *port, *extra, "--json"], timeout=60)
    assert result.stdout, result.stderr
    return dict(json.loads(result.stdout))


@requires_tool("traceroute")
@pytest.mark.parametrize("mode", ["icmp", "udp", "tcp"])
def test_path_hops_match_traceroute_on_the_testbed(testbed, mode):
    tb = testbed("fiber")
    quiet_rate_limits(tb)
    expected = traceroute_hops(tb, mode)
    reading = path_reading(tb, mode)
    f = reading["fields"]
    ours = [h.split(":")[1] if h.split(":")[1] != "*" else "" for h in f["hops"].split()]
    assert reading["ok"] and f["reached"]
    assert ours == expected == [tb.gateway_ip, tb.isp_ip, tb.server_ip]
    assert f["isp_hop"] == tb.isp_ip and f["isp_hop_ttl"] == 2
    assert f["mode"] == mode


def test_path_rtt_per_hop_is_the_minimum_and_sees_the_geo_hop(testbed):
    tb = testbed("geo")
    quiet_rate_limits(tb)
    f = path_reading(tb, "icmp")["fields"]
    rtts = [float(h.split(":")[2]) for h in f["hops"].split()]
    ping_min = min(tb.ping(tb.node_ns, tb.isp_ip, count=5, interval=0.2))
    assert rtts[0] < 5 and rtts[1] >= 570
    assert abs(rtts[1] - ping_min) < 25  # the same link, seen by iputils ping
    assert f["rtt_min_ms"] == rtts[-1]


def test_path_mtu_is_found_with_df_probes_behind_a_smaller_link(testbed):
    tb = testbed("fiber")
    quiet_rate_limits(tb)
    tb.exec(tb.isp_ns, ["ip", "link", "set", "down0", "mtu", "1400"])
    tb.exec(tb.server_ns, ["ip", "link", "set", "eth0", "mtu", "1400"])
    f = path_reading(tb, "icmp")["fields"]
    assert f["pmtu"] == 1400 and f["pmtu_method"] == "hint"


def test_the_agent_process_never_imports_scapy_for_a_path_probe(testbed):
    tb = testbed("fiber")
    code = (
        "import asyncio, sys;"
        "from agent.runner import adhoc_target, run_target;"
        "from agent.reading.model import Identity;"
        f"r = asyncio.run(run_target(adhoc_target('path', '{tb.server_ip}', None), Identity('n', {{}})));"
        # VmHWM, not ru_maxrss: ru_maxrss keeps the high-water mark of the forked pytest
        # process this one was exec'd from, VmHWM is this process's own.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
        "print(r.ok, 'scapy' in sys.modules, r.fields['worker_rss_mb'], int(hwm) // 1024)"
    )
    out = tb.exec(tb.node_ns, [sys.executable, "-c", code]).stdout.split()
    ok, scapy_loaded, worker_mb, parent_mb = out[0], out[1], float(out[2]), int(out[3])
    assert ok == "True" and scapy_loaded == "False"
    assert worker_mb > parent_mb  # the memory scapy needed lived and died in the child


def test_notable_hops_skip_private_and_cgnat_for_the_first_public_hop():
    hops = [
        {"ttl": 1, "address": "192.168.1.1", "rtt_min_ms": 0.4},
        {"ttl": 2, "address": "100.64.0.1", "rtt_min_ms": 31.0},
        {"ttl": 3, "address": "", "rtt_min_ms": None},
        {"ttl": 4, "address": "172.16.249.6", "rtt_min_ms": 33.0},
        {"ttl": 5, "address": "149.19.108.1", "rtt_min_ms": 35.2},
    ]
    marks = notable_hops(hops, gateway="192.168.1.1")
    assert (marks["isp_hop"], marks["isp_hop_ttl"]) == ("100.64.0.1", 2)
    assert (marks["first_public_hop"], marks["first_public_ttl"]) == ("149.19.108.1", 5)
    assert hops_text(hops[:3]) == "1:192.168.1.1:0.4 2:100.64.0.1:31 3:*"
    assert not is_public("100.127.255.1") and is_public("100.128.0.1")


def test_paris_probes_keep_one_flow_identifier_per_run():
    from agent.probes._path_worker import build_probe

    flow = {"ip_id": 4242, "icmp_sum": 0x5A5A, "sport": 40000, "dport": 33434, "tcp_seq": 1000}
    for mode in ("icmp", "udp", "tcp"):
        probes = [build_probe(mode, "203.0.113.18", ttl, q, flow) for ttl in range(1, 9) for q in range(3)]
        wire = [bytes(p) for p in probes]
        # the bytes per-flow load balancers hash: addresses, protocol, first 4 bytes of the transport header
        flow_keys = {(w[9], w[12:20], w[20:24]) for w in wire}
        assert len(flow_keys) == 1, mode
        assert len({w[4:6] for w in wire}) == len(wire), "every probe has its own IP ID"


def test_reverse_names_are_looked_up_when_asked():
    from agent.probes._path_worker import reverse_names

    names = reverse_names(["127.0.0.1"], budget_s=2.0)
    assert names.get("127.0.0.1") == socket.gethostbyaddr("127.0.0.1")[0]
