"""The http backend against a PHP LibreSpeed backend served by PHP's own built-in server (`php -S`).

`php -S` answers every request with `Connection: close` and sends no Content-Length for a
script's output, so each request costs a connection and each body ends at the close. The
two scripts below are written for this test and do what LibreSpeed's PHP backend does:
`garbage.php?ckSize=N` streams N MiB of random bytes (N capped), `empty.php` takes a POSTed
body and answers 200. Each appends what it sent or received to a tally file, so the bytes
the client says a test cost can be checked against what the server moved.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.probes import throughput as probe
from agent.throughput import librespeed
from tests.helpers import free_port, requires_tool

pytestmark = requires_tool("php")

MIB = 1 << 20
HEADS = 64 * 1024  # request and response heads on top of the bodies, a few hundred bytes each

GARBAGE_PHP = r"""<?php
// N MiB of bytes that do not compress, written as they are made: no Content-Length, so the
// body ends when the connection does.
$chunks = 4;
$asked = $_GET['ckSize'] ?? '';
if (is_string($asked) && ctype_digit($asked) && strlen($asked) <= 4) {
    $chunks = max(1, min(1024, (int) $asked));
}
header('Content-Type: application/octet-stream');
header('Content-Disposition: attachment; filename=random.dat');
header('Cache-Control: no-store, no-cache, must-revalidate, max-age=0');
header('Pragma: no-cache');
while (ob_get_level() > 0) {
    ob_end_clean();
}
$block = random_bytes(1 << 20);
$tally = dirname(__DIR__, 2) . '/tally';
for ($i = 0; $i < $chunks; $i++) {
    echo $block;
    flush();
    if (connection_aborted()) {
        break;
    }
    file_put_contents($tally, "sent " . strlen($block) . "\n", FILE_APPEND | LOCK_EX);
}
"""

EMPTY_PHP = r"""<?php
// Takes whatever was POSTed, counts it and throws it away; an empty 200 either way.
$got = 0;
$in = fopen('php://input', 'rb');
while (!feof($in)) {
    $got += strlen(fread($in, 65536));
}
fclose($in);
if ($got > 0) {
    file_put_contents(dirname(__DIR__, 2) . '/tally', "received $got\n", FILE_APPEND | LOCK_EX);
}
header('Cache-Control: no-store, no-cache, must-revalidate, max-age=0');
header('Pragma: no-cache');
"""


@dataclass
class PhpBackend:
    url: str
    tally: Path

    def moved(self, what: str) -> int:
        """Body bytes the scripts say they sent ("sent") or received ("received")."""
        if not self.tally.exists():
            return 0
        lines = self.tally.read_text().split()
        return sum(int(n) for word, n in zip(lines[::2], lines[1::2]) if word == what)


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"php -S exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("php -S did not listen within 10 s")


@pytest.fixture
def php_backend(tmp_path: Path) -> Iterator[PhpBackend]:
    """`php -S` on loopback serving www/backend/{garbage,empty}.php, as a PHP LibreSpeed install
    is laid out. post_max_size is raised so empty.php sees every body (uploads go up to 16 MiB
    per request; over PHP's 8 MB default the body is dropped before the script runs)."""
    backend = tmp_path / "www" / "backend"
    backend.mkdir(parents=True)
    (backend / "garbage.php").write_text(GARBAGE_PHP)
    (backend / "empty.php").write_text(EMPTY_PHP)
    port = free_port()
    php = shutil.which("php") or "php"
    argv = [php, "-d", "post_max_size=64M", "-S", f"127.0.0.1:{port}", "-t", str(tmp_path / "www")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield PhpBackend(f"http://127.0.0.1:{port}", tmp_path / "tally")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["icmp", "http"])
def rtt_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Latency by echo where it comes back, else by HTTP pings (which then open a connection each)."""
    if request.param == "http":

        async def no_echo(host: str, timeout: float) -> None:
            return None

        monkeypatch.setattr(librespeed.EchoPinger, "open", no_echo)
    return str(request.param)


def test_a_php_builtin_server_that_closes_every_connection_is_measured_both_ways_and_every_byte_counted(
    php_backend: PhpBackend, rtt_by: str
) -> None:
    options = probe.Options(max_mb=24.0, max_seconds=8.0)
    fields = asyncio.run(probe.measure(php_backend.url, options, timeout=30.0))
    assert fields["server"] == f"{php_backend.url}/backend"  # found under /backend/, .php names
    assert fields["rtt_method"] == rtt_by
    assert fields["stop_reason_down"] == fields["stop_reason_up"] == "byte_cap", fields
    down_mbps, up_mbps = fields["download_mbps"], fields["upload_mbps"]
    assert isinstance(down_mbps, float) and isinstance(up_mbps, float) and down_mbps > 0 and up_mbps > 0, fields
    # Every body byte the server moved was counted once, across the connections it closed,
    # plus the heads; and the test kept to its byte cap (plus one 1-MiB chunk).
    sent, received = php_backend.moved("sent"), php_backend.moved("received")
    down_bytes, up_bytes = fields["bytes_down_phase"], fields["bytes_up_phase"]
    assert isinstance(down_bytes, int) and isinstance(up_bytes, int)
    assert sent > 10 * MIB and received > 4 * MIB, (sent, received)
    assert sent <= down_bytes < sent * 1.02 + HEADS, (sent, down_bytes)
    assert received <= up_bytes < received * 1.02 + HEADS, (received, up_bytes)
    assert sent + received <= 24_000_000 + MIB
