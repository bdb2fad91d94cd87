"""`netprobe speed-server` on loopback, pinned to one core: download and upload Mbit/s.

Target: >= 500 Mbit/s on one core. The server runs as its own process on CPU 0; the
clients are curl (a neutral peer, not our client) on the other CPU, 4 at a time.
Run with `make bench`; the figures go to the README.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import free_port

MIB = 1 << 20
CLIENTS = 4
RUNS = 5
DOWNLOAD_CHUNKS = 100  # MiB per client per run
UPLOAD_BYTES = 64 * MIB


def curl_many(argv_for: list[list[str]]) -> tuple[float, int]:
    """Run the curls at once on CPU 1; (seconds, bytes moved)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["taskset", "-c", "1", *argv], stdout=subprocess.PIPE, text=True) for argv in argv_for]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    elapsed = time.perf_counter() - t0
    moved = sum(int(float(o.split()[0])) for o in outs)
    assert all(p.returncode == 0 for p in procs)
    return elapsed, moved


@pytest.mark.skipif(shutil.which("curl") is None or (os.cpu_count() or 1) < 2, reason="needs curl and 2 CPUs")
def test_bench_speed_server_on_one_core(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "agent", "speed-server", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None and "listening" in server.stdout.readline()
    body = tmp_path / "upload.bin"
    body.write_bytes(os.urandom(UPLOAD_BYTES))
    base = f"http://127.0.0.1:{port}"
    down_argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", f"{base}/garbage?ckSize={DOWNLOAD_CHUNKS}"]
    up_argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{size_upload}", "-H", "Content-Type: application/octet-stream",
               "--data-binary", f"@{body}", f"{base}/empty"]  # fmt: skip
    down, up = [], []
    try:
        for _ in range(RUNS):
            secs, moved = curl_many([down_argv] * CLIENTS)
            assert moved == CLIENTS * DOWNLOAD_CHUNKS * MIB
            down.append(moved * 8 / secs / 1e6)
            secs, moved = curl_many([up_argv] * CLIENTS)
            assert moved == CLIENTS * UPLOAD_BYTES
            up.append(moved * 8 / secs / 1e6)
    finally:
        server.terminate()
        server.wait(5)
    print()
    print(f"speed-server, loopback, 1 core, {CLIENTS} curl clients, median of {RUNS}:")
    print(f"  download /garbage : {statistics.median(down):8.0f} Mbit/s  (runs: {', '.join(f'{v:.0f}' for v in down)})")
    print(f"  upload   /empty   : {statistics.median(up):8.0f} Mbit/s  (runs: {', '.join(f'{v:.0f}' for v in up)})")
    print("  target            :      500 Mbit/s")
