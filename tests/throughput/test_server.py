"""`netprobe speed-server` as its own process on loopback: the LibreSpeed protocol and its limits."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import zlib

MIB = 1 << 20


def get(srv, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    conn.request(method, path, body=body or None, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_garbage_is_n_mib_of_incompressible_data_that_differs_chunk_to_chunk(speed_server):
    srv = speed_server()
    resp, data = get(srv, "GET", "/garbage?ckSize=3")
    assert resp.status == 200 and len(data) == 3 * MIB
    assert len(zlib.compress(data, 6)) > 0.99 * len(data)
    assert data[:MIB] != data[MIB : 2 * MIB] != data[2 * MIB :]
    _, again = get(srv, "GET", "/garbage?ckSize=1")
    assert again != data[:MIB]  # offsets rotate between requests too


def test_php_and_backend_names_answer_and_cors_is_open(speed_server):
    srv = speed_server()
    for path in ("/garbage.php?ckSize=1", "/backend/garbage.php?ckSize=1", "/empty.php", "/backend/empty.php"):
        resp, _ = get(srv, "GET", path)
        assert resp.status == 200, path
        assert resp.getheader("Access-Control-Allow-Origin") == "*"
        assert "no-store" in resp.getheader("Cache-Control")
    resp, _ = get(srv, "OPTIONS", "/empty")
    assert resp.status == 204 and "POST" in resp.getheader("Access-Control-Allow-Methods")
    assert get(srv, "GET", "/nothing-here")[0].status == 404


def test_uploads_are_discarded_and_acknowledged_and_getip_names_the_client(speed_server):
    srv = speed_server()
    resp, body = get(srv, "POST", "/empty", b"x" * (5 * MIB))
    assert resp.status == 200 and body == b""
    resp, body = get(srv, "POST", "/speedtest/upload.php", b"y" * 1000)
    assert body == b"size=1000"
    assert get(srv, "GET", "/speedtest/latency.txt")[1] == b"test=test\n"
    resp, body = get(srv, "GET", "/speedtest/random350x350.jpg")
    assert resp.getheader("Content-Type") == "image/jpeg" and len(body) == 2 * 350 * 350
    assert json.loads(get(srv, "GET", "/getIP")[1])["processedString"] == "127.0.0.1"


def test_clients_beyond_the_limit_get_503(speed_server):
    srv = speed_server("--max-clients", "2")
    holders = [socket.create_connection((srv.host, srv.port)) for _ in range(2)]
    try:
        time.sleep(0.3)
        resp, _ = get(srv, "GET", "/empty")
        assert resp.status == 503 and resp.getheader("Retry-After")
    finally:
        for s in holders:
            s.close()
    time.sleep(0.3)
    assert get(srv, "GET", "/empty")[0].status == 200  # the slots are free again
    srv.proc.terminate()
    out, _ = srv.proc.communicate(timeout=5)
    assert "refused_busy=1 " in out  # the refusal is counted and reported on stop


def test_oversized_requests_are_refused_without_reading_them(speed_server):
    srv = speed_server("--max-request-mb", "2")
    assert get(srv, "GET", "/garbage?ckSize=2")[0].status == 200
    assert get(srv, "GET", "/garbage?ckSize=3")[0].status == 413
    assert get(srv, "GET", "/speedtest/random4000x4000.jpg")[0].status == 413
    with socket.create_connection((srv.host, srv.port), timeout=5) as s:
        s.sendall(b"POST /empty HTTP/1.1\r\nHost: x\r\nContent-Length: 3145728\r\n\r\n")
        head = s.recv(4096)  # answered at once, before any body was sent
    assert head.startswith(b"HTTP/1.1 413")
    assert get(srv, "GET", "/garbage?ckSize=abc")[0].status == 400
    with socket.create_connection((srv.host, srv.port), timeout=5) as s:
        s.sendall(b"POST /empty HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 411")


def test_a_slowloris_client_is_dropped_and_others_are_still_served(speed_server):
    srv = speed_server("--head-timeout", "1")
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    s.sendall(b"GET /empty HTTP/1.1\r\n")
    t0 = time.monotonic()
    answer = b""
    try:
        for i in range(20):  # one header line every 0.25 s: never a complete head
            s.sendall(f"X-Slow-{i}: a\r\n".encode())
            time.sleep(0.25)
    except (BrokenPipeError, ConnectionResetError):
        pass
    else:
        raise AssertionError("the server kept a slowloris connection open for 5 s")
    finally:
        with contextlib.suppress(OSError):
            answer = s.recv(4096)
        s.close()
    assert time.monotonic() - t0 < 3.0
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    assert get(srv, "GET", "/empty")[0].status == 200


def test_a_shared_token_is_required_when_set_and_never_shown(speed_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    srv = speed_server("--token-file", str(token_file))
    assert get(srv, "GET", "/garbage?ckSize=1")[0].status == 403
    assert get(srv, "GET", "/empty?token=wrong")[0].status == 403
    assert get(srv, "GET", "/empty?token=s3cret-token")[0].status == 200
    assert get(srv, "GET", "/empty", headers={"Authorization": "Bearer s3cret-token"})[0].status == 200
    srv.proc.terminate()
    _, err = srv.proc.communicate(timeout=5)
    assert "s3cret" not in err


def test_bad_listen_address_is_one_line_and_exit_64():
    r = subprocess.run([sys.executable, "-m", "agent", "speed-server", "--listen", "nowhere"],
                       capture_output=True, text=True, timeout=20)  # fmt: skip
    assert r.returncode == 64
    assert r.stderr.strip().splitlines() == ["netprobe: bad --listen 'nowhere': expected HOST:PORT, e.g. 0.0.0.0:8989"]


def test_a_port_in_use_is_a_clear_error(speed_server):
    srv = speed_server()
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "agent", "speed-server", "--listen", f"127.0.0.1:{srv.port}"],
                       capture_output=True, text=True, timeout=20, env=env)  # fmt: skip
    assert r.returncode == 1 and "cannot listen on 127.0.0.1" in r.stderr and "Traceback" not in r.stderr
