"""Does the spool's fsync on the daemon's event loop skew the timings probes take at the same moment?

A Reading is appended with `synchronous=FULL`: its commit waits for an fsync of the WAL. On a Pi's
SD card that fsync takes 50-200 ms (the card's flash translation layer erases a block first); here
it is simulated by sleeping that long after each append's commit, in the thread that appends, which
is what a slow fsync does to that thread. (Patching `os.fsync` alone would not do: SQLite syncs from
C. It is patched too, for the high-water mark file, which is written through Python.) The RTTs are
taken on loopback, so anything more than a few ms above what the peer adds is the loop being busy,
not the network.

1. The mechanism, side by side in one run: a sampler (the tcp probe's connect, then the first byte
   from a server that answers 20 ms later, as a peer 20 ms away would) and an appender (one Reading
   every 0.5 s) share one asyncio loop; the append runs on the loop (as the daemon did) or in a
   single writer thread (as it does now).
2. The daemon as it is (`agent.daemon.Daemon`, in-process, no broker): a tcp target (20 connects a
   run, 50 ms apart), an http target (a loopback server) and a tcp target to a closed port
   appending two Readings a second; the Readings' connect_max_ms and ttfb_ms, fast and slow fsync.

`NETPROBE_BENCH_SECONDS` sets each run's length (default 8 for 1, 2.5 x that for 2).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import json
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

from agent.config import load_config
from agent.probes import tcp
from agent.publish import spool as spool_module
from agent.publish.spool import Spool
from agent.reading.model import Identity, Outcome, make_reading
from tests.helpers import free_port

NODE = "bench-node"
SITE = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
SECONDS = float(os.environ.get("NETPROBE_BENCH_SECONDS", "8"))
REAL_FSYNC = os.fsync
SKEWED_MS = 5.0  # a loopback connect or first byte above this waited for the loop, not the network


def slow(delay_s: float, real: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        time.sleep(delay_s)  # the fsync of a slow SD card: the calling thread waits
        return result

    return call


def summary(samples: list[float], base_ms: float = 0.0) -> str:
    """Median, p99, max, and how many samples are more than SKEWED_MS above what they should be."""
    if not samples:
        return "no samples"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    over = sum(1 for s in samples if s > base_ms + SKEWED_MS)
    return (
        f"n {len(samples):4d}  p50 {statistics.median(samples):6.2f}  p99 {p99:7.2f}  max {max(samples):7.2f} ms"
        f"  > +{SKEWED_MS:g} ms: {over:3d} ({100.0 * over / len(samples):4.1f} %)"
    )


# -- 1. the mechanism ---------------------------------------------------------------------------------
SERVER_DELAY_S = 0.02  # the exchange's stand-in for a remote round trip


@contextlib.contextmanager
def slow_server() -> Iterator[int]:
    """A TCP server that answers each connection with one byte after SERVER_DELAY_S, like a 20 ms RTT away."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.1)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            time.sleep(SERVER_DELAY_S)
            conn.sendall(b"x")

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        sock.close()


async def sample_exchanges(port: int, until: float) -> list[float]:
    """Connect (the tcp probe's own connect_once) and wait for the server's byte: ms from connect to byte."""
    loop = asyncio.get_running_loop()
    out = []
    while time.monotonic() < until:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            start = time.perf_counter()
            await tcp.connect_once_on(sock, "127.0.0.1", port, 1.0)
            await loop.sock_recv(sock, 1)
            out.append((time.perf_counter() - start) * 1000.0)
        finally:
            sock.close()
        await asyncio.sleep(0.005)
    return out


async def append_now_and_then(spool: Spool, writer: Optional[concurrent.futures.Executor], until: float) -> int:
    n = 0
    ident = Identity(NODE, SITE)
    while time.monotonic() < until - 0.5:
        await asyncio.sleep(0.5)
        reading = make_reading(ident, "tcp", "x", Outcome(True, {"connect_avg_ms": 1.0}), time.time(), 1.0, 0.1,
                               spool.next_seq(NODE))  # fmt: skip
        if writer is None:
            spool.append(reading, "t")  # on the loop: every task waits for the fsync
        else:
            writer.submit(spool.append, reading, "t")  # no await between the seq and the queue: order kept
        n += 1
    return n


def mechanism(tmp_path: Any, port: int, delay_s: float, where: str) -> tuple[list[float], int]:
    spool = Spool(str(tmp_path / f"m-{where}-{delay_s}" / "spool.sqlite3"))  # its own seq-hwm.json
    spool.append = slow(delay_s, spool.append)  # type: ignore[method-assign]
    writer = concurrent.futures.ThreadPoolExecutor(1) if where == "thread" else None

    async def run() -> tuple[list[float], int]:
        until = time.monotonic() + SECONDS
        tasks: list[Any] = [sample_exchanges(port, until)]
        if where != "none":
            tasks.append(append_now_and_then(spool, writer, until))
        got = await asyncio.gather(*tasks)
        return got[0], got[1] if len(got) > 1 else 0

    try:
        return asyncio.run(run())
    finally:
        if writer is not None:
            writer.shutdown(wait=True)
        spool.close()


def test_bench_fsync_on_the_loop_against_a_writer_thread(tmp_path, monkeypatch):
    print(f"\n== TCP connect + first byte from a server {SERVER_DELAY_S * 1000:g} ms away, {SECONDS:g} s a run, "
          "one Reading appended every 0.5 s ==")  # fmt: skip
    with slow_server() as port:
        samples, _ = mechanism(tmp_path, port, 0.0, "none")
        print(f"  no appends                      {summary(samples, SERVER_DELAY_S * 1000)}")
        for delay in (0.05, 0.1, 0.2):
            monkeypatch.setattr(spool_module.os, "fsync", slow(delay, REAL_FSYNC))
            for where in ("loop", "thread"):
                samples, n = mechanism(tmp_path, port, delay, where)
                print(
                    f"  fsync {delay * 1000:3.0f} ms, append in {where:6s}  {summary(samples, SERVER_DELAY_S * 1000)}  ({n} appends)"
                )
    assert samples


