"""ICMP echo: RTT statistics, jitter, loss and loss bursts to one host.

Requests are paced on an absolute schedule, like iputils ping, and replies are
received concurrently, so a lost packet never stalls the next request. icmplib
builds and parses the packets and opens the socket: first an unprivileged
ICMP datagram socket (allowed by `net.ipv4.ping_group_range`), then a raw
socket (root or CAP_NET_RAW).

Fields: sent, received, loss_pct, loss_burst_max (on loss), duplicates, late,
rtt_{min,avg,max,mdev,p50,p90,p99}_ms, jitter_ms, socket ("dgram" or "raw").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import socket
import struct
import time
from typing import Any, Optional

from agent import stats
from agent.net import iface
from agent.probes.base import (
    PERMISSION,
    TIMEOUT,
    UNREACHABLE,
    Outcome,
    Probe,
    ProbeContext,
    ProbeFailure,
)
from agent.schema import setting

ICMP_FIX_HINT = (
    "ICMP needs an unprivileged ping socket or CAP_NET_RAW: either widen the ping group range "
    "(sysctl -w net.ipv4.ping_group_range='0 2147483647') or grant the capability "
    "(setcap cap_net_raw+ep, or AmbientCapabilities=CAP_NET_RAW in the unit)"
)
ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
UNREACH_TYPES: dict[int, tuple[int, ...]] = {socket.AF_INET: (3, 11), socket.AF_INET6: (1, 3)}
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


@dataclasses.dataclass(frozen=True)
class Options:
    count: int = setting(5, min=1, max=10000, help="echo requests per run")
    packet_interval: float = setting(0.2, min=0.002, max=60.0, help="seconds between requests")
    payload_size: int = setting(56, min=0, max=1472, help="ICMP payload bytes")
    socket: str = setting("auto", choices=("auto", "dgram", "raw"), help="auto tries dgram, then raw")


class EchoTally:
    """Sans-I/O bookkeeping of one run: sends and replies in, samples out.

    Each request counts once. A second reply to the same sequence is a
    duplicate, and a reply after the timeout is late: both are counted and
    neither changes the RTT statistics or the loss.
    """

    def __init__(self, timeout_s: float, expected: Optional[int] = None) -> None:
        self.timeout_s = timeout_s
        self.expected = expected  # requests the run will send; None: whatever was sent so far
        self.sent_at: dict[int, float] = {}
        self.rtt_ms: dict[int, float] = {}
        self.duplicates = 0
        self.late = 0
        self.unreachable_from: Optional[str] = None

    def sent(self, seq: int, at: float) -> None:
        self.sent_at[seq] = at

    def replied(self, seq: int, at: float) -> None:
        start = self.sent_at.get(seq)
        if start is None:
            return  # not ours, or a reply to a request we never recorded
        if seq in self.rtt_ms:
            self.duplicates += 1
        elif at - start > self.timeout_s:
            self.late += 1
        else:
            self.rtt_ms[seq] = max(0.0, (at - start) * 1000.0)

    def complete(self) -> bool:
        """Every request answered: those still to be sent count too, so a run never ends early."""
        return len(self.rtt_ms) == (len(self.sent_at) if self.expected is None else self.expected)

    def samples(self) -> list[Optional[float]]:
        return [self.rtt_ms.get(seq) for seq in sorted(self.sent_at)]

    def outcome(self, target: str, mode: str) -> Outcome:
        fields = stats.summarize(self.samples())
        fields.update({"duplicates": self.duplicates, "late": self.late, "socket": mode})
        if fields["received"]:
            return Outcome(ok=True, fields=fields)
        if self.unreachable_from:
            return Outcome.failed(
                UNREACHABLE, f"{target} is unreachable (reported by {self.unreachable_from})", **fields
            )
        return Outcome.failed(TIMEOUT, f"no reply from {target} to {fields['sent']} echo requests", **fields)


def open_socket(family: int, mode: str) -> tuple[Any, str]:
    """An icmplib socket, least privilege first."""
    from icmplib import ICMPv4Socket, ICMPv6Socket
    from icmplib.exceptions import SocketPermissionError

    cls = ICMPv6Socket if family == socket.AF_INET6 else ICMPv4Socket
    tries = {"auto": (False, True), "dgram": (False,), "raw": (True,)}[mode]
    for privileged in tries:
        try:
            return cls(privileged=privileged), "raw" if privileged else "dgram"
        except SocketPermissionError:
            continue
        except OSError as exc:  # e.g. EAFNOSUPPORT for IPv6 on a v4-only kernel
            raise ProbeFailure(UNREACHABLE, f"cannot open an ICMP socket: {exc}") from None
    raise ProbeFailure(PERMISSION, ICMP_FIX_HINT)


def parse_reply(packet: bytes, family: int, raw: bool) -> Optional[tuple[int, int, int]]:
    """(type, id, sequence) of an echo reply or of the request quoted in an ICMP error."""
    icmp = packet
    if raw and family == socket.AF_INET:  # raw IPv4 sockets deliver the IP header too
        if len(packet) < 20:
            return None
        icmp = packet[(packet[0] & 0x0F) * 4 :]
    if len(icmp) < 8:
        return None
    kind = icmp[0]
    if kind == ECHO_REPLY[family]:
        ident, seq = struct.unpack("!HH", icmp[4:8])
        return kind, ident, seq
    if kind in UNREACH_TYPES[family]:
        inner = icmp[8:]
        if family == socket.AF_INET:
            if len(inner) < 20:
                return None
            inner = inner[(inner[0] & 0x0F) * 4 :]
        else:
            inner = inner[40:]
        if len(inner) < 8 or inner[0] != (8 if family == socket.AF_INET else 128):
            return None
        ident, seq = struct.unpack("!HH", inner[4:8])
        return kind, ident, seq
    return None


def kernel_rx_time(ancdata: list[tuple[int, int, bytes]]) -> Optional[float]:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return float(sec + nsec / 1e9)
    return None


class Exchange:
    """One run's receive side. Reply times come from the kernel (SO_TIMESTAMPNS),
    so a busy event loop does not inflate the RTT."""

    def __init__(self, icmp_sock: Any, address: str, family: int, raw: bool, tally: EchoTally) -> None:
        self.address, self.family, self.raw, self.tally = address, family, raw, tally
        # icmplib 3 names the socket `sock`; 2.1 (Debian 12) only has `_sock`.
        self.fd_sock: socket.socket = getattr(icmp_sock, "sock", None) or icmp_sock._sock
        self.fd_sock.setblocking(False)
        self.fd_sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.echo_id: Optional[int] = None
        self.done = asyncio.Event()

    def on_readable(self) -> None:
        while True:
            try:
                packet, ancdata, _, source = self.fd_sock.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an error queued on the socket; the request counts as lost
            self.handle(packet, source[0] if source else None, kernel_rx_time(ancdata) or time.time())

    def handle(self, packet: bytes, source: Optional[str], at: float) -> None:
        parsed = parse_reply(packet, self.family, self.raw)
        if parsed is None or self.echo_id is None:
            return
        kind, ident, seq = parsed
        if ident != self.echo_id:
            return
        if kind != ECHO_REPLY[self.family]:
            self.tally.unreachable_from = source or "a router"
        elif source is None or source == self.address:
            self.tally.replied(seq, at)
            if self.tally.complete():
                self.done.set()


class Echoes:
    """An open ICMP echo session with one host: requests go out as asked, replies land in `tally`.

    `ping` paces a fixed count; the throughput test sends one every few hundred ms
    for as long as a transfer runs, to see the queue it builds.
    """

    def __init__(self, icmp_sock: Any, address: str, family: int, mode: str, tally: EchoTally) -> None:
        self.icmp_sock, self.address, self.family, self.mode, self.tally = icmp_sock, address, family, mode, tally
        self.exchange = Exchange(icmp_sock, address, family, mode == "raw", tally)
        self.ident = random.randint(1, 0xFFFF)
        self.send_error: Optional[str] = None
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.exchange.fd_sock.fileno(), self.exchange.on_readable)

    @classmethod
    async def open(cls, host: str, timeout: float, tally: EchoTally, mode: str = "auto") -> Echoes:
        address, family = await iface.resolve(host, timeout)
        icmp_sock, mode_used = open_socket(family, mode)
        return cls(icmp_sock, address, family, mode_used, tally)

    def send(self, seq: int, payload_size: int = 56) -> None:
        from icmplib import ICMPRequest
        from icmplib.exceptions import ICMPLibError

        request = ICMPRequest(self.address, self.ident, seq, payload_size=payload_size)
        try:
            self.icmp_sock.send(request)
        except ICMPLibError as exc:
            self.send_error = str(exc) or type(exc).__name__
            self.tally.sent(seq, time.time())
            return
        self.exchange.echo_id = request.id  # the kernel picks the id of a dgram socket
        self.tally.sent(seq, request.time)

    async def wait(self, timeout: float) -> None:
        """Until every expected request is answered, or the timeout."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.exchange.done.wait(), timeout)

    def close(self) -> None:
        self.loop.remove_reader(self.exchange.fd_sock.fileno())
        self.icmp_sock.close()


async def ping(
    host: str,
    count: int = 5,
    packet_interval: float = 0.2,
    timeout: float = 2.0,
    payload_size: int = 56,
    mode: str = "auto",
) -> Outcome:
    """Ping one host. Network conditions become the Outcome; only setup raises ProbeFailure."""
    tally = EchoTally(timeout, expected=count)
    echoes = await Echoes.open(host, timeout, tally, mode)
    try:
        start = time.monotonic()
        for seq in range(count):
            delay = start + seq * packet_interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            echoes.send(seq, payload_size)
        if echoes.send_error and not tally.rtt_ms and echoes.exchange.echo_id is None:
            no_route = echoes.family == socket.AF_INET6
            reason = "this host has no IPv6 route" if no_route else echoes.send_error
            raise ProbeFailure(UNREACHABLE, f"cannot send to {echoes.address}: {reason}")
        await echoes.wait(timeout)
    finally:
        echoes.close()
    return tally.outcome(host if host == echoes.address else f"{host} ({echoes.address})", echoes.mode)


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
