"""A minimal keep-alive HTTP/1.1 client connection for the speed test: requests, heads, bodies.

Small on purpose: speed test bodies are read and thrown away, counted as they
come, in Content-Length, chunked or read-to-close framing (LibreSpeed's PHP
backend sends no Content-Length).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Callable, Optional

from agent import __version__
from agent.net.httphead import content_length, parse_number, parse_response
from agent.reading.model import (
    HTTP_ERROR,
    PROTOCOL_ERROR,
    REFUSED,
    RESOLVE_FAILED,
    TIMEOUT,
    TLS_ERROR,
    UNREACHABLE,
    ProbeFailure,
)
from agent.throughput import tcpinfo

READ_SIZE = 256 * 1024
MAX_HEAD = 64 * 1024
NONE, LENGTH, CHUNKED, TO_CLOSE = "none", "length", "chunked", "to-close"  # how a body ends


def framing_of(status: int, headers: dict[str, str]) -> str:
    if status in (204, 304) or 100 <= status < 200:
        return NONE
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return CHUNKED
    if content_length(headers) is not None:
        return LENGTH
    return TO_CLOSE  # LibreSpeed's PHP garbage.php behind a server that neither chunks nor keeps alive


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host_header: str) -> None:
        self.reader = reader
        self.writer = writer
        self.host_header = host_header
        self.reusable = True
        self.framing = NONE
        self.answers = 0  # response heads read on this connection

    @classmethod
    async def open(
        cls, host: str, port: int, tls: Optional[ssl.SSLContext], timeout: float, host_header: str
    ) -> Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None, limit=MAX_HEAD),
                timeout,
            )
        except asyncio.TimeoutError:
            raise ProbeFailure(TIMEOUT, f"no connection to {host}:{port} within {timeout:g} s") from None
        except ConnectionRefusedError:
            raise ProbeFailure(REFUSED, f"{host}:{port} refused the connection") from None
        except ssl.SSLError as exc:
            raise ProbeFailure(TLS_ERROR, f"TLS with {host} failed: {exc.reason or exc}") from None
        except socket.gaierror as exc:
            raise ProbeFailure(RESOLVE_FAILED, f"cannot resolve {host}: {exc.strerror}") from None
        except OSError as exc:
            raise ProbeFailure(UNREACHABLE, f"cannot reach {host}:{port}: {exc.strerror or exc}") from None
        return cls(reader, writer, host_header)

    @property
    def sock(self) -> Optional[socket.socket]:
        return self.writer.get_extra_info("socket")

    def counters(self) -> Optional[tcpinfo.Counts]:
        return tcpinfo.counters(self.sock)

    def send_head(self, method: str, path: str, length: Optional[int] = None, token: str = "") -> None:
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host_header}",
            f"User-Agent: netprobe/{__version__}",
            "Accept: */*",
            "Accept-Encoding: identity",
            "Cache-Control: no-cache",
        ]
        if length is not None:
            lines += [f"Content-Length: {length}", "Content-Type: application/octet-stream"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def read_head(self, timeout: float) -> tuple[int, dict[str, str]]:
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        except asyncio.TimeoutError:
            raise ProbeFailure(TIMEOUT, f"no answer within {timeout:g} s") from None
        except asyncio.IncompleteReadError:
            raise ProbeFailure(PROTOCOL_ERROR, "the server closed the connection without answering") from None
        except ConnectionError:
            raise ProbeFailure(PROTOCOL_ERROR, "the server reset the connection without answering") from None
        except asyncio.LimitOverrunError:
            raise ProbeFailure(PROTOCOL_ERROR, "response head too large") from None
        status, headers = parse_response(head)
        self.answers += 1
        self.framing = framing_of(status, headers)
        if headers.get("connection", "").lower() == "close" or self.framing == TO_CLOSE:
            self.reusable = False  # known from the head, before the body: see kept_open
        return status, headers

    @property
    def kept_open(self) -> bool:
        """A response head showed the server keeps this connection open. Until then, send one
        request at a time: a server that closes after each response (PHP's built-in server does)
        and finds a second request unread closes with a reset, which throws away the first
        response's data."""
        return self.answers > 0 and self.reusable

    async def read_body(self, headers: dict[str, str], timeout: float, on_bytes: Callable[[int], None]) -> None:
        """Read and discard the body of the response whose head was just read, reporting its size as it arrives."""
        if self.framing == LENGTH:
            await self._read_exactly(content_length(headers) or 0, timeout, on_bytes)
        elif self.framing == CHUNKED:
            await self._read_chunked(timeout, on_bytes)
        elif self.framing == TO_CLOSE:
            while True:
                data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
                if not data:
                    return
                on_bytes(len(data))

    async def _read_exactly(self, n: int, timeout: float, on_bytes: Callable[[int], None]) -> None:
        while n > 0:
            data = await asyncio.wait_for(self.reader.read(min(n, READ_SIZE)), timeout)
            if not data:
                raise ProbeFailure(PROTOCOL_ERROR, "the server closed the connection mid-body")
            n -= len(data)
            on_bytes(len(data))

    async def _read_chunked(self, timeout: float, on_bytes: Callable[[int], None]) -> None:
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            try:
                size = parse_number(line.split(b";")[0].strip().decode("latin-1"), "chunk size", base=16)
            except ValueError:
                raise ProbeFailure(PROTOCOL_ERROR, "bad chunk size in a chunked body") from None
            if size == 0:
                while (await asyncio.wait_for(self.reader.readline(), timeout)) not in (b"\r\n", b""):
                    pass
                return
            await self._read_exactly(size, timeout, on_bytes)
            await asyncio.wait_for(self.reader.readexactly(2), timeout)

    async def request(self, method: str, path: str, timeout: float, token: str = "") -> int:
        """A small request whose body is ignored; returns the status."""
        self.send_head(method, path, 0 if method == "POST" else None, token)
        status, headers = await self.read_head(timeout)
        await self.read_body(headers, timeout, lambda n: None)
        return status

    def close(self, abort: bool = False) -> None:
        if abort:
            tcpinfo.abort(self.sock)
        self.writer.close()


def expect_ok(status: int, what: str) -> None:
    if status == 403:
        raise ProbeFailure(HTTP_ERROR, f"{what}: HTTP 403 (the server wants a token)")
    if status == 429:
        raise ProbeFailure(HTTP_ERROR, f"{what}: HTTP 429 (the server takes no more connections from this address)")
    if status == 503:
        raise ProbeFailure(HTTP_ERROR, f"{what}: HTTP 503 (the server is busy)")
    if status != 200:
        raise ProbeFailure(HTTP_ERROR, f"{what}: HTTP {status}")
