"""HTTP(S) timing by phase: name lookup, TCP connect, TLS handshake, first byte, total.

Each phase is its own duration (not cumulative, unlike curl's -w times):
`ttfb_ms` runs from the request being sent to the first response byte, so on
an idle server it is about one RTT plus the server's own time. TLS is verified
by default. Redirects are reported, not followed.

A full TLS handshake sends the server's certificate chain, 3-5 kB, every run; on a
metered link that is most of the check's cost. So the probe offers the server the
session of its last run again (TLS session resumption, RFC 8446 2.2; `resume_tls`):
the server then skips the certificate, and `tls_resumed` says whether it did. The
bytes the connection moved both ways come from its socket (TCP_INFO: data and
every segment's headers), for the data ledger (docs/data-cost.md).

Fields: dns_ms, connect_ms, tls_ms (https), tls_resumed (https), ttfb_ms, total_ms,
status, bytes, wire_bytes (both ways, headers included; absent where the kernel
does not say), cert_days_left (https, verified), truncated (body cut at max_bytes).
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
from agent.usage import wire

MAX_CONTEXTS = 32  # TLS contexts kept for resumption (one per server and trust setting)


@dataclasses.dataclass(frozen=True)
class Options:
    method: str = setting("GET", choices=("GET", "HEAD"), help="request method")
    verify_tls: bool = setting(True, help="verify the server certificate (keep this on)")
    ca_file: str = setting("", help="extra CA bundle (PEM) to trust, e.g. a regency CA")
    max_bytes: int = setting(1_000_000, min=0, help="stop reading the body after this many bytes")
    ok_status: list[int] = setting(factory=lambda: [200, 204, 301, 302, 304], help="statuses counted as ok")
    resume_tls: bool = setting(
        True, help="offer the last run's TLS session again: the server skips the certificate chain (a few kB)"
    )


def tls_context(options: Options) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=options.ca_file or None)
    if not options.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ResumingContext(ssl.SSLContext):
    """A client context that offers `session`, its last server's session, on each new connection.

    asyncio's SSL transport creates its SSLObject with `wrap_bio` and no session argument, so
    the session is handed in here. A session only resumes with the context that made it: one
    context per server and trust setting, kept across runs.
    """

    session: Optional[ssl.SSLSession] = None

    def wrap_bio(self, incoming: Any, outgoing: Any, server_side: bool = False, server_hostname: Any = None,
                 session: Optional[ssl.SSLSession] = None) -> ssl.SSLObject:  # fmt: skip
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session or self.session)


_contexts: dict[tuple[str, int, str, bool], ResumingContext] = {}


def resuming_context(url: Url, options: Options) -> ResumingContext:
    key = (url.host, url.port, options.ca_file, options.verify_tls)
    ctx = _contexts.get(key)
    if ctx is None:
        ctx = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
        if options.ca_file:
            ctx.load_verify_locations(cafile=options.ca_file)
        else:
            ctx.load_default_certs()
        if not options.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if len(_contexts) >= MAX_CONTEXTS:
            _contexts.pop(next(iter(_contexts)))
        _contexts[key] = ctx
    return ctx


def keep_session(ctx: Optional[ssl.SSLContext], ssl_object: Any) -> Optional[bool]:
    """Keep the connection's session for the next run; whether this one was resumed (None: no TLS)."""
    if ssl_object is None:
        return None
    session = getattr(ssl_object, "session", None)
    if isinstance(ctx, ResumingContext) and session is not None and (session.has_ticket or session.id):
        ctx.session = session
    return bool(ssl_object.session_reused)


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
    tap: Optional[socket.socket] = None
    try:
        try:
            fields["connect_ms"] = round(await tcp.connect_once_on(sock, address, url.port, timeout), 3)
        except ProbeFailure:
            sock.close()
            raise
        # A second descriptor of the connection: its TCP_INFO still reads once the transport has
        # closed its own on the server's close (the connection ends when both are closed).
        tap = sock.dup()
        tls: Optional[ssl.SSLContext] = None
        if url.scheme == "https":
            tls = resuming_context(url, options) if options.resume_tls else tls_context(options)
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
        if tls:
            fields["tls_resumed"] = keep_session(tls, stream.get_extra_info("ssl_object"))
        counts = wire.tcp_counts(tap)
        if counts is not None:  # and the close that follows
            fields["wire_bytes"] = counts.wire() + wire.close_left(wire.tcp_state(tap), tls is not None)
    except asyncio.TimeoutError:
        raise ProbeFailure(TIMEOUT, f"{url.host} did not answer within {timeout:g} s") from None
    finally:
        if writer is not None:
            writer.close()
        else:
            sock.close()
        if tap is not None:
            tap.close()
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
