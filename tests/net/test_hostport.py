"""One host:port parser for probe targets, backend servers and listen addresses."""

from __future__ import annotations

from typing import Optional

import pytest

from agent.net.hostport import parse_url, split, split_host_port
from agent.reading.model import BAD_TARGET, ProbeFailure
from agent.throughput.server import parse_listen


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("example.net:853", None, ("example.net", 853)),
        ("example.net", 53, ("example.net", 53)),
        ("192.0.2.7:443", None, ("192.0.2.7", 443)),
        ("[2001:db8::1]:5201", None, ("2001:db8::1", 5201)),
        ("[2001:db8::1]", 5201, ("2001:db8::1", 5201)),
        ("2001:db8::1", 5201, ("2001:db8::1", 5201)),  # bare IPv6: every colon is the address's
        ("::1", 53, ("::1", 53)),
    ],
)
def test_host_and_port_from_every_written_form(text: str, default: Optional[int], expected: tuple[str, int]) -> None:
    assert split(text, default) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("example.net", "'example.net' has no port: write host:port"),
        ("[::1", "bad address '[::1': expected [IPv6]:port"),
        ("[::1]8080", "bad address '[::1]8080': expected [IPv6]:port"),
        ("host:http", "bad port 'http' in 'host:http': expected 1-65535"),
        ("host:0", "bad port '0' in 'host:0': expected 1-65535"),
        ("host:70000", "bad port '70000' in 'host:70000': expected 1-65535"),
        ("host:²", "bad port '²' in 'host:²': expected 1-65535"),  # isdigit() is true, int() raises
        ("host:٣", "bad port '٣' in 'host:٣': expected 1-65535"),  # int() would make it 3
        ("host:" + "9" * 5000, "bad port '" + "9" * 5000),
        (":443", "':443' has no host: write host:port"),
    ],
)
def test_bad_host_port_is_a_value_error_that_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        split(text)
    assert str(info.value).startswith(message)


def test_a_bad_probe_target_is_the_probes_bad_target_failure() -> None:
    with pytest.raises(ProbeFailure) as info:
        split_host_port("127.0.0.1:99999", 443)
    assert info.value.code == BAD_TARGET and "bad port '99999'" in info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [(":8989", ("0.0.0.0", 8989)), ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::]:8989", ("::", 8989))],
)
def test_listen_addresses_allow_all_interfaces_and_any_free_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["nowhere", "::1:8989", "0.0.0.0:65536", "[::1]"])
def test_a_bad_listen_address_names_the_option_and_an_example(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_listen(text)
    assert str(info.value) == f"bad --listen '{text}': expected HOST:PORT, e.g. 0.0.0.0:8989"


def test_urls_default_the_port_by_scheme_and_keep_ipv6_literals() -> None:
    assert (parse_url("https://speed.example.net/backend").port, parse_url("http://h/").port) == (443, 80)
    url = parse_url("http://user:pw@[2001:db8::2]:8989/garbage?ckSize=1")
    assert (url.host, url.port, url.path) == ("2001:db8::2", 8989, "/garbage?ckSize=1")


@pytest.mark.parametrize("text", ["http://h:²/", "http://h:٣/", "ftp://h/", "http:///x"])
def test_a_bad_url_is_a_bad_target(text: str) -> None:
    with pytest.raises(ProbeFailure) as info:
        parse_url(text)
    assert info.value.code == BAD_TARGET
