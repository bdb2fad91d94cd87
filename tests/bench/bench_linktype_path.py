"""Path probe: wall time and the worker's peak RSS per mode, and a long-lived agent's RSS after
path probes (scapy lives in the child only). Needs root: runs on the fiber and geo testbeds."""

from __future__ import annotations

import json
import statistics
import sys

import pytest

from tests import testbed as emu
from tests.fixtures.testbed import testbed_unavailable as why_no_testbed

RUNS = 5
DAEMONISH = """
import asyncio, json, sys, psutil
from agent.runner import adhoc_target, run_target
from agent.reading.model import Identity
import agent.probes  # the registry, as the daemon has it
me = psutil.Process()
agent.probes.registry()
before = me.memory_info().rss
async def main():
    rss = []
    for _ in range({runs}):
        r = await run_target(adhoc_target('path', '{target}', None), Identity('n', {{}}))
        rss.append(me.memory_info().rss)
        assert r.ok, r.error
    return rss
after = asyncio.run(main())
print(json.dumps({{"before": before, "after": after, "scapy": 'scapy' in sys.modules}}))
"""


@pytest.mark.parametrize("profile", ["fiber", "geo"])
def test_bench_path_probe_time_and_memory(profile):
    reason = why_no_testbed()
    if reason:
        pytest.skip(reason)
    with emu.Testbed(emu.PROFILES[profile]) as tb:
        for ns in (tb.gw_ns, tb.isp_ns, tb.server_ns):
            tb.exec(ns, ["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])
        print(f"\npath probe on the {profile} testbed ({RUNS} runs each; median)")
        for mode in ("icmp", "udp", "tcp"):
            walls, rss = [], []
            for _ in range(RUNS):
                extra = ["--port", "80"] if mode == "tcp" else []
                out = tb.exec(tb.node_ns, ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "agent", "probe", "path",
                                           tb.server_ip, "--mode", mode, *extra, "--json"])  # fmt: skip
                reading = json.loads(out.stdout)
                walls.append(float(out.stderr.split()[-2]))
                rss.append(reading["fields"]["worker_rss_mb"])
            print(
                f"  {mode:>4}: CLI wall {statistics.median(walls):.2f} s, worker peak RSS {statistics.median(rss):.1f} MB"
            )
        code = DAEMONISH.format(runs=RUNS, target=tb.server_ip)
        res = json.loads(tb.exec(tb.node_ns, [sys.executable, "-c", code], timeout=200).stdout)
        mb = [round(x / 2**20, 1) for x in res["after"]]
        print(
            f"  long-lived agent RSS: {res['before'] / 2**20:.1f} MB before, after each of {RUNS} path probes: {mb};"
            f" scapy imported in it: {res['scapy']}"
        )
        assert not res["scapy"]