# -- 2. the daemon as it is ---------------------------------------------------------------------------------
def daemon_toml(state: Any, tcp_addr: str, http_url: str) -> str:
    closed = f"127.0.0.1:{free_port()}"
    return f"""
[node]
id = "{NODE}"
state_dir = "{state}"
[site]
kecamatan = "Sekayu"
desa = "Balai Agung"
[daemon]
splay = 0
jitter = 0
host_interval = 0
[linktype]
enabled = false
[usage]
reading_interval = 0
[[targets]]
kind = "tcp"
name = "measured"
target = "{tcp_addr}"
interval = 1.5
timeout = 1.0
count = 20
packet_interval = 0.05
[[targets]]
kind = "http"
name = "web"
target = "{http_url}"
interval = 1.0
timeout = 0.8
[[targets]]
kind = "tcp"
name = "noise"
target = "{closed}"
interval = 0.5
timeout = 0.2
count = 1
"""


def run_daemon(tmp_path: Any, tcp_addr: str, http_url: str, delay_s: float, seconds: float) -> list[dict[str, Any]]:
    from agent.daemon.daemon import Daemon

    d = tmp_path / f"daemon-{delay_s}"
    d.mkdir()
    cfg_path = d / "agent.toml"
    cfg_path.write_text(daemon_toml(d / "state", tcp_addr, http_url))
    out = io.StringIO()
    daemon = Daemon(load_config(str(cfg_path)), str(cfg_path), out)

    async def run() -> None:
        runner = asyncio.ensure_future(daemon.run())
        await asyncio.sleep(seconds)
        assert daemon.stopping is not None
        daemon.stopping.set()
        await runner

    asyncio.run(run())
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_bench_the_daemons_timings_with_a_slow_fsync(tmp_path, tcp_listener, http_server, monkeypatch):
    seconds = 2.5 * SECONDS
    http_url = f"http://{http_server.address}/ok"
    print(f"\n== the daemon, {seconds:g} s a run: per Reading, tcp connect_max_ms (20 connects) and http ttfb_ms ==")
    real_append = Spool.append
    for delay in (0.0, 0.1, 0.2):
        monkeypatch.setattr(Spool, "append", slow(delay, real_append))
        monkeypatch.setattr(spool_module.os, "fsync", slow(delay, REAL_FSYNC))
        readings = run_daemon(tmp_path, tcp_listener.address, http_url, delay, seconds)
        measured = [r["fields"]["connect_max_ms"] for r in readings if r["target"] == tcp_listener.address and r["ok"]]
        web = [r["fields"]["ttfb_ms"] for r in readings if r["measurement"] == "http" and r["ok"]]
        label = f"fsync {delay * 1000:3.0f} ms"
        print(f"  {label}  tcp connect_max  {summary(measured)}")
        print(f"  {'':14s}  http ttfb        {summary(web)}  ({len(readings)} Readings)")
        assert measured and web


if __name__ == "__main__":
    pytest.main([__file__, "-s", "-p", "no:cacheprovider", "-o", "python_files=bench_*.py"])


# -- 3. what the damage check costs at open, and a rebuild ---------------------------------------------------
def test_bench_open_check_and_rebuild_of_a_full_spool(tmp_path):
    """The daemon runs SQLite's quick_check at every open; a full spool (max_rows, 100,000 Readings) is
    the worst case. Warm page cache here: on an SD card it is the time to read the file once."""
    from agent.publish.spool import rebuild
    from tests.publish.test_spool_damage import damage_middle, fill

    n = int(os.environ.get("NETPROBE_BENCH_ROWS", "100000"))
    path = tmp_path / "state" / "spool.sqlite3"
    spool = fill(path, 0)
    spool.db.execute("PRAGMA synchronous=OFF")
    ident = Identity(NODE, SITE)
    reading = make_reading(
        ident, "tcp", "127.0.0.1:9", Outcome(True, {"connect_avg_ms": 1.0}), time.time(), 1.0, 0.001, 1
    )
    with spool.transaction():  # one transaction: filling is not what is measured
        for seq in range(1, n + 1):
            spool.db.execute(
                "INSERT INTO readings (topic, payload, node, seq) VALUES (?, ?, ?, ?)",
                ("t", reading.to_json().replace('"seq":1,', f'"seq":{seq},').encode(), NODE, seq),
            )
        spool.db.execute("INSERT INTO seqs (node, last) VALUES (?, ?)", (NODE, n))
    spool.close()
    size = path.stat().st_size
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        Spool(str(path), check=True).close()
        timings.append(time.perf_counter() - start)
    plain = []
    for _ in range(3):
        start = time.perf_counter()
        Spool(str(path)).close()
        plain.append(time.perf_counter() - start)
    damage_middle(path, 3)
    start = time.perf_counter()
    rebuilt, saved, _ = rebuild(str(path))
    took = time.perf_counter() - start
    rebuilt.close()
    print(f"\n== a full spool: {n} Readings, {size / 1e6:.1f} MB ==")
    print(
        f"  open with quick_check: {statistics.median(timings):.2f} s (without: {statistics.median(plain) * 1000:.1f} ms)"
    )
    print(f"  rebuild after 3 damaged pages: {took:.2f} s ({saved.kept} kept, {saved.lost} lost)")
    assert saved.kept + saved.lost == n
