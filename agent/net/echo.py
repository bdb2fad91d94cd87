"""One ICMP echo session with one host: the socket, paced requests, replies matched to them.

Every ICMP echo in the agent goes through it: the icmp probe (a fixed count),
the link classifier (paired trains to the gateway and the ISP hop) and the
throughput test (echoes during a transfer, to see the queue it builds).

The socket is opened least privilege first: an unprivileged ICMP datagram socket
(allowed by `net.ipv4.ping_group_range`), else a raw one (root or CAP_NET_RAW).
Replies are matched by identifier and sequence. Their receive times come from
the kernel (SO_TIMESTAMPNS), so a busy event loop does not inflate the RTT;
where the kernel refuses that option (qemu-user running an arm64/armhf root,
some kernels) they are read from a user-space clock when the reply is read, and
`rx_time` says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterable
from typing import Callable, Optional

from agent.net import iface
from agent.reading.model import PERMISSION, UNREACHABLE, ProbeFailure

ICMP_FIX_HINT = (
    "ICMP needs an unprivileged ping socket or CAP_NET_RAW: either widen the ping group range "
    "(sysctl -w net.ipv4.ping_group_range='0 2147483647') or grant the capability "
    "(setcap cap_net_raw+ep, or AmbientCapabilities=CAP_NET_RAW in the unit)"
)
ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
UNREACH_TYPES: dict[int, tuple[int, ...]] = {socket.AF_INET: (3, 11), socket.AF_INET6: (1, 3)}
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
# What a 32-bit userland built with a 64-bit time_t asks for instead (asm-generic numbering).
SO_TIMESTAMPNS_NEW = 64
TIMESPEC = {16: struct.Struct("qq"), 8: struct.Struct("ii")}  # 64-bit ABIs; 32-bit armhf's old timespec


class EchoTally:
    """Sans-I/O bookkeeping of one run: sends and replies in, samples out.

    Each request counts once. A second reply to the same sequence is a
    duplicate, and a reply after the timeout is late: both are counted and
    neither changes the RTT statistics or the loss. Times are on whichever
    clock the session measures with; only their differences are used.
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


def open_socket(family: int, mode: str = "auto") -> tuple[socket.socket, str]:
    """An ICMP socket and its kind ("dgram" or "raw"), least privilege first.

    Neither allowed is a PERMISSION failure naming both fixes; any other error
    (no IPv6 in this kernel) is UNREACHABLE.
    """
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    kinds = {"auto": ("dgram", "raw"), "dgram": ("dgram",), "raw": ("raw",)}[mode]
    for kind in kinds:
        try:
            return socket.socket(family, socket.SOCK_DGRAM if kind == "dgram" else socket.SOCK_RAW, proto), kind
        except PermissionError:  # EACCES: not in ping_group_range; EPERM: no CAP_NET_RAW
            continue
        except OSError as exc:
            raise ProbeFailure(UNREACHABLE, f"cannot open an ICMP socket: {exc}") from None
    raise ProbeFailure(PERMISSION, ICMP_FIX_HINT)


