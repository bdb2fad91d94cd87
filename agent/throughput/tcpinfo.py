"""Bytes a TCP socket really moved, from the kernel's TCP_INFO (Linux).

Counting what the application wrote overstates an upload by whatever sits in
the send buffer (megabytes, i.e. seconds on a slow link), so the bytes a test
cost are `tcpi_bytes_acked` and `tcpi_bytes_received`.

Those two only count data in sequence, so every lost segment freezes them for
a round trip and then releases the held-back data at once. On a 20 Mbit/s
link with tail drop, 100 ms samples read anywhere from 2 to 32 Mbit/s, and the
estimate needs seconds (that is, megabytes) to settle. The rate is therefore
read from counts that include data that arrived out of order: the segments
the peer has selectively acknowledged (upload) and every data segment that
came in (download). Those 100 ms samples stay within 1 % of the link rate.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import NamedTuple, Optional

TCP_INFO = getattr(socket, "TCP_INFO", 11)
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
# struct tcp_info (linux/tcp.h): snd_mss, rcv_mss, unacked, sacked (u32) at 16..28 (packets);
# bytes_acked, bytes_received (u64) at 120, 128 (Linux 4.1); data_segs_in (u32) at 152 (4.6).
MSS_OFFSET, BYTES_OFFSET, SEGS_IN_OFFSET = 16, 120, 152
NEEDED, NEEDED_SEGS = 136, 156


class Counts(NamedTuple):
    acked: int  # bytes the peer acknowledged in sequence
    received: int  # bytes received in sequence
    delivered: int  # acked plus what the peer holds out of order (SACKed): an upload's rate
    segs_in: int  # data segments that came in, in order or not (0: the kernel does not say)

    @property
    def moved(self) -> int:
        """The bytes the test cost (both ways; what came in out of order is counted once it is in order)."""
        return self.acked + self.received


def counters(sock: Optional[socket.socket]) -> Optional[Counts]:
    """The socket's counts, or None where the kernel does not say."""
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 256)
    except OSError:
        return None
    return parse(raw)


def parse(raw: bytes) -> Optional[Counts]:
    if len(raw) < NEEDED:
        return None
    snd_mss, _rcv_mss, _unacked, sacked = struct.unpack_from("=IIII", raw, MSS_OFFSET)
    acked, received = struct.unpack_from("=QQ", raw, BYTES_OFFSET)
    segs_in = struct.unpack_from("=I", raw, SEGS_IN_OFFSET)[0] if len(raw) >= NEEDED_SEGS else 0
    return Counts(int(acked), int(received), int(acked + sacked * snd_mss), int(segs_in))


class Arrivals:
    """Bytes that came in on one connection, data held out of order included: a download's rate.

    The kernel counts data segments as they come but bytes only in order, so the
    bytes a segment carries are learned from the in-order count. That count never
    exceeds what the segments brought, so the largest received/segments ratio
    seen is a lower bound, exact whenever nothing is held out of order (and it
    is learned before a loss, during slow start). Segment sizes are not assumed:
    on loopback they vary and the MSS would overcount by 4 %.
    """

    def __init__(self) -> None:
        self.per_segment = 0.0

    def bytes(self, c: Counts) -> int:
        if c.segs_in:
            self.per_segment = max(self.per_segment, c.received / c.segs_in)
        return max(c.received, int(c.segs_in * self.per_segment))


def limit_unsent(sock: Optional[socket.socket], nbytes: int = 128 * 1024) -> None:
    """Keep little unsent data queued, so a stopped upload leaves nothing behind to send."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, nbytes)


def abort(sock: Optional[socket.socket]) -> None:
    """Close with RST: queued data is dropped instead of being sent after the test ended."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
