"""Latency under load by ICMP echo, where the server answers it.

A TCP ping (an HTTP request on a connection of its own) whose packet a full
queue drops waits for a retransmission, 200 ms or more, and reads as queueing
that is not there: on a 2 Mbit/s link with a 15 ms queue, HTTP pings read
about 85 ms over idle right after slow start. A dropped echo is only lost, so
every answered echo measures the queue it crossed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Optional, TypeVar

from agent.net.echo import EchoSession, schedule
from agent.reading.model import ProbeFailure
from agent.throughput import connectping

T = TypeVar("T")
MIN_REPLIES = 3  # of the idle echoes, for ICMP to measure the RTTs


class EchoPinger:
    """Echoes beside a transfer: a few idle ones first, then one every interval under load."""

    def __init__(self, session: EchoSession) -> None:
        self.session = session

    @classmethod
    async def open(cls, host: str, timeout: float) -> Optional[EchoPinger]:
        """None where this process may not send ICMP (no ping group, no CAP_NET_RAW) or has no route."""
        try:
            return cls(await EchoSession.open(host, timeout))
        except ProbeFailure:
            return None

    def send(self) -> int:
        return self.session.send()

    async def every(self, interval_s: float, t0: float, sent: list[tuple[float, int]]) -> None:
        """Send an echo every interval until cancelled, noting (seconds since t0, sequence)."""
        loop = asyncio.get_running_loop()
        async for _ in schedule(None, interval_s):
            sent.append((loop.time() - t0, self.send()))

    async def idle_rtts(self, sent: list[tuple[float, int]], timeout: float) -> Optional[list[float]]:
        """The RTTs of the idle echoes `sent`, once their replies are in (at most timeout), or None
        if fewer than MIN_REPLIES came back: the server does not answer ICMP, so echoes cannot
        measure the load either."""
        await self.session.wait(timeout)
        echoed = [ms for _, ms in self.answered(sent)]
        return echoed if len(echoed) >= MIN_REPLIES else None

    def answered(self, sent: list[tuple[float, int]]) -> list[tuple[float, float]]:
        """(time sent, RTT ms) of the echoes that came back; the lost ones are left out."""
        rtts = self.session.tally.rtt_ms
        return [(t, rtts[seq]) for t, seq in sent if seq in rtts]

    def close(self) -> None:
        self.session.close()


class ServerRtt:
    """Idle and loaded RTT for backends that cannot ping inside their own protocol (speedtest-cli,
    iperf3): ICMP echoes where they come back, else TCP handshakes to the server's port."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.echo: Optional[EchoPinger] = None
        self.method = "tcp"

    async def idle(self, count: int = 5, spacing_s: float = 0.05) -> list[float]:
        self.echo = await EchoPinger.open(self.host, 3.0)
        if self.echo:
            sent = []
            for _ in range(count):
                sent.append((0.0, self.echo.send()))
                await asyncio.sleep(spacing_s)
            echoed = await self.echo.idle_rtts(sent, 2.0)
            if echoed:
                self.method = "icmp"
                return echoed
            self.close()
        return await connectping.sample(self.host, self.port, count, spacing_s)

    async def during(self, work: Awaitable[T], interval_s: float = 0.2) -> tuple[T, list[float]]:
        """Run `work` while sampling the RTT; its result and the RTTs in ms."""
        handshakes: list[float] = []
        echoes: list[tuple[float, int]] = []
        if self.echo:
            pinger = asyncio.ensure_future(self.echo.every(interval_s, 0.0, echoes))
        else:
            pinger = asyncio.ensure_future(connectping.sample_until_cancelled(self.host, self.port, handshakes))
        try:
            result = await work
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)
        return result, [ms for _, ms in self.echo.answered(echoes)] if self.echo else handshakes

    def close(self) -> None:
        if self.echo:
            self.echo.close()
            self.echo = None
