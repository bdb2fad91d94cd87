"""User-space link emulator: an AF_PACKET bridge between two interfaces of the router namespace.

This kernel has no sch_netem, so delay, jitter and loss are applied here: every frame read from
one side is given a release time by `schedule.LinkModel` (or dropped) and written to the other
side when that time comes. Rate limiting is left to the kernel: a tbf qdisc on each egress
interface shapes what this process writes (a full tbf queue makes send() fail: tail drop).

Run inside the router namespace, from the repository root:
    python -m tests.testbed.linkemu --lan IF --wan IF [--seed N]
Control is line-based JSON on stdin, one answer line on stdout each:
    {"profile": {...}}  -> "ok"       (the first one starts forwarding; later ones apply live)
    {"stats": true}     -> {"passed": ..., "dropped": ..., "queue_drops": ..., ...}
EOF on stdin ends the process, so it never outlives the testbed that started it.

One select() loop serves both directions: receive what is readable, schedule it, send what is
due. select() sleeps with microsecond resolution (epoll would round to whole milliseconds).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
import json
import os
import select
import socket
import struct
import sys
import time
from typing import Any, Optional

from tests.testbed.profiles import profile_from_dict
from tests.testbed.schedule import DOWN, UP, LinkModel

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_IGNORE_OUTGOING = 23
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
BUFFER_BYTES = 8 << 20
LOSSY_ETHERTYPES = (b"\x08\x00", b"\x86\xdd")  # IPv4, IPv6; ARP and the rest are never lost
MAX_BATCH = 64


def open_port(ifname: str) -> socket.socket:
    """A promiscuous packet socket that sees every frame arriving on `ifname` and none it sends."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: nothing queued before bind
    with contextlib.suppress(OSError):  # before Linux 4.20 read_frames filters them by pkttype
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.bind((ifname, ETH_P_ALL))
    ifindex = socket.if_nametoindex(ifname)
    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b""))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    for option in (SO_SNDBUFFORCE, SO_RCVBUFFORCE):
        sock.setsockopt(socket.SOL_SOCKET, option, BUFFER_BYTES)
    sock.setblocking(False)
    return sock


def arrival_time(ancdata: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return float(sec + nsec / 1e9)
    return time.time()


class Bridge:
    def __init__(self, lan: str, wan: str, seed: int) -> None:
        self.ports = {UP: open_port(lan), DOWN: open_port(wan)}  # where each direction's frames arrive
        self.out = {UP: self.ports[DOWN], DOWN: self.ports[UP]}
        self.seed = seed
        self.model: Optional[LinkModel] = None
        self.queue: list[tuple[float, int, str, bytes]] = []  # (release, seq, direction, frame)
        self.seq = 0
        self.queue_drops = 0

    def read_frames(self, direction: str) -> None:
        sock = self.ports[direction]
        for _ in range(MAX_BATCH):
            try:
                frame, ancdata, _flags, address = sock.recvmsg(65536, 64)
            except (BlockingIOError, InterruptedError):
                return
            if address[2] == socket.PACKET_OUTGOING or self.model is None:
                continue
            release = self.model.decide(direction, arrival_time(ancdata), frame[12:14] in LOSSY_ETHERTYPES)
            if release is not None:
                self.seq += 1
                heapq.heappush(self.queue, (release, self.seq, direction, frame))

    def send_due(self) -> Optional[float]:
        """Send every frame whose time has come; return the next release time, if any."""
        queue = self.queue
        now = time.time()
        while queue and queue[0][0] <= now:
            _, _, direction, frame = heapq.heappop(queue)
            try:
                self.out[direction].send(frame)
            except OSError as exc:  # ENOBUFS: the tbf queue is full; EAGAIN: send buffer full
                if exc.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.EMSGSIZE, errno.ENETDOWN):
                    raise
                self.queue_drops += 1
        return queue[0][0] if queue else None

    def control(self, line: str) -> str:
        try:
            message: dict[str, Any] = json.loads(line)
            if "profile" in message:
                profile = profile_from_dict(message["profile"])
                if self.model is None:
                    self.model = LinkModel(profile, self.seed, now=time.time())
                else:
                    self.model.reconfigure(profile)
                return "ok"
            if message.get("stats"):
                counts = dict(self.model.counts) if self.model else {}
                return json.dumps({**counts, "queue_drops": self.queue_drops, "queued": len(self.queue)})
            return "error: unknown command"
        except (ValueError, KeyError, TypeError) as exc:
            return f"error: {exc}"

    def run(self, control_fd: int) -> None:
        readers = {self.ports[UP].fileno(): UP, self.ports[DOWN].fileno(): DOWN}
        fds = [*readers, control_fd]
        pending = b""
        next_release: Optional[float] = None
        while True:
            timeout = None if next_release is None else max(0.0, next_release - time.time())
            readable, _, _ = select.select(fds, [], [], timeout)
            for fd in readable:
                if fd != control_fd:
                    self.read_frames(readers[fd])
                    continue
                chunk = os.read(control_fd, 65536)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    sys.stdout.write(self.control(line.decode()) + "\n")
                    sys.stdout.flush()
            next_release = self.send_due()


def tighten_timer_slack() -> None:
    """select() may oversleep by the timer slack (50 us by default); ask for 1 us."""
    import ctypes

    pr_set_timerslack = 29
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_timerslack, 1000, 0, 0, 0)


def raise_priority() -> None:
    """Other test processes share the two cores; a frame released late is an RTT reported wrong.

    SCHED_FIFO at the lowest real-time priority wakes this loop ahead of ordinary tasks; the
    loop sleeps in select() between frames, and the kernel's RT throttling still leaves the
    rest of the machine its share even under full traffic.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, -10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lan", required=True, help="interface towards the node's gateway (frames going up)")
    parser.add_argument("--wan", required=True, help="interface towards the ISP (frames coming down)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    tighten_timer_slack()
    raise_priority()
    Bridge(args.lan, args.wan, args.seed).run(sys.stdin.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
