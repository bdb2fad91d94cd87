"""`netprobe diagnose` on emulated failures: each verdict blames the part that is really broken."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.testbed


def diagnose_config(tb, tmp_path) -> str:
    """Every check pointed into the testbed: the web target by IP, so only DNS depends on DNS."""
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[node]
id = "testbed-node"
state_dir = "{tmp_path}"

# The link-type check (its own issue, its own tests) takes ~5 s; these tests are about the
# latency checks' verdicts.
[linktype]
enabled = false

[[targets]]
kind = "icmp"
target = "gateway"
name = "gateway"
count = 3
packet_interval = 0.05
timeout = 1.0

[[targets]]
kind = "icmp"
target = "{tb.server_ip}"
name = "server"
count = 3
packet_interval = 0.05
timeout = 1.0

[[targets]]
kind = "tcp"
target = "{tb.server_ip}:{tb.ports["tcp"]}"
name = "server-tcp"
count = 1
timeout = 1.0

[[targets]]
kind = "dns"
target = "server.test"
name = "dns-system"
server = "system"
timeout = 1.5

[[targets]]
kind = "http"
target = "http://{tb.server_ip}/generate_204"
name = "web"
timeout = 2.0
"""
    )
    return str(path)


def run_diagnose(tb, tmp_path) -> tuple[int, dict, dict]:
    result = tb.agent(["diagnose", "-c", diagnose_config(tb, tmp_path), "--json"], timeout=40)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"diagnose exited {result.returncode}: {result.stderr}") from None
    return result.returncode, report, {c["check"]: c for c in report["checks"]}


def test_dead_uplink_is_blamed_on_the_uplink_not_the_gateway(testbed, tmp_path):
    tb = testbed("dead-uplink")
    code, report, checks = run_diagnose(tb, tmp_path)
    assert checks["gateway"]["status"] == "OK"
    assert checks["internet"]["status"] == "FAIL" and checks["internet"]["hint"] == "uplink_down"
    assert checks["dns"]["status"] == "FAIL" and checks["web"]["status"] == "FAIL"
    assert report["verdict"] == "down" and code == 2


def test_broken_resolver_fails_only_the_dns_check(testbed, tmp_path):
    tb = testbed("dns-broken")
    code, report, checks = run_diagnose(tb, tmp_path)
    assert checks["dns"]["status"] == "FAIL"
    dns_reading = next(r for r in report["readings"] if r["measurement"] == "dns")
    assert dns_reading["error"]["code"] == "timeout"
    assert {checks[name]["status"] for name in ("gateway", "internet", "web")} == {"OK"}
    assert report["verdict"] == "degraded" and code == 1


def test_healthy_link_passes_every_check(testbed, tmp_path):
    tb = testbed("fiber")
    code, report, checks = run_diagnose(tb, tmp_path)
    assert {checks[name]["status"] for name in ("gateway", "internet", "dns", "web")} == {"OK"}
    # Later checks (link type, throughput) may add a WARN of their own, never a "down".
    assert report["verdict"] in ("healthy", "degraded")
    assert code == {"healthy": 0, "degraded": 1}[report["verdict"]]
