"""The server namespace's services, in one process: TCP echo, DNS, HTTP and HTTPS.

(Kernel ICMP echo needs nothing.) Run inside the server namespace from the repository root:
    python -m tests.testbed.services --ip ADDR --cert PEM --key PEM
It prints "ready" once every port listens. Control is JSON lines on stdin, "ok" on stdout:
    {"dns_broken": true}   -> the resolver keeps receiving queries and stops answering
EOF on stdin ends the process.

HTTP paths: /            200, a short text
            /generate_204 204
            /wait/<ms>    200 after <ms> of server time (to check ttfb = RTT + server time)
            /bytes/<n>    200 with n bytes (at most 100 MB)
DNS: every A query is answered with --ip (TTL 60), names under .invalid get NXDOMAIN, other
types get an empty NOERROR. Ports 7, 53, 80 and 443 are taken; every other port is free.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORTS = {"tcp": 7, "dns": 53, "http": 80, "https": 443}
MAX_BYTES = 100 << 20


class State:
    dns_broken = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "netprobe-testbed"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if self.path == "/":
            self.reply(200, b"netprobe testbed\n")
        elif self.path == "/generate_204":
            self.reply(204)
        elif len(parts) == 2 and parts[0] == "wait" and parts[1].isdigit():
            time.sleep(int(parts[1]) / 1000.0)
            self.reply(200, b"ok\n")
        elif len(parts) == 2 and parts[0] == "bytes" and parts[1].isdigit():
            self.reply(200, b"\0" * min(int(parts[1]), MAX_BYTES))
        else:
            self.reply(404, b"not found\n")

    do_HEAD = do_GET


class TLSServer(ThreadingHTTPServer):
    """The handshake runs in the request's own thread, so a slow client never blocks accept()."""

    ssl_context: ssl.SSLContext

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # before the session tickets go out
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_dns(sock: socket.socket, address: str) -> None:
    import dns.message
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    while True:
        wire, client = sock.recvfrom(4096)
        if State.dns_broken:
            continue
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            continue  # not DNS: ignore, as a real resolver would
        response = dns.message.make_response(query)
        if query.question:
            question = query.question[0]
            name = question.name.to_text().lower()
            if name.endswith(".invalid.") or name == "invalid.":
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, "A", address))
        sock.sendto(response.to_wire(), client)


def start(args: argparse.Namespace) -> None:
    ThreadingHTTPServer.daemon_threads = True
    http = ThreadingHTTPServer(("0.0.0.0", PORTS["http"]), Handler)
    https = TLSServer(("0.0.0.0", PORTS["https"]), Handler)
    https.daemon_threads = True
    https.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    https.ssl_context.load_cert_chain(args.cert, args.key)
    echo = EchoServer(("0.0.0.0", PORTS["tcp"]), Echo)
    dns_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns_sock.bind(("0.0.0.0", PORTS["dns"]))
    for target in (http.serve_forever, https.serve_forever, echo.serve_forever):
        threading.Thread(target=target, daemon=True).start()
    threading.Thread(target=serve_dns, args=(dns_sock, args.ip), daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ip", required=True, help="the address every A query resolves to")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    with contextlib.suppress(OSError):  # ahead of other tests' load, so server time stays what was asked
        os.setpriority(os.PRIO_PROCESS, 0, -10)  # before any thread starts: threads inherit it
    start(args)
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            message = json.loads(line)
            if "dns_broken" in message:
                State.dns_broken = bool(message["dns_broken"])
            print("ok", flush=True)
        except ValueError as exc:
            print(f"error: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
