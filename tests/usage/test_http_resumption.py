"""HTTPS checks that do not pay a full handshake every time: TLS session resumption, and their bytes."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.probes import http
from agent.reading.model import Identity, Reading
from agent.runner import adhoc_target, run_target

IDENTITY = Identity(node="muba-sekayu-balai-agung-01", site={"kecamatan": "Sekayu", "desa": "Balai Agung"})


def probe(target: str, **options: Any) -> Reading:
    return asyncio.run(run_target(adhoc_target("http", target, 3.0, **options), IDENTITY))


def test_the_second_check_resumes_the_session_and_skips_the_certificate(https_server: Any, tls_files: Any) -> None:
    http._contexts.clear()
    url = f"https://localhost:{https_server.port}/ok"
    runs = [probe(url, ca_file=tls_files.ca) for _ in range(3)]
    assert all(r.ok for r in runs), [r.error for r in runs]
    assert [r.fields["tls_resumed"] for r in runs] == [False, True, True]
    first, again = runs[0].fields["wire_bytes"], runs[1].fields["wire_bytes"]
    # The fixture's chain is one small EC certificate; a public chain saves 3-5 kB more.
    assert again < first - 400, (first, again)
    assert 1000 < first < 6000 and again > 500
    assert "cert_days_left" in runs[0].fields


def test_resumption_off_pays_the_full_handshake_each_time(https_server: Any, tls_files: Any) -> None:
    url = f"https://localhost:{https_server.port}/ok"
    runs = [probe(url, ca_file=tls_files.ca, resume_tls=False) for _ in range(2)]
    assert [r.fields["tls_resumed"] for r in runs] == [False, False]
    assert abs(runs[0].fields["wire_bytes"] - runs[1].fields["wire_bytes"]) < 200


def test_plain_http_has_wire_bytes_and_no_tls_fields(http_server: Any) -> None:
    r = probe(f"http://127.0.0.1:{http_server.port}/ok")
    assert r.ok and "tls_resumed" not in r.fields
    body = r.fields["bytes"]  # plus the request, the headers and ten or so segments' headers
    assert body + 400 < r.fields["wire_bytes"] < body + 1500