def echo_request(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    """An echo request. The kernel rewrites the identifier of a datagram socket and the
    checksum of everything but a raw IPv4 socket, so computing it always is harmless."""
    header = struct.pack("!BBHHH", ECHO_REQUEST[family], 0, 0, ident, seq)
    data = header + payload + (b"\x00" if len(payload) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return header[:2] + struct.pack("!H", ~total & 0xFFFF) + header[4:] + payload


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
        if len(inner) < 8 or inner[0] != ECHO_REQUEST[family]:
            return None
        ident, seq = struct.unpack("!HH", inner[4:8])
        return kind, ident, seq
    return None


def kernel_rx_time(ancdata: list[tuple[int, int, bytes]]) -> Optional[float]:
    """The kernel's receive time (CLOCK_REALTIME, seconds) from an SO_TIMESTAMPNS control message.

    The payload is a struct timespec: two 64-bit fields on 64-bit ABIs, but two
    32-bit ones on 32-bit armhf with its old 32-bit time_t.
    """
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind in (SO_TIMESTAMPNS, SO_TIMESTAMPNS_NEW):
            layout = TIMESPEC.get(len(data))
            if layout is not None:
                sec, nsec = layout.unpack(data)
                return float(sec + nsec / 1e9)
    return None


def enable_kernel_timestamps(sock: socket.socket) -> bool:
    """Ask for kernel receive timestamps; False where the kernel (or qemu-user) refuses them."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:  # ENOPROTOOPT under qemu-user and on some kernels
        return False
    return True


async def schedule(count: Optional[int], interval: float) -> AsyncIterator[int]:
    """0, 1, ... (count of them, or forever) on an absolute schedule, like iputils ping:
    a late wake-up delays one request, never the ones after it."""
    steps: Iterable[int] = range(count) if count is not None else itertools.count()
    start = time.monotonic()
    for i in steps:
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield i


class EchoSession:
    """An open ICMP echo session with one host: requests go out when asked, replies land in `tally`.

    Sequences count up from 0 for the life of the session (the wire carries
    them modulo 2^16), so a long train never reuses one. `sent_wall` keeps each
    request's wall-clock send time, whichever clock the RTTs are measured on.
    """

    def __init__(
        self, sock: socket.socket, address: str, family: int, mode: str, timeout_s: float, expected: Optional[int]
    ) -> None:
        self.sock, self.address, self.family, self.mode = sock, address, family, mode
        self.tally = EchoTally(timeout_s, expected)
        self.sent_wall: dict[int, float] = {}
        self.next_seq = 0
        self.ident = random.randint(1, 0xFFFF)
        self.echo_id: Optional[int] = None  # known once a request went out: the kernel picks a dgram socket's
        self.send_error: Optional[str] = None
        self.kernel_stamps = enable_kernel_timestamps(sock)
        self.user_timed = 0  # replies without a kernel timestamp
        # Kernel stamps are wall-clock, so sends are too; without them both ends use perf_counter.
        self.clock: Callable[[], float] = time.time if self.kernel_stamps else time.perf_counter
        self.by_wire: dict[int, int] = {}  # sequence on the wire -> the latest session sequence sent with it
        self.responders: dict[int, str] = {}  # sequence -> who answered first: the host, or a router's error
        self.payloads: dict[int, bytes] = {}
        self.done = asyncio.Event()
        sock.setblocking(False)
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(sock.fileno(), self.on_readable)

    @classmethod
    async def open(cls, host: str, timeout: float, mode: str = "auto", expected: Optional[int] = None) -> EchoSession:
        """Resolve `host` and open the socket; failures are ProbeFailure. A reply after
        `timeout` seconds counts as late; `expected` is the run's request count, if fixed."""
        address, family = await iface.resolve(host, timeout)
        sock, kind = open_socket(family, mode)
        return cls(sock, address, family, kind, timeout, expected)

    @property
    def rx_time(self) -> str:
        """Who timed the replies: "kernel" when it stamped every one, else "user"."""
        return "kernel" if self.kernel_stamps and not self.user_timed else "user"

    def send(self, payload_size: int = 56, ttl: Optional[int] = None) -> int:
        """Send one request now, with this hop limit if given (it stays set); its sequence.
        A send error counts the request as lost and is kept in `send_error`."""
        if ttl is not None:
            v6 = self.family == socket.AF_INET6
            option = (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS) if v6 else (socket.IPPROTO_IP, socket.IP_TTL)
            self.sock.setsockopt(*option, ttl)
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        wire = seq & 0xFFFF
        self.by_wire[wire] = seq
        payload = self.payloads.get(payload_size)
        if payload is None:
            payload = self.payloads[payload_size] = os.urandom(payload_size)
        packet = echo_request(self.family, self.ident, wire, payload)
        at = self.clock()
        self.sent_wall[seq] = at if self.kernel_stamps else time.time()
        try:
            self.sock.sendto(packet, (self.address, 0))
        except OSError as exc:
            self.send_error = str(exc) or type(exc).__name__
        else:
            if self.echo_id is None:
                self.echo_id = self.sock.getsockname()[1] if self.mode == "dgram" else self.ident
        self.tally.sent(seq, at)
        if not self.tally.complete():
            self.done.clear()
        return seq

    async def wait(self, timeout: float) -> None:
        """Until every request (every expected one, if the count is fixed) is answered, or the timeout."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout)

    def on_readable(self) -> None:
        while True:
            try:
                packet, ancdata, _, source = self.sock.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an error queued on the socket; the request counts as lost
            at = kernel_rx_time(ancdata) if self.kernel_stamps else None
            if at is None:
                at = self.clock()
                self.user_timed += 1
            self.handle(packet, source[0] if source else None, at)

    def handle(self, packet: bytes, source: Optional[str], at: float) -> None:
        parsed = parse_reply(packet, self.family, self.mode == "raw")
        if parsed is None or self.echo_id is None:
            return
        kind, ident, wire = parsed
        seq = self.by_wire.get(wire)
        if ident != self.echo_id or seq is None:
            return
        if kind != ECHO_REPLY[self.family]:
            self.tally.unreachable_from = source or "a router"
            self.responders.setdefault(seq, source or "")
        elif source is None or source == self.address:
            self.responders.setdefault(seq, self.address)
            self.tally.replied(seq, at)
            if self.tally.complete():
                self.done.set()

    def close(self) -> None:
        if self.sock.fileno() != -1:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
