"""Bytes a TCP socket really moved, from the kernel's TCP_INFO (Linux).

Counting what the application wrote overstates an upload by whatever sits in
the send buffer (megabytes, i.e. seconds on a slow link), so goodput is taken
from `tcpi_bytes_acked` (upload) and `tcpi_bytes_received` (download).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Optional

TCP_INFO = getattr(socket, "TCP_INFO", 11)
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
# struct tcp_info (linux/tcp.h): tcpi_rtt (u32, µs) at 68; tcpi_bytes_acked, tcpi_bytes_received (u64) at 120, 128.
RTT_OFFSET, ACKED_OFFSET, RECEIVED_OFFSET, NEEDED = 68, 120, 128, 136


def counters(sock: Optional[socket.socket]) -> Optional[tuple[int, int]]:
    """(bytes acked by the peer, bytes received) or None where the kernel does not say."""
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 256)
    except OSError:
        return None
    if len(raw) < NEEDED:
        return None
    acked, received = struct.unpack_from("=QQ", raw, ACKED_OFFSET)
    return int(acked), int(received)


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
