"""Latency under load by ICMP echo, where the server answers it.

A TCP ping (an HTTP request on a connection of its own) whose packet a full
queue drops waits for a retransmission, 200 ms or more, and reads as queueing
that is not there: on a 2 Mbit/s link with a 15 ms queue, HTTP pings read
about 85 ms over idle right after slow start. A dropped echo is only lost, so
every answered echo measures the queue it crossed.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from agent.probes import icmp
from agent.probes.base import ProbeFailure


class EchoPinger:
    def __init__(self, echoes: icmp.Echoes) -> None:
        self.echoes = echoes
        self.seq = 0

    @classmethod
    async def open(cls, host: str, timeout: float) -> Optional[EchoPinger]:
        """None where this process may not send ICMP (no ping group, no CAP_NET_RAW) or has no route."""
        try:
            return cls(await icmp.Echoes.open(host, timeout, icmp.EchoTally(timeout)))
        except ProbeFailure:
            return None

    def send(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) & 0xFFFF
        self.echoes.send(seq)
        return seq

    async def every(self, interval_s: float, t0: float, sent: list[tuple[float, int]]) -> None:
        """Send an echo every interval until cancelled, noting (seconds since t0, sequence)."""
        loop = asyncio.get_running_loop()
        while True:
            sent.append((loop.time() - t0, self.send()))
            await asyncio.sleep(interval_s)

    async def settle(self, timeout: float) -> None:
        """Wait for the replies still on their way (at most timeout)."""
        await self.echoes.wait(timeout)

    def answered(self, sent: list[tuple[float, int]]) -> list[tuple[float, float]]:
        """(time sent, RTT ms) of the echoes that came back; the lost ones are left out."""
        rtts = self.echoes.tally.rtt_ms
        return [(t, rtts[seq]) for t, seq in sent if seq in rtts]

    def close(self) -> None:
        self.echoes.close()
