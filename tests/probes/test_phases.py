"""TCP and HTTP phase times on an emulated uplink: connect is one RTT, first byte is one RTT plus
the server's own time, each within 5 ms of the injected truth."""

from __future__ import annotations

import statistics

import pytest

from tests.testbed import Direction

pytestmark = pytest.mark.testbed

ONE_WAY_MS = 30.0
RTT_MS = 2 * ONE_WAY_MS
SERVER_MS = 50
TOLERANCE_MS = 5.0


@pytest.fixture
def link(testbed):
    return testbed("fiber", down=Direction(ONE_WAY_MS, jitter_ms=0.3), up=Direction(ONE_WAY_MS, jitter_ms=0.3))


def test_tcp_connect_takes_one_rtt(link):
    tb = link
    reading = tb.agent_json(["probe", "tcp", f"{tb.server_ip}:{tb.ports['tcp']}", "--count", "7", "--interval", "0.1"])
    assert reading["ok"], reading["error"]
    assert abs(reading["fields"]["connect_p50_ms"] - RTT_MS) <= TOLERANCE_MS


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_http_first_byte_takes_one_rtt_plus_the_server_time(link, scheme):
    tb = link
    host = tb.server_ip if scheme == "http" else "server.test"  # https: a name the certificate covers
    url = f"{scheme}://{host}/wait/{SERVER_MS}"
    # Five runs and their median: other suites share the two cores and can stall one run.
    runs = [tb.agent_json(["probe", "http", url, "-o", f"ca_file='{tb.ca_file}'"]) for _ in range(5)]
    for reading in runs:
        assert reading["ok"], reading["error"]
        assert reading["fields"]["status"] == 200
    fields = [r["fields"] for r in runs]
    connect = statistics.median(f["connect_ms"] for f in fields)
    ttfb = statistics.median(f["ttfb_ms"] for f in fields)
    assert abs(connect - RTT_MS) <= TOLERANCE_MS, fields
    assert abs(ttfb - (RTT_MS + SERVER_MS)) <= TOLERANCE_MS, fields
    if scheme == "https":
        # TLS 1.3 is one round trip plus the crypto; the certificate comes from the test-made CA.
        assert RTT_MS <= statistics.median(f["tls_ms"] for f in fields) <= 2 * RTT_MS + TOLERANCE_MS
        assert fields[0]["cert_days_left"] > 25


def test_https_refuses_a_server_whose_ca_is_not_trusted(link):
    reading = link.agent_json(["probe", "http", "https://server.test/"])
    assert not reading["ok"] and reading["error"]["code"] == "tls_error"


def test_the_resolver_answers_through_the_uplink(link):
    tb = link
    reading = tb.agent_json(["probe", "dns", "anything.example", "--server", "system"])
    assert reading["ok"], reading["error"]
    assert reading["fields"]["server"] == tb.server_ip and reading["fields"]["answers"] == 1
    # dnspython costs 2-5 ms on top of the RTT in a fresh one-shot process (measured here).
    assert abs(reading["fields"]["query_ms"] - RTT_MS) <= 2 * TOLERANCE_MS
    missing = tb.agent_json(["probe", "dns", "nothing.invalid", "--server", "system"])
    assert missing["error"]["code"] == "nxdomain"
