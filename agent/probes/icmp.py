"""ICMP echo: RTT statistics, jitter, loss and loss bursts to one host.

Requests are paced on an absolute schedule, like iputils ping, and replies are
received concurrently, so a lost packet never stalls the next request. The
session (`agent.net.echo`) opens an unprivileged ICMP datagram socket where
`net.ipv4.ping_group_range` allows it, else a raw one (root or CAP_NET_RAW).

Fields: sent, received, loss_pct, loss_burst_max (on loss), duplicates, late,
rtt_{min,avg,max,mdev,p50,p90,p99}_ms, jitter_ms, socket ("dgram" or "raw"),
rx_time ("kernel": replies timestamped by the kernel as they arrived; "user":
the kernel refused timestamps (qemu-user, some kernels), so replies were timed
when the agent read them, which adds the event loop's delay to the RTT).
"""

from __future__ import annotations

import dataclasses
import socket

from agent import stats
from agent.net.echo import EchoSession, EchoTally, schedule
from agent.probes.base import Probe, ProbeContext
from agent.reading.model import TIMEOUT, UNREACHABLE, FieldValue, Outcome, ProbeFailure
from agent.schema import setting


@dataclasses.dataclass(frozen=True)
class Options:
    count: int = setting(5, min=1, max=10000, help="echo requests per run")
    packet_interval: float = setting(0.2, min=0.002, max=60.0, help="seconds between requests")
    payload_size: int = setting(56, min=0, max=1472, help="ICMP payload bytes")
    socket: str = setting("auto", choices=("auto", "dgram", "raw"), help="auto tries dgram, then raw")


def outcome(tally: EchoTally, target: str, **labels: FieldValue) -> Outcome:
    """The run's statistics; no reply at all is a failure, told apart as unreachable or timeout."""
    fields = stats.summarize(tally.samples())
    fields.update({"duplicates": tally.duplicates, "late": tally.late, **labels})
    if fields["received"]:
        return Outcome(ok=True, fields=fields)
    if tally.unreachable_from:
        return Outcome.failed(UNREACHABLE, f"{target} is unreachable (reported by {tally.unreachable_from})", **fields)
    return Outcome.failed(TIMEOUT, f"no reply from {target} to {fields['sent']} echo requests", **fields)


async def ping(
    host: str,
    count: int = 5,
    packet_interval: float = 0.2,
    timeout: float = 2.0,
    payload_size: int = 56,
    mode: str = "auto",
) -> Outcome:
    """Ping one host. Network conditions become the Outcome; only setup raises ProbeFailure."""
    session = await EchoSession.open(host, timeout, mode, expected=count)
    try:
        async for _ in schedule(count, packet_interval):
            session.send(payload_size)
        if session.send_error and session.echo_id is None:  # not one request left this host
            no_route = session.family == socket.AF_INET6
            reason = "this host has no IPv6 route" if no_route else session.send_error
            raise ProbeFailure(UNREACHABLE, f"cannot send to {session.address}: {reason}")
        await session.wait(timeout)
    finally:
        session.close()
    target = host if host == session.address else f"{host} ({session.address})"
    return outcome(session.tally, target, socket=session.mode, rx_time=session.rx_time)


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    return await ping(target, options.count, options.packet_interval, timeout, options.payload_size, options.socket)


PROBE = Probe(
    kind="icmp",
    summary="ICMP echo RTT, jitter and loss",
    options=Options,
    run=run,
    interval_s=60.0,
    timeout_s=2.0,
)
