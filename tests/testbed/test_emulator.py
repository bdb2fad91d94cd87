"""The testbed itself, checked with peer tools: its delays against iputils ping, its shaping against
iperf3, its path against traceroute; and its teardown. When an accuracy test of the agent fails,
these say whether to blame the agent or the testbed."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time

import pytest

from tests.fixtures.testbed import require_testbed
from tests.helpers import requires_tool
from tests.testbed import PROFILES, Direction, Handover, IdlePenalty, Testbed
from tests.testbed.bed import REPO
from tests.testbed.schedule import handover_state

pytestmark = [pytest.mark.testbed, requires_tool("ping")]


@pytest.mark.parametrize(("down_ms", "up_ms", "count", "interval"), [(30.0, 10.0, 50, 0.01), (300.0, 300.0, 15, 0.05)])
def test_emulated_delay_measured_by_ping_is_within_1ms_of_the_setting(testbed, down_ms, up_ms, count, interval):
    tb = testbed("fiber", down=Direction(down_ms), up=Direction(up_ms))
    rtts = tb.ping(tb.node_ns, tb.server_ip, count, interval)
    assert len(rtts) == count
    assert abs(statistics.median(rtts) - (down_ms + up_ms)) <= 1.0


def test_the_gateway_is_in_front_of_the_emulated_uplink(testbed):
    tb = testbed("geo")
    rtts = tb.ping(tb.node_ns, tb.gateway_ip, 5, 0.02)
    assert len(rtts) == 5 and max(rtts) < 5.0  # the LAN, not the 600 ms satellite hop


@requires_tool("traceroute")
def test_the_path_shows_the_gateway_then_an_isp_hop_then_the_server(testbed):
    tb = testbed("fiber")
    out = tb.exec(tb.node_ns, ["traceroute", "-n", "-q", "1", "-w", "1", tb.server_ip]).stdout
    hops = re.findall(r"^\s*\d+\s+(\S+)", out, re.MULTILINE)
    assert hops == [tb.gateway_ip, tb.isp_ip, tb.server_ip]


def iperf3_mbit(tb, flags: list[str]) -> float:
    """Receiver's rate of a 1.5 s iperf3 run (the first 0.5 s left out)."""
    report: dict = {}
    for _ in range(3):  # a loaded machine starts the one-shot server slowly
        server = tb.popen(tb.server_ns, ["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(20):
            time.sleep(0.1)
            argv = ["iperf3", "-c", tb.server_ip, "-t", "1.5", "-O", "0.5", "-J", *flags]
            report = json.loads(tb.exec(tb.node_ns, argv, 20, False).stdout or "{}")
            if "sum_received" in report.get("end", {}):
                return float(report["end"]["sum_received"]["bits_per_second"]) / 1e6
            if server.poll() is not None:
                break
        server.kill()
    raise AssertionError(f"iperf3 failed: {report.get('error')}")


@requires_tool("iperf3")
def test_tbf_shapes_each_direction_to_its_rate(testbed):
    # UDP offered at twice the rate: what arrives is what tbf lets through, whatever the load on
    # the machine does to TCP's pacing. (UDP payload is ~97 % of the shaped frame bytes.)
    tb = testbed("fiber", down=Direction(5.0, rate_mbit=20), up=Direction(5.0, rate_mbit=5))
    assert iperf3_mbit(tb, ["-u", "-b", "40M", "-R"]) == pytest.approx(20 * 0.97, rel=0.1)
    assert iperf3_mbit(tb, ["-u", "-b", "10M"]) == pytest.approx(5 * 0.97, rel=0.1)
    assert tb.emulator_stats()["queue_drops"] > 0  # the excess was dropped at the tbf queue


def test_idle_penalty_delays_the_first_packet_after_silence(testbed):
    tb = testbed("fiber", down=Direction(2.5), up=Direction(2.5), idle_penalty=IdlePenalty(after_s=0.5, extra_ms=50.0))
    time.sleep(0.6)
    first = tb.ping(tb.node_ns, tb.server_ip, 4, 0.1)
    time.sleep(0.7)
    again = tb.ping(tb.node_ns, tb.server_ip, 2, 0.1)
    # One sample each, on a machine other tests keep busy: a late frame only adds delay, so the
    # floor is tight (the penalty was applied, once) and the ceiling leaves 10 ms for scheduling.
    assert 54.0 <= first[0] <= 65.0 and 54.0 <= again[0] <= 65.0, (first, again)
    assert statistics.median(first[1:] + again[1:]) == pytest.approx(5.0, abs=1.0)


def test_handover_steps_the_rtt_and_loses_packets_at_the_boundaries(testbed):
    # The profile's 15 s period shortened to 1 s so a test sees two boundaries in 2.5 s.
    handover = Handover(offsets_ms=(0.0, 10.0), loss_ms=100.0, period_s=1.0, phase_s=0.0)
    tb = testbed("fiber", down=Direction(2.5), up=Direction(2.5), handover=handover)
    out = tb.exec(tb.node_ns, ["ping", "-n", "-D", "-c", "250", "-i", "0.01", "-W", "1", tb.server_ip]).stdout
    found = re.findall(r"^\[([\d.]+)\].*icmp_seq=(\d+).*time=([\d.]+) ms", out, re.MULTILINE)
    sent_at = {int(seq): float(t) - float(rtt) / 1000.0 for t, seq, rtt in found}
    rtts = {int(seq): float(rtt) for _, seq, rtt in found}
    errors = []
    for seq, sent in sent_at.items():
        if min(sent % 1.0, 1.0 - sent % 1.0) < 0.15:
            continue  # near a boundary the two passes may fall in different slots
        offset, _ = handover_state(handover, sent)
        errors.append(abs(rtts[seq] - (5.0 + 2 * offset)))
    assert len(errors) > 100
    # Other tests share the two cores: allow a rare late frame, never a wrong step.
    assert statistics.median(errors) <= 0.5 and sum(e > 1.0 for e in errors) <= 0.03 * len(errors)
    for step in (5.0, 25.0):  # both steps were seen
        assert sum(abs(rtt - step) <= 1.0 for rtt in rtts.values()) > 30
    # Every lost request was sent just before or inside a 100 ms blackout after a boundary.
    lost = [seq for seq in range(1, 251) if seq not in sent_at]
    assert len(lost) >= 8
    for seq in lost:
        before = max((s for s in sent_at if s < seq), default=None)
        after = min((s for s in sent_at if s > seq), default=None)
        if before is None or after is None:
            continue
        estimate = sent_at[before] + (sent_at[after] - sent_at[before]) * (seq - before) / (after - before)
        into_slot = estimate % 1.0
        assert into_slot <= 0.2 or into_slot >= 0.95, f"seq {seq} lost {into_slot:.3f} s after a boundary"


def test_teardown_leaves_nothing_behind_even_when_the_test_fails():
    require_testbed()
    bed = Testbed(PROFILES["fiber"])
    with pytest.raises(RuntimeError, match="the test failed"), bed:
        ours = bed.popen(bed.server_ns, ["sleep", "60"])
        stray = subprocess.Popen(["ip", "netns", "exec", bed.node_ns, "sleep", "60"])  # not registered
        processes = [ours, stray, bed.emulator, bed.services]
        assert os.path.exists(f"/etc/netns/{bed.node_ns}/resolv.conf")
        raise RuntimeError("the test failed")
    stray.wait(5)
    assert all(p is not None and p.poll() is not None for p in processes)
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    prefix = bed.node_ns.rsplit("-", 1)[0]
    assert prefix not in names
    assert not os.path.exists(f"/etc/netns/{bed.node_ns}")
    assert not os.path.exists(bed.workdir)


INNER_TEST = """
import json

def test_that_fails_midway(testbed):
    tb = testbed("fiber")
    tb.popen(tb.server_ns, ["sleep", "60"])
    with open({names!r}, "w") as f:
        json.dump([tb.node_ns, tb.gw_ns, tb.router_ns, tb.isp_ns, tb.server_ns], f)
    assert False, "a failing test"
"""


def test_the_fixture_tears_down_a_testbed_whose_test_failed(tmp_path):
    require_testbed()
    names = tmp_path / "names.json"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER_TEST.format(names=str(names)))
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.fixtures.testbed", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(test_file)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert inner.returncode == 1 and "1 failed" in inner.stdout, inner.stdout[-2000:]
    left = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    made = json.loads(names.read_text())
    assert len(made) == 5 and not left & set(made)
    assert not any(os.path.exists(f"/etc/netns/{ns}") for ns in made)
