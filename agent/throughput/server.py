"""`netprobe speed-server`: a LibreSpeed-compatible speed test server, asyncio and the stdlib only.

A regency can host it itself and test against it at a cost it chooses. It
answers the LibreSpeed names in all three styles (`/garbage`, `/garbage.php`,
`/backend/garbage.php`) with CORS for any origin, so a LibreSpeed web page can
use it too, and the legacy Ookla paths (`/speedtest/random{N}x{N}.jpg`,
`/speedtest/upload.php`, `/speedtest/latency.txt`), so speedtest-cli can be
pointed at it.

Download data comes from one random buffer made at start and served at
rotating offsets: incompressible, and no `os.urandom` per request.

A public instance must not be held by a few idle or hostile clients, so every
connection is bounded: a client limit (503 beyond it) and a share per source
address (429 beyond it; an IPv6 client counts by its /64), an idle timeout
before and between requests, a deadline for the whole request head (a
slowloris client is cut however slowly it dribbles), a stall timeout on every
read and write, a size limit per request (413, before a byte moves), and an
optional shared token asked on every request but a CORS preflight, which is
answered and closed. Every number in a query or a header is ASCII digits
(`httphead.parse_number`); anything else is a 400.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import json
import logging
import os
import re
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from agent.net import hostport, httphead

log = logging.getLogger(__name__)

MIB = 1 << 20
POOL_BYTES = 4 * MIB
STRIDE = 1_048_573  # a prime step between chunk offsets, so consecutive chunks differ
MAX_HEAD_BYTES = 16 * 1024
DEFAULT_PORT = 8989
LEGACY_JPG = re.compile(r"^/speedtest/random([0-9]{2,4})x\1\.jpg$")  # [0-9]: \d takes other scripts' digits
CORS = (
    "Access-Control-Allow-Origin: *\r\n"
    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
    "Access-Control-Allow-Headers: Content-Encoding, Content-Type, Authorization\r\n"
)
NO_CACHE = "Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\nPragma: no-cache\r\n"
REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclasses.dataclass(frozen=True)
class Limits:
    max_clients: int = 32
    # Connections from one address (an IPv6 /64): a test holds its streams and a ping connection
    # (4 + 1 by default), twice over for a moment while one phase's close and the next's open.
    max_per_address: int = 10
    max_request_bytes: int = 256 * MIB  # one download (ckSize x 1 MiB) or one upload body
    idle_timeout_s: float = 5.0  # for the first byte of a request, the first one or the next one
    head_timeout_s: float = 10.0  # the whole request head, however slowly it trickles in
    stall_timeout_s: float = 15.0  # no progress on a read or write for this long: dropped
    request_timeout_s: float = 300.0  # one request's body, start to end
    token: str = ""  # when set: "Authorization: Bearer <token>" or ?token=<token>


@dataclasses.dataclass
class Stats:
    connections: int = 0
    refused_busy: int = 0
    refused_per_address: int = 0
    dropped_idle: int = 0
    dropped_slow: int = 0
    bad_requests: int = 0
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


class Drop(Exception):
    """End this connection, optionally after one short error response."""

    def __init__(self, status: Optional[int] = None, why: str = "") -> None:
        super().__init__(why)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    keep_alive: bool


def parse_head(head: bytes) -> Request:
    """The request a head asks for; a malformed one (bad Content-Length included) is a 400."""
    try:
        method, target, version, headers = httphead.parse_request(head)
    except ValueError as exc:
        raise Drop(400, str(exc)) from None
    parts = urlsplit(target)
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    return Request(method.upper(), canonical_path(parts.path), parse_qs(parts.query), headers, keep_alive)


def canonical_path(path: str) -> str:
    """/backend/garbage.php, /garbage.php and /garbage are one endpoint."""
    if path.startswith("/backend/"):
        path = path[len("/backend") :]
    if path.endswith(".php") and not path.startswith("/speedtest/"):
        path = path[:-4]
    return path


def address_key(peer: object) -> str:
    """Whose share a connection counts against: its IPv4 address, or its IPv6 /64, since one
    host can take any address of its /64."""
    host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def legacy_jpg_size(n: int) -> int:
    """speedtest.net's random{N}x{N}.jpg files weigh about two bytes per pixel."""
    return 2 * n * n


