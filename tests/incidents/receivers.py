"""Local stand-ins for the notification channels: an HTTP receiver and an SMTP server with STARTTLS.

In a test process: ``HttpRecorder(host)`` and ``SmtpRecorder(host, cert, key)`` start threads and
record what they receive in ``.got`` (and in ``out``, a JSON-lines file, when given).
As a process (inside a network namespace)::

    python -m tests.incidents.receivers --http 192.0.2.2:8080 --smtp 192.0.2.2:2525 \\
        --cert server.pem --key server.key --out got.jsonl

The HTTP receiver answers the webhook, the Telegram Bot API's ``/bot<token>/sendMessage`` (with
``{"ok": true}``) and a WhatsApp gateway alike: it records method, path, headers and body. A
status code can be forced per path prefix (``fail``). The SMTP server speaks just enough
ESMTP for smtplib: EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import json
import socket
import ssl
import threading
import time
from typing import Any, Optional


class _Sink:
    def __init__(self, out: Optional[str]) -> None:
        self.got: list[dict[str, Any]] = []
        self.out = out
        self.lock = threading.Lock()

    def add(self, item: dict[str, Any]) -> None:
        item["at"] = time.time()
        with self.lock:
            self.got.append(item)
            if self.out:
                with open(self.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(item, ensure_ascii=False) + "\n")


class HttpRecorder(_Sink):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, out: Optional[str] = None) -> None:
        super().__init__(out)
        self.fail: dict[str, int] = {}  # path prefix -> status to answer instead
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = next((s for p, s in recorder.fail.items() if self.path.startswith(p)), 200)
                if status == 200:
                    recorder.add(
                        {"kind": "http", "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                         "body": body.decode("utf-8", errors="replace")}
                    )  # fmt: skip
                answer = b'{"ok": true}' if status == 200 else b'{"ok": false}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host, self.port = host, int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpRecorder(_Sink):
    def __init__(
        self, host: str, cert: str, key: str, port: int = 0, out: Optional[str] = None, require_tls: bool = True
    ) -> None:
        super().__init__(out)
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.require_tls = require_tls
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        f = conn.makefile("rb")
        tls, user, mail_from, rcpt = False, "", "", []

        def say(line: str) -> None:
            conn.sendall((line + "\r\n").encode())

        try:
            say("220 receiver.test ESMTP")
            while True:
                raw = f.readline()
                if not raw:
                    return
                line = raw.decode(errors="replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    extras = ["receiver.test", "AUTH PLAIN LOGIN" if tls else "STARTTLS"]
                    for e in extras:
                        say(f"250-{e}")
                    say("250 OK")
                elif verb == "STARTTLS":
                    say("220 go ahead")
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rb")
                    tls = True
                elif verb == "AUTH":
                    parts = line.split()
                    if parts[1].upper() == "PLAIN":
                        blob = parts[2] if len(parts) > 2 else ""
                        user = base64.b64decode(blob).split(b"\0")[1].decode() if blob else ""
                    else:  # LOGIN
                        say("334 VXNlcm5hbWU6")
                        user = base64.b64decode(f.readline().strip()).decode()
                        say("334 UGFzc3dvcmQ6")
                        f.readline()
                    say("235 ok")
                elif verb == "MAIL":
                    if self.require_tls and not tls:
                        say("530 must issue STARTTLS first")
                        continue
                    mail_from, rcpt = line.split(":", 1)[1].strip(), []
                    say("250 OK")
                elif verb == "RCPT":
                    rcpt.append(line.split(":", 1)[1].strip().strip("<>"))
                    say("250 OK")
                elif verb == "DATA":
                    say("354 end with .")
                    data = []
                    while True:
                        chunk = f.readline()
                        if chunk in (b".\r\n", b".\n", b""):
                            break
                        data.append(chunk.decode("utf-8", errors="replace").replace("\r\n", "\n"))
                    self.add({"kind": "smtp", "tls": tls, "user": user, "from": mail_from, "rcpt": rcpt,
                              "data": "".join(data)})  # fmt: skip
                    say("250 queued")
                elif verb == "QUIT":
                    say("221 bye")
                    return
                else:  # RSET, NOOP, ...
                    say("250 OK")
        except (OSError, ssl.SSLError, IndexError, ValueError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.stopping = True
        self.sock.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--http", default="")
    p.add_argument("--smtp", default="")
    p.add_argument("--cert", default="")
    p.add_argument("--key", default="")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.http:
        host, port = a.http.rsplit(":", 1)
        HttpRecorder(host, int(port), a.out)
    if a.smtp:
        host, port = a.smtp.rsplit(":", 1)
        SmtpRecorder(host, a.cert, a.key, int(port), a.out)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
