"""Host and port from what people write: host:port, [IPv6]:port, a bare host, an http(s) URL.

One parser for probe targets, backend servers and listen addresses, so that
an IPv6 literal means the same everywhere: in brackets when it carries a
port, bare (more than one colon) when it does not.
"""

from __future__ import annotations

import dataclasses
from typing import Optional
from urllib.parse import urlsplit

from agent.reading.model import BAD_TARGET, ProbeFailure


def split(
    text: str, default_port: Optional[int] = None, *, any_host: Optional[str] = None, lowest_port: int = 1
) -> tuple[str, int]:
    """(host, port) from 'host:port', '[v6]:port', '[v6]', 'host' or a bare IPv6 literal.

    Without a port, `default_port` (None: an error). An empty host (':8989') is
    `any_host` (None: an error). Ports are ASCII digits from `lowest_port` to
    65535. A ValueError says what is wrong and how to write it.
    """
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address '{text}': expected [IPv6]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    if not host:
        if any_host is None:
            raise ValueError(f"'{text}' has no host: write host:port")
        host = any_host
    if not port_text:
        if default_port is None:
            raise ValueError(f"'{text}' has no port: write host:port")
        return host, default_port
    if not (len(port_text) <= 5 and port_text.isascii() and port_text.isdigit()) or not (
        lowest_port <= int(port_text) <= 65535
    ):
        raise ValueError(f"bad port '{port_text}' in '{text}': expected {lowest_port}-65535")
    return host, int(port_text)


def split_host_port(text: str, default_port: Optional[int] = None) -> tuple[str, int]:
    """`split` for a probe's target: a bad one is the probe's BAD_TARGET failure."""
    try:
        return split(text, default_port)
    except ValueError as exc:
        raise ProbeFailure(BAD_TARGET, str(exc)) from None


@dataclasses.dataclass(frozen=True)
class Url:
    scheme: str
    host: str
    port: int
    path: str


def parse_url(text: str) -> Url:
    """An http(s) URL's parts, the port defaulted by scheme; a bad URL is BAD_TARGET."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeFailure(BAD_TARGET, f"bad URL '{text}': expected http://host/... or https://host/...")
    try:
        _, port = split(parts.netloc.rpartition("@")[2], 443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ProbeFailure(BAD_TARGET, f"bad URL '{text}': {exc}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Url(parts.scheme, parts.hostname, port, path)