class SpeedServer:
    def __init__(self, limits: Limits = Limits(), pool: Optional[bytes] = None) -> None:
        self.limits = limits
        self.stats = Stats()
        self.active = 0
        self.per_address: dict[str, int] = {}
        buf = pool if pool is not None else os.urandom(POOL_BYTES)
        # The pool plus a copy of its first MiB, so any offset yields a whole MiB without wrapping.
        self.pool = memoryview(buf + buf[:MIB])
        self.pool_size = len(buf)
        self.offset = 0
        self.server: Optional[asyncio.AbstractServer] = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self.server = await asyncio.start_server(self.handle, host, port, limit=MAX_HEAD_BYTES, backlog=128)
        addr = self.server.sockets[0].getsockname()
        return str(addr[0]), int(addr[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            await self.server.wait_closed()

    def chunk(self) -> memoryview:
        start = self.offset
        self.offset = (self.offset + STRIDE) % self.pool_size
        return self.pool[start : start + MIB]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        peer = writer.get_extra_info("peername")
        key = address_key(peer)
        if self.per_address.get(key, 0) >= self.limits.max_per_address:
            self.stats.refused_per_address += 1
            writer.write(self.head(429, 0, keep_alive=False, extra="Retry-After: 10\r\n"))
            await self.finish(writer)
            return
        if self.active >= self.limits.max_clients:
            self.stats.refused_busy += 1
            writer.write(self.head(503, 0, keep_alive=False, extra="Retry-After: 60\r\n"))
            await self.finish(writer)
            return
        self.active += 1
        self.per_address[key] = self.per_address.get(key, 0) + 1
        self.writers.add(writer)
        writer.transport.set_write_buffer_limits(high=4 * MIB)
        try:
            while await self.serve_one(reader, writer, peer):
                pass
        except Drop as exc:
            log.debug("dropping %s: %s", peer, exc)
            if exc.status == 400:
                self.stats.bad_requests += 1
            if exc.status is not None:
                writer.write(self.head(exc.status, 0, keep_alive=False))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went, or the server is shutting down
        finally:
            self.active -= 1
            self.per_address[key] -= 1
            if not self.per_address[key]:
                del self.per_address[key]
            self.writers.discard(writer)
            await self.finish(writer)

    async def finish(self, writer: asyncio.StreamWriter) -> None:
        try:
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (ConnectionError, asyncio.TimeoutError, OSError):
            pass

    async def read_head(self, reader: asyncio.StreamReader) -> Optional[bytes]:
        """The next request head, or None when the client closed or sent nothing for the idle
        timeout. From its first byte the whole head must come within the head deadline."""
        try:
            first = await asyncio.wait_for(reader.read(1), self.limits.idle_timeout_s)
        except asyncio.TimeoutError:
            self.stats.dropped_idle += 1
            return None  # idle before or between requests: closed quietly, its slot freed
        if not first:
            return None
        try:
            rest = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.limits.head_timeout_s)
        except asyncio.TimeoutError:
            self.stats.dropped_slow += 1
            raise Drop(408, "request head too slow") from None
        except asyncio.LimitOverrunError:
            raise Drop(431, "request head too large") from None
        return first + rest

    async def serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object) -> bool:
        head = await self.read_head(reader)
        if head is None:
            return False
        req = parse_head(head)
        self.stats.requests += 1
        if req.method == "OPTIONS":
            # A CORS preflight carries no token (browsers send none with it), so it is answered
            # without one and the connection closes: it never holds a slot. The page's real
            # request comes on a new connection, with the token.
            writer.write(self.head(204, 0, False, "Access-Control-Max-Age: 600\r\n"))
            await self.drain(writer)
            return False
        self.check_token(req)
        if req.path == "/garbage" and req.method == "GET":
            await self.send_garbage(writer, req)
        elif req.path in ("/empty", "/speedtest/upload.php") and req.method in ("GET", "POST"):
            size = await self.discard_body(reader, req) if req.method == "POST" else 0
            body = f"size={size}".encode() if req.path == "/speedtest/upload.php" else b""
            writer.write(self.head(200, len(body), req.keep_alive) + body)
        elif req.path == "/getIP" and req.method == "GET":
            ip = peer[0] if isinstance(peer, tuple) else ""
            body = json.dumps({"processedString": ip, "rawIspInfo": ""}).encode()
            writer.write(self.head(200, len(body), req.keep_alive, "Content-Type: application/json\r\n") + body)
        elif req.path == "/speedtest/latency.txt" and req.method == "GET":
            writer.write(self.head(200, 10, req.keep_alive, "Content-Type: text/plain\r\n") + b"test=test\n")
        elif LEGACY_JPG.match(req.path) and req.method == "GET":
            match = LEGACY_JPG.match(req.path)
            assert match is not None
            await self.send_random(writer, req, legacy_jpg_size(int(match.group(1))), "image/jpeg")
        else:
            status = 405 if req.path in ("/garbage", "/empty", "/getIP") else 404
            raise Drop(status, f"{req.method} {req.path}")
        await self.drain(writer)
        return req.keep_alive

    def check_token(self, req: Request) -> None:
        """Before any work, on every path (an unknown one too, so a prober learns nothing)."""
        token = self.limits.token
        if not token:
            return
        auth = req.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else (req.query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Drop(403, "bad or missing token")

    async def send_garbage(self, writer: asyncio.StreamWriter, req: Request) -> None:
        raw = (req.query.get("ckSize") or ["4"])[0]
        try:
            chunks = httphead.parse_number(raw, "ckSize")
        except ValueError as exc:
            raise Drop(400, str(exc)) from None
        if chunks < 1:
            raise Drop(400, "ckSize 0")
        await self.send_random(writer, req, chunks * MIB, "application/octet-stream")

    async def send_random(self, writer: asyncio.StreamWriter, req: Request, size: int, ctype: str) -> None:
        if size > self.limits.max_request_bytes:
            raise Drop(413, f"{size} bytes asked")
        extra = f"Content-Type: {ctype}\r\nContent-Disposition: attachment; filename=random.dat\r\n"
        writer.write(self.head(200, size, req.keep_alive, extra))
        left = size
        while left > 0:
            piece = self.chunk()[: min(left, MIB)]
            writer.write(piece)
            left -= len(piece)
            self.stats.bytes_sent += len(piece)
            await self.drain(writer)

    async def drain(self, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(writer.drain(), self.limits.stall_timeout_s)
        except asyncio.TimeoutError:
            self.stats.dropped_slow += 1
            raise Drop(None, "client stopped reading") from None

    async def discard_body(self, reader: asyncio.StreamReader, req: Request) -> int:
        size = httphead.content_length(req.headers)  # checked when the head was parsed
        if size is None:
            raise Drop(411, "upload without Content-Length")
        if size > self.limits.max_request_bytes:
            raise Drop(413, f"{size} bytes offered")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.request_timeout_s
        left = size
        while left > 0:
            wait = min(self.limits.stall_timeout_s, deadline - loop.time())
            try:
                got = await asyncio.wait_for(reader.read(min(left, MIB)), max(wait, 0.0))
            except asyncio.TimeoutError:
                self.stats.dropped_slow += 1
                raise Drop(408, "upload stalled") from None
            if not got:
                raise ConnectionResetError("client went away mid-upload")
            left -= len(got)
            self.stats.bytes_received += len(got)
        return size

    @staticmethod
    def head(status: int, length: int, keep_alive: bool, extra: str = "") -> bytes:
        conn = "keep-alive" if keep_alive else "close"
        return (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Length: {length}\r\n"
            f"Connection: {conn}\r\n{CORS}{NO_CACHE}{extra}\r\n"
        ).encode("latin-1")


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT or :PORT (all interfaces); port 0 takes any free port."""
    try:
        return hostport.split(text, any_host="0.0.0.0", lowest_port=0)
    except ValueError:
        raise ValueError(f"bad --listen '{text}': expected HOST:PORT, e.g. 0.0.0.0:{DEFAULT_PORT}") from None
