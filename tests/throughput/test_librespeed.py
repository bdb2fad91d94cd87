"""The http backend against a LibreSpeed install that is not ours: PHP names under /backend/,
bodies with no Content-Length (read to close, or chunked), a connection closed after each download.

The stand-in is a real HTTP server on loopback that serves only what LibreSpeed's PHP backend
serves (its documented behaviour: shared/notes/throughput-measured.md) and counts the body bytes
it sends and receives, so the bytes the client says a test cost can be checked against it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from agent.throughput import echoping, librespeed
from agent.throughput.estimator import BYTE_CAP

MIB = 1 << 20
CHUNK = bytes(range(256)) * (MIB // 256)


class PhpStyle(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    rbufsize = 0  # read no further than this request: a pipelined one stays in the kernel's buffer
    framing = "close"  # or "chunked"
    sent = 0
    received = 0
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path)
        if path.path == "/backend/empty.php":
            self.answer_empty()
        elif path.path == "/backend/garbage.php":
            self.garbage(int(parse_qs(path.query).get("ckSize", ["4"])[0]))
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/backend/empty.php":
            self.send_error(404)
            return
        left = int(self.headers.get("Content-Length", "0"))
        while left > 0:
            n = len(self.rfile.read(min(left, 256 * 1024)))
            if not n:
                return
            left -= n
            with self.lock:
                type(self).received += n
        self.answer_empty()

    def answer_empty(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "keep-alive")
        self.end_headers()

    def garbage(self, chunks: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if self.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        for _ in range(chunks):
            if self.framing == "chunked":
                self.wfile.write(b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n")
            else:
                self.wfile.write(CHUNK)
            with self.lock:
                type(self).sent += len(CHUNK)
        if self.framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client resets its connections when a phase ends: expected, not worth a traceback


@pytest.fixture(params=["close", "chunked"])
def php_server(request: pytest.FixtureRequest) -> Iterator[type[PhpStyle]]:
    handler = type("Handler", (PhpStyle,), {"framing": request.param, "sent": 0, "received": 0})
    server = QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


def test_a_php_librespeed_install_is_found_measured_and_its_bytes_counted(php_server):
    cap = 8_000_000
    settings = librespeed.Settings(byte_cap=cap, time_cap_s=5.0)
    m = asyncio.run(librespeed.measure(php_server.url, settings))
    down, up = m.down, m.up
    assert m.server == f"{php_server.url}/backend"  # found under /backend/, with the .php names
    assert len(m.idle_rtts) >= echoping.MIN_REPLIES and all(ms > 0 for ms in m.idle_rtts)
    assert down is not None and up is not None
    assert down.stop_reason == BYTE_CAP and down.bps and down.bps > 0
    # Every body byte the server sent was counted, across the connections it closed, plus the
    # request and response heads (under 1 kB each); nothing twice.
    assert php_server.sent > 0
    assert php_server.sent <= down.bytes_moved < php_server.sent + 64 * 1024
    assert php_server.received <= up.bytes_moved < php_server.received + 64 * 1024
    assert php_server.sent + php_server.received <= cap + MIB
