"""HTTP(S) timing by phase: name lookup, TCP connect, TLS handshake, first byte, total.

Each phase is its own duration (not cumulative, unlike curl's -w times):
`ttfb_ms` runs from the request being sent to the first response byte, so on
an idle server it is about one RTT plus the server's own time. TLS is verified
by default. Redirects are reported, not followed.

Fields: dns_ms, connect_ms, tls_ms (https), ttfb_ms, total_ms, status, bytes,
cert_days_left (https, verified), truncated (body cut at max_bytes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
import time
from typing import Any, Optional

from agent import __version__
from agent.net import iface
from agent.net.hostport import Url, parse_url
from agent.net.httphead import content_length, parse_response
from agent.probes import tcp
from agent.probes.base import Probe, ProbeContext
from agent.reading.model import HTTP_ERROR, PROTOCOL_ERROR, TIMEOUT, TLS_ERROR, FieldValue, Outcome, ProbeFailure
from agent.schema import setting


@dataclasses.dataclass(frozen=True)
class Options:
    method: str = setting("GET", choices=("GET", "HEAD"), help="request method")
    verify_tls: bool = setting(True, help="verify the server certificate (keep this on)")
    ca_file: str = setting("", help="extra CA bundle (PEM) to trust, e.g. a regency CA")
    max_bytes: int = setting(1_000_000, min=0, help="stop reading the body after this many bytes")
    ok_status: list[int] = setting(factory=lambda: [200, 204, 301, 302, 304], help="statuses counted as ok")


def tls_context(options: Options) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=options.ca_file or None)
    if not options.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def cert_days_left(ssl_object: Any) -> Optional[float]:
    cert = ssl_object.getpeercert() if ssl_object else None
    if not cert or "notAfter" not in cert:
        return None
    return round((ssl.cert_time_to_seconds(cert["notAfter"]) - time.time()) / 86400.0, 1)


async def fetch(url: Url, options: Options, timeout: float) -> Outcome:
    fields: dict[str, FieldValue] = {}
    t0 = time.perf_counter()
    address, family = await iface.resolve(url.host, timeout)
    t1 = time.perf_counter()
    fields["dns_ms"] = round((t1 - t0) * 1000.0, 3)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    # asyncio only sets TCP_NODELAY on sockets made with proto=IPPROTO_TCP. Without it Nagle holds
    # the request behind the TLS Finished until that is acked: one RTT too many in ttfb_ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writer: Optional[asyncio.StreamWriter] = None
    try:
        try:
            fields["connect_ms"] = round(await tcp.connect_once_on(sock, address, url.port, timeout), 3)
        except ProbeFailure:
            sock.close()
            raise
        tls = tls_context(options) if url.scheme == "https" else None
        t2 = time.perf_counter()
        try:
            reader, stream = await asyncio.wait_for(
                asyncio.open_connection(sock=sock, ssl=tls, server_hostname=url.host if tls else None), timeout
            )
        except ssl.SSLError as exc:
            raise ProbeFailure(TLS_ERROR, f"TLS with {url.host} failed: {exc.reason or exc}") from None
        writer = stream
        if tls:
            fields["tls_ms"] = round((time.perf_counter() - t2) * 1000.0, 3)
            days = cert_days_left(stream.get_extra_info("ssl_object"))
            if days is not None:
                fields["cert_days_left"] = days
        host_header = url.host if url.port in (80, 443) else f"{url.host}:{url.port}"
        request = (
            f"{options.method} {url.path} HTTP/1.1\r\nHost: {host_header}\r\n"
            f"User-Agent: netprobe/{__version__}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        )
        t3 = time.perf_counter()  # before the write: a slow drain() must not shorten ttfb_ms
        stream.write(request.encode("ascii"))
        await stream.drain()
        first = await asyncio.wait_for(reader.read(1), timeout)
        if not first:
            raise ProbeFailure(PROTOCOL_ERROR, f"{url.host} closed the connection without answering")
        fields["ttfb_ms"] = round((time.perf_counter() - t3) * 1000.0, 3)
        try:
            rest = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except asyncio.LimitOverrunError:
            raise ProbeFailure(PROTOCOL_ERROR, "response headers too large") from None
        except asyncio.IncompleteReadError:
            raise ProbeFailure(PROTOCOL_ERROR, f"{url.host} closed the connection mid-headers") from None
        status, headers = parse_response(first + rest)
        body, truncated = await read_body(reader, headers, options, timeout)
        fields.update({"total_ms": round((time.perf_counter() - t0) * 1000.0, 3), "status": status, "bytes": body})
        if truncated:
            fields["truncated"] = True
    except asyncio.TimeoutError:
        raise ProbeFailure(TIMEOUT, f"{url.host} did not answer within {timeout:g} s") from None
    finally:
        if writer is not None:
            writer.close()
        else:
            sock.close()
    if status not in options.ok_status:
        return Outcome.failed(HTTP_ERROR, f"HTTP {status} from {url.host}", **fields)
    return Outcome(ok=True, fields=fields)


async def read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], options: Options, timeout: float
) -> tuple[int, bool]:
    """Bytes of body read (chunk framing included), and whether max_bytes cut it short."""
    if options.method == "HEAD":
        return 0, False
    wanted = content_length(headers)
    got = 0
    while wanted is None or got < wanted:
        if got >= options.max_bytes:
            return got, True
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        if not chunk:
            break
        got += len(chunk)
    return got, False


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    return await fetch(parse_url(target), options, timeout)


PROBE = Probe(
    kind="http",
    summary="HTTP(S) phase times, status, bytes and certificate expiry",
    options=Options,
    run=run,
    interval_s=300.0,
    timeout_s=10.0,
)
