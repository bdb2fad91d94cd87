"""The `http` backend: a LibreSpeed-compatible client (our speed-server, or any LibreSpeed install).

Several streams download `/garbage?ckSize=N` and upload to `/empty` while a
separate connection pings `/empty`, first idle and then under load. Goodput is
read from the kernel's TCP counters every SAMPLE_S (data held out of order
included: see tcpinfo) and handed to the estimator, which drops the slow-start
warm-up and says when to stop. Requests are sized from an Allowance, so the
byte cap holds by construction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import ssl
import time
from typing import Callable, NamedTuple, Optional

from agent.net.hostport import parse_url
from agent.reading.model import HTTP_ERROR, ProbeFailure
from agent.throughput import tcpinfo
from agent.throughput.echoping import EchoPinger
from agent.throughput.estimator import BYTE_CAP, SERVER_END, Allowance, RateEstimator, StopRules
from agent.throughput.httpconn import Connection, expect_ok
from agent.throughput.result import Phase

log = logging.getLogger(__name__)

MIB = 1 << 20
SAMPLE_S = 0.1
MAX_CHUNKS_PER_REQUEST = 16
PIPELINE = 2  # requests in flight per stream, once its connection has shown it stays open
IDLE_PINGS = 5
PATH_STYLES = ("", "/backend")  # base/garbage ..., base/backend/garbage.php ...

Progress = Callable[[str, float, Optional[float]], None]  # (direction, seconds, bit/s)


@dataclasses.dataclass(frozen=True)
class Settings:
    streams: int = 4
    time_cap_s: float = 10.0
    byte_cap: Optional[int] = None
    upload: bool = True
    upload_share: float = 0.3  # of the byte cap kept back for the upload
    stable_pct: float = 3.0
    stable_span_s: float = 1.5
    token: str = ""
    verify_tls: bool = True
    ca_file: str = ""
    timeout: float = 10.0
    ping_interval_s: float = 0.2


@dataclasses.dataclass
class Endpoint:
    scheme: str
    host: str
    port: int
    base: str  # path prefix, no trailing slash
    php: bool = False  # /empty.php rather than /empty

    def path(self, name: str, query: str = "") -> str:
        p = f"{self.base}/{name}{'.php' if self.php else ''}"
        return f"{p}?{query}" if query else p

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.base}"


def parse_base(url: str) -> Endpoint:
    """The server's base from its URL (scheme optional), with a LibreSpeed handler name dropped."""
    u = parse_url(url if "://" in url else f"http://{url}")
    base = u.path.partition("?")[0].rstrip("/")
    for suffix in ("/empty.php", "/empty", "/garbage.php", "/garbage"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return Endpoint(u.scheme, u.host, u.port, base)


class Client:
    def __init__(self, endpoint: Endpoint, settings: Settings, progress: Optional[Progress] = None) -> None:
        self.ep = endpoint
        self.s = settings
        self.progress = progress
        self.tls: Optional[ssl.SSLContext] = None
        if endpoint.scheme == "https":
            self.tls = ssl.create_default_context(cafile=settings.ca_file or None)
            if not settings.verify_tls:
                self.tls.check_hostname = False
                self.tls.verify_mode = ssl.CERT_NONE
        self.pool = memoryview(os.urandom(MIB))
        self.extra_bytes = 0  # pings and probes outside the phases
        self.echo: Optional[EchoPinger] = None
        self.rtt_method = "http"  # how idle and loaded RTT were measured: "icmp" where echoes come back

    async def connect(self) -> Connection:
        return await Connection.open(self.ep.host, self.ep.port, self.tls, self.s.timeout, self.ep.host_header)

    async def find_style(self, conn: Connection) -> Connection:
        """Go-style (/empty) or PHP-style (/empty.php, /backend/empty.php) names: the first that answers."""
        for base in (self.ep.base, *(self.ep.base + b for b in PATH_STYLES[1:])):
            for php in (False, True):
                candidate = dataclasses.replace(self.ep, base=base, php=php)
                status = await conn.request("GET", candidate.path("empty"), self.s.timeout, self.s.token)
                if not conn.reusable:
                    conn.close()
                    conn = await self.connect()
                if status == 200:
                    self.ep = candidate
                    return conn
                if status in (403, 429, 503):  # it is a server, and it says no: say why
                    expect_ok(status, f"{self.ep}")
        raise ProbeFailure(HTTP_ERROR, f"{self.ep} does not answer as a LibreSpeed server (no /empty)")

    async def ping(self, line: PingLine, timeout: float) -> float:
        """One HTTP ping in ms. A server that closed the line after its last answer (PHP's built-in
        server closes after every response) gets a new connection first; only the request is
        timed, not the handshake, so a ping is one round trip whatever the server does."""
        if not line.conn.reusable:
            self.extra_bytes += line.reopen(await self.connect())
        t0 = time.perf_counter()
        path = self.ep.path("empty", f"r={time.monotonic_ns()}")
        status = await line.conn.request("GET", path, timeout, self.s.token)
        expect_ok(status, "ping")
        return (time.perf_counter() - t0) * 1000.0

    async def measure(self) -> tuple[Optional[Phase], Optional[Phase], list[float]]:
        conn = await self.find_style(await self.connect())
        self.echo = await EchoPinger.open(self.ep.host, self.s.timeout)
        try:
            return await self.measure_on(conn)
        finally:
            if self.echo:
                self.echo.close()

    async def idle_rtts(self, line: PingLine) -> tuple[list[float], float]:
        """(idle RTTs by the method the loaded ones will use, the HTTP idle RTT in ms).

        Echoes go out beside the HTTP pings; if too few come back
        (a server behind a firewall that drops ICMP), the HTTP pings measure the load too.
        """
        http: list[float] = []
        sent: list[tuple[float, int]] = []
        for _ in range(IDLE_PINGS):
            if self.echo:
                sent.append((0.0, self.echo.send()))
            http.append(await self.ping(line, self.s.timeout))
            await asyncio.sleep(0.05)
        http_ms = sorted(http)[len(http) // 2]
        if self.echo:
            echoed = await self.echo.idle_rtts(sent, min(self.s.timeout, 0.5 + 2 * http_ms / 1000.0))
            if echoed:
                self.rtt_method = "icmp"
                return echoed, http_ms
            self.echo.close()
            self.echo = None
        return http, http_ms

    async def measure_on(self, conn: Connection) -> tuple[Optional[Phase], Optional[Phase], list[float]]:
        line = PingLine(conn)
        try:
            idle, idle_ms = await self.idle_rtts(line)
        finally:
            self.extra_bytes += line.close()
        rules = StopRules(
            stable_pct=self.s.stable_pct, span_s=self.s.stable_span_s, time_cap_s=self.s.time_cap_s
        ).for_rtt(idle_ms)
        cap = self.s.byte_cap
        reserve = int(cap * self.s.upload_share) if cap is not None and self.s.upload else 0
        down_allow = Allowance(None if cap is None else cap - reserve, MIB)
        down = await self.phase("download", down_allow, rules, idle_ms)
        up = None
        if self.s.upload:
            up_allow = Allowance(None if cap is None else max(0, cap - down.bytes_moved), MIB)
            if cap is None or up_allow.cap:
                up = await self.phase("upload", up_allow, rules, idle_ms)
            else:
                up = Phase(None, 0, 0.0, 0, BYTE_CAP)
        return down, up, idle

    async def phase(self, direction: str, allowance: Allowance, rules: StopRules, idle_ms: float) -> Phase:
        """One direction. Without echoes its HTTP pings get a fresh connection, as a cancelled
        ping leaves one unusable."""
        ping_line: Optional[PingLine] = None
        conns = await asyncio.gather(*(self.connect() for _ in range(self.s.streams + (0 if self.echo else 1))))
        if not self.echo:
            ping_conn, *conns = conns
            ping_line = PingLine(ping_conn)
        streams = [Stream(c) for c in conns]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        worker = self.download if direction == "download" else self.upload
        tasks = [asyncio.ensure_future(worker(s, allowance)) for s in streams]
        rtts: list[tuple[float, float]] = []  # (seconds into the phase, RTT ms)
        echoes: list[tuple[float, int]] = []  # (seconds into the phase, sequence)
        if self.echo:
            pinger = asyncio.ensure_future(self.echo.every(self.s.ping_interval_s, t0, echoes))
        else:
            assert ping_line is not None
            timeout = max(2.0, idle_ms * 8 / 1000.0)
            pinger = asyncio.ensure_future(self.ping_loop(ping_line, rtts, t0, timeout))
        est = RateEstimator(rules)
        reason = SERVER_END
        try:
            while True:
                await asyncio.wait(tasks, timeout=SAMPLE_S)
                t = loop.time() - t0
                est.add(t, sum(s.goodput(direction) for s in streams))
                if self.progress:
                    self.progress(direction, t, est.estimate_bps)
                if all(task.done() for task in tasks):
                    reason = BYTE_CAP if allowance.exhausted else SERVER_END
                    break
                stop = est.stop_reason(t)
                if stop:
                    reason = stop
                    break
            failures = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
            moved = sum(s.moved() for s in streams)
            if failures and est.samples[-1][1] == 0:
                raise failures[0]  # type: ignore[misc]
            if self.echo:
                rtts = self.echo.answered(echoes)
            return Phase(
                bps=est.estimate_bps,
                bytes_moved=moved,
                seconds=round(t, 3),
                streams=len(streams),
                stop_reason=reason,
                warmup_s=est.warmup_s,
                loaded_rtts=loaded(rtts, est.warmup_s),
            )
        finally:
            pinger.cancel()
            for task in tasks:
                task.cancel()
            for s in streams:
                s.conn.close(abort=True)
            await asyncio.gather(pinger, *tasks, return_exceptions=True)
            if ping_line:
                self.extra_bytes += ping_line.close(abort=True)

    async def ping_loop(self, line: PingLine, rtts: list[tuple[float, float]], t0: float, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sent = loop.time() - t0
            rtts.append((sent, await self.ping(line, timeout)))
            await asyncio.sleep(self.s.ping_interval_s)

    async def download(self, s: Stream, allowance: Allowance) -> None:
        """Requests are pipelined two deep: a stream never idles between responses, which on a
        600 ms path would cost an RTT and, after the idle, slow start all over again."""
        want, pending = 1, 0

        def top_up() -> None:
            nonlocal want, pending
            while pending < s.depth and s.conn.reusable:
                n = allowance.take(want)
                if n == 0:
                    return
                query = f"ckSize={n}&r={time.monotonic_ns()}"
                s.conn.send_head("GET", self.ep.path("garbage", query), token=self.s.token)
                pending += 1
                want = min(want * 2, MAX_CHUNKS_PER_REQUEST)

        while True:
            top_up()
            if pending == 0:
                if s.conn.reusable or allowance.exhausted:
                    return
                s.retire(await self.connect())  # the server closed after a response: go on anew
                continue
            status, headers = await s.conn.read_head(self.s.timeout)
            expect_ok(status, f"download from {self.ep}")
            top_up()  # the head said the connection stays open: the next request goes before this body
            await s.conn.read_body(headers, self.s.timeout, s.count)
            pending -= 1
            if not s.conn.reusable:
                pending = 0  # requests behind a "Connection: close" are never answered

    async def upload(self, s: Stream, allowance: Allowance) -> None:
        """POSTs go back to back; each answer is read once the next body is on its way."""
        tcpinfo.limit_unsent(s.conn.sock)
        want, pending = MIB, 0
        while True:
            n = allowance.take_bytes(want) if s.conn.reusable else 0
            if n:
                path = self.ep.path("empty", f"r={time.monotonic_ns()}")
                s.conn.send_head("POST", path, length=n, token=self.s.token)
                left = n
                while left > 0:
                    piece = self.pool[: min(left, MIB)]
                    s.conn.writer.write(piece)
                    s.count(len(piece))
                    left -= len(piece)
                    await asyncio.wait_for(s.conn.writer.drain(), self.s.timeout)
                pending += 1
                want = min(want * 2, MAX_CHUNKS_PER_REQUEST * MIB)
            if pending and (pending >= s.depth or not n):
                status, headers = await s.conn.read_head(self.s.timeout)
                expect_ok(status, f"upload to {self.ep}")
                await s.conn.read_body(headers, self.s.timeout, lambda _n: None)
                pending -= 1
                if not s.conn.reusable:
                    pending = 0
            if not n and not pending:
                if s.conn.reusable or allowance.exhausted:
                    return
                s.retire(await self.connect())
                tcpinfo.limit_unsent(s.conn.sock)


def loaded(rtts: list[tuple[float, float]], warmup_s: Optional[float]) -> list[float]:
    """RTTs sent once the transfer was up to speed: the queue a steady transfer keeps, not its ramp."""
    after = [ms for t, ms in rtts if warmup_s is not None and t >= warmup_s]
    return after or [ms for _, ms in rtts]


class PingLine:
    """The connection HTTP pings go on, replaced when the server closes it; counts what it cost."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def reopen(self, new: Connection) -> int:
        """Swap in a new connection; the bytes the old one moved."""
        moved = self.close()
        self.conn = new
        return moved

    def close(self, abort: bool = False) -> int:
        """Close the connection; the bytes it moved (the kernel's count, 0 where there is none)."""
        counters = self.conn.counters()
        self.conn.close(abort)
        return counters.moved if counters else 0


class Stream:
    """One TCP stream's bytes: the kernel's counts where it has them, else what the client read or wrote."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.app_bytes = 0
        self.arrivals = tcpinfo.Arrivals()
        self.retired = tcpinfo.Counts(0, 0, 0, 0)  # earlier connections of this stream
        self.retired_arrived = 0
        self.last = tcpinfo.Counts(0, 0, 0, 0)

    def count(self, n: int) -> None:
        self.app_bytes += n

    @property
    def depth(self) -> int:
        """Requests to have in flight: PIPELINE once the server has shown it keeps the connection open."""
        return PIPELINE if self.conn.kept_open else 1

    def _kernel(self) -> Optional[tcpinfo.Counts]:
        c = self.conn.counters()
        if c is not None:
            self.last = c
        return c

    def goodput(self, direction: str) -> int:
        """Bytes for the rate: what reached the far end, in order or not."""
        c = self._kernel()
        if c is None:
            return self.app_bytes
        if direction == "upload":
            return self.retired.delivered + c.delivered
        return self.retired_arrived + self.arrivals.bytes(c)

    def moved(self) -> int:
        c = self._kernel() or self.last
        if c.moved == 0 and self.app_bytes:
            return self.app_bytes
        return self.retired.moved + c.moved

    def retire(self, new: Connection) -> None:
        """The server closed after a response; carry the old connection's counts over."""
        c = self._kernel() or self.last
        self.retired = tcpinfo.Counts(*(a + b for a, b in zip(self.retired, c)))
        self.retired_arrived += self.arrivals.bytes(c)
        self.arrivals = tcpinfo.Arrivals()
        self.last = tcpinfo.Counts(0, 0, 0, 0)
        self.conn.close()
        self.conn = new


class Measured(NamedTuple):
    down: Optional[Phase]
    up: Optional[Phase]
    idle_rtts: list[float]
    server: str  # as found: the path style the server answered to
    extra_bytes: int  # pings and probes outside the phases
    rtt_method: str  # "icmp" or "http"


async def measure(url: str, settings: Settings, progress: Optional[Progress] = None) -> Measured:
    client = Client(parse_base(url), settings, progress)
    down, up, idle = await client.measure()
    return Measured(down, up, idle, str(client.ep), client.extra_bytes, client.rtt_method)
