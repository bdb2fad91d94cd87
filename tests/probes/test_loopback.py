"""The latency probes against real peers on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from agent.runner import adhoc_target, run_target
from agent.reading.model import Identity, Reading

IDENTITY = Identity(node="muba-sekayu-balai-agung-01", site={"kecamatan": "Sekayu", "desa": "Balai Agung"})


def probe(kind: str, target: str, timeout: float = 2.0, **options: Any) -> Reading:
    return asyncio.run(run_target(adhoc_target(kind, target, timeout, **options), IDENTITY))


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


# --- icmp ---------------------------------------------------------------------------------


def test_icmp_to_loopback_reports_every_statistic() -> None:
    r = probe("icmp", "127.0.0.1", count=5, packet_interval=0.02)
    assert r.ok and r.error is None
    f = r.fields
    assert f["sent"] == 5 and f["received"] == 5 and f["loss_pct"] == 0.0
    for key in ("rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "rtt_p50_ms", "rtt_p90_ms", "rtt_mdev_ms", "jitter_ms"):
        assert isinstance(f[key], float), key
    assert 0 <= f["rtt_min_ms"] <= f["rtt_p50_ms"] <= f["rtt_max_ms"] < 50
    assert f["socket"] in ("dgram", "raw")


def test_icmp_unresolvable_name_is_a_failed_reading() -> None:
    r = probe("icmp", "no-such-host.invalid", count=1)
    assert not r.ok
    assert r.error is not None and r.error["code"] == "resolve_failed"
    assert "no-such-host.invalid" in r.error["message"]


# --- tcp ----------------------------------------------------------------------------------


def test_tcp_connect_time_to_a_listener(tcp_listener: Any) -> None:
    r = probe("tcp", tcp_listener.address, count=3, packet_interval=0.01)
    assert r.ok, r.error
    assert r.fields["received"] == 3 and r.fields["port"] == tcp_listener.port
    assert 0 < r.fields["connect_p50_ms"] < 50
    deadline = time.monotonic() + 5.0  # the listener's thread accepts them in its own time
    while len(tcp_listener.hits) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(tcp_listener.hits) == 3


def test_tcp_refused_is_told_apart() -> None:
    r = probe("tcp", f"127.0.0.1:{closed_port()}", count=2, packet_interval=0.0)
    assert not r.ok and r.error is not None
    assert r.error["code"] == "refused"
    assert r.fields["loss_pct"] == 100.0


@pytest.mark.parametrize(
    "target, fragment",
    [("127.0.0.1:70000", "bad port"), ("127.0.0.1:http", "bad port"), ("[::1", "expected [IPv6]:port")],
)
def test_tcp_bad_target_is_a_bad_target_error(target: str, fragment: str) -> None:
    r = probe("tcp", target)
    assert r.error is not None and r.error["code"] == "bad_target"
    assert fragment in r.error["message"]


# --- dns ----------------------------------------------------------------------------------


def test_dns_answer_reports_time_rcode_and_count(dns_server: Any) -> None:
    r = probe("dns", "node.test", server=dns_server.address)
    assert r.ok, r.error
    assert r.fields["rcode"] == "NOERROR" and r.fields["answers"] == 1 and r.fields["record"] == "A"
    assert 0 < r.fields["query_ms"] < 100
    assert dns_server.hits == ["node.test."]


@pytest.mark.parametrize(
    "name, code, rcode",
    [("nothing.test", "nxdomain", "NXDOMAIN"), ("x.servfail.test", "servfail", "SERVFAIL"), ("x.timeout.test", "timeout", None)],
)
def test_dns_timeout_nxdomain_and_servfail_are_told_apart(dns_server: Any, name: str, code: str, rcode: Any) -> None:
    r = probe("dns", name, timeout=0.5, server=dns_server.address)
    assert not r.ok and r.error is not None
    assert r.error["code"] == code
    assert r.fields.get("rcode") == rcode
    assert r.fields["server"] == dns_server.address


# --- http ---------------------------------------------------------------------------------


def test_http_reports_phases_status_and_bytes(http_server: Any) -> None:
    r = probe("http", f"http://127.0.0.1:{http_server.port}/slow")
    assert r.ok, r.error
    f = r.fields
    assert f["status"] == 200 and f["bytes"] == 2048
    assert "tls_ms" not in f and "cert_days_left" not in f
    # The server sleeps 0.2 s before answering: that lands in ttfb, not in connect.
    assert 190 <= f["ttfb_ms"] < 1000
    assert f["connect_ms"] < 50
    assert f["total_ms"] >= f["dns_ms"] + f["connect_ms"] + f["ttfb_ms"]


def test_http_error_status_is_a_failed_reading_with_numbers(http_server: Any) -> None:
    r = probe("http", f"http://127.0.0.1:{http_server.port}/missing")
    assert not r.ok and r.error is not None
    assert r.error["code"] == "http_error" and "404" in r.error["message"]
    assert r.fields["status"] == 404


def test_https_with_trusted_ca_reports_tls_time_and_expiry(https_server: Any, tls_files: Any) -> None:
    r = probe("http", f"https://localhost:{https_server.port}/ok", ca_file=tls_files.ca)
    assert r.ok, r.error
    assert r.fields["tls_ms"] > 0
    # The fixture's certificate is valid for 10 days.
    assert 9.0 <= r.fields["cert_days_left"] <= 10.0


def test_https_verification_is_on_by_default(https_server: Any) -> None:
    r = probe("http", f"https://localhost:{https_server.port}/ok")
    assert not r.ok and r.error is not None
    assert r.error["code"] == "tls_error"
    assert "CERTIFICATE_VERIFY_FAILED" in r.error["message"].upper().replace(" ", "_")
    assert https_server.hits == []  # no request was sent over an unverified channel


def test_https_insecure_option_skips_verification(https_server: Any) -> None:
    r = probe("http", f"https://localhost:{https_server.port}/ok", verify_tls=False)
    assert r.ok, r.error
    assert r.fields["status"] == 200


def test_http_bad_url_is_a_bad_target() -> None:
    r = probe("http", "ftp://example.test/")
    assert r.error is not None and r.error["code"] == "bad_target"
