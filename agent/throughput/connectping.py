"""RTT from TCP handshakes to the test server, for backends that cannot ping inside their own protocol.

The SYN/SYN-ACK crosses the same queues as the test traffic, so during a
transfer it shows the queueing delay the transfer causes. No root needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


async def connect_rtt(host: str, port: int, timeout: float) -> float:
    t0 = time.perf_counter()
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    rtt = (time.perf_counter() - t0) * 1000.0
    writer.transport.abort()
    return rtt


async def sample(host: str, port: int, count: int, spacing: float = 0.05, timeout: float = 3.0) -> list[float]:
    out: list[float] = []
    for _ in range(count):
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            out.append(await connect_rtt(host, port, timeout))
        await asyncio.sleep(spacing)
    return out


async def sample_until_cancelled(host: str, port: int, into: list[float], spacing: float = 0.2) -> None:
    """Append RTTs to `into` until the task is cancelled (when the transfer ends)."""
    while True:
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            into.append(await connect_rtt(host, port, 5.0))
        await asyncio.sleep(spacing)
