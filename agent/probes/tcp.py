"""TCP connect time to host:port: the fallback where ICMP is filtered (common on cellular).

Each attempt is one handshake, closed at once. Refused, timed out and
unreachable are told apart in the error code.

Fields: sent, received, loss_pct, connect_{min,avg,max,mdev,p50,p90,p99}_ms, jitter_ms, port.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import socket
import time
from typing import Optional

from agent import stats
from agent.net import iface
from agent.net.hostport import split_host_port
from agent.probes.base import Probe, ProbeContext
from agent.reading.model import REFUSED, TIMEOUT, UNREACHABLE, Outcome, ProbeError, ProbeFailure
from agent.schema import setting

UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}


@dataclasses.dataclass(frozen=True)
class Options:
    count: int = setting(3, min=1, max=100, help="connections per run")
    packet_interval: float = setting(0.2, min=0.0, max=60.0, help="seconds between connections")
    port: int = setting(443, min=1, max=65535, help="port when the target has none")


async def connect_once(address: str, port: int, family: int, timeout: float) -> float:
    """One handshake, closed at once; returns milliseconds or raises ProbeFailure."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        return await connect_once_on(sock, address, port, timeout)
    finally:
        sock.close()


async def connect_once_on(sock: socket.socket, address: str, port: int, timeout: float) -> float:
    """Connect a non-blocking socket the caller owns; milliseconds, or ProbeFailure."""
    loop = asyncio.get_running_loop()
    family = sock.family
    try:
        start = time.perf_counter()
        await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout)
        return (time.perf_counter() - start) * 1000.0
    except asyncio.TimeoutError:
        raise ProbeFailure(TIMEOUT, f"no answer from {address}:{port} within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise ProbeFailure(REFUSED, f"{address}:{port} refused the connection (host up, port closed)") from None
    except OSError as exc:
        if exc.errno in UNREACHABLE_ERRNOS:
            why = "this host has no IPv6 route" if family == socket.AF_INET6 else exc.strerror
            raise ProbeFailure(UNREACHABLE, f"{address}:{port} is unreachable: {why}") from None
        raise ProbeFailure(UNREACHABLE, f"{address}:{port}: {exc.strerror or exc}") from None


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    host, port = split_host_port(target, options.port)
    address, family = await iface.resolve(host, timeout)
    samples: list[Optional[float]] = []
    last_error: Optional[ProbeError] = None
    start = time.monotonic()
    for i in range(options.count):
        delay = start + i * options.packet_interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            samples.append(await connect_once(address, port, family, timeout))
        except ProbeFailure as exc:
            samples.append(None)
            last_error = ProbeError(exc.code, exc.message)
    fields = stats.summarize(samples, prefix="connect")
    fields["port"] = port
    if fields["received"] or last_error is None:
        return Outcome(ok=True, fields=fields)
    return Outcome(ok=False, fields=fields, error=last_error)


PROBE = Probe(
    kind="tcp",
    summary="TCP connect time; refused, timeout and unreachable told apart",
    options=Options,
    run=run,
    interval_s=60.0,
    timeout_s=3.0,
)
