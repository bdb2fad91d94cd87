"""Bytes on the wire: per-packet overheads, and what a TCP socket really moved (TCP_INFO).

The uplink carries IP packets in some link framing. The agent counts each packet's
IP bytes plus `FRAME` bytes of framing (Ethernet's 14: what the gateway's interface
counters count; a VSAT or LTE modem's own framing differs by a few bytes a packet).

For TCP the kernel tells what it sent and received on one socket: bytes of data
(`tcpi_bytes_sent`, retransmissions included, and `tcpi_bytes_received`) and
segments (`tcpi_segs_out`, `tcpi_segs_in`: SYN, pure ACKs and FIN included), so a
connection's wire bytes are data plus one header per segment. TLS is inside the data.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple, Optional

FRAME = 14  # link framing per packet, as the gateway's Ethernet counters count it
IP = 20
UDP = 8
ICMP = 8
TCP = 32  # 20 + the timestamp option Linux puts on every segment
SYN_OPTIONS = 8  # a SYN's MSS, SACK-permitted and window-scale options beyond TCP
TCP_SEGMENT = FRAME + IP + TCP  # a segment's overhead
FIN_EXCHANGE = 3 * TCP_SEGMENT  # FIN, the peer's FIN with its ACK, the last ACK (measured on the testbed)
RST = FRAME + IP + 20

TCP_INFO = getattr(socket, "TCP_INFO", 11)
# struct tcp_info (linux/tcp.h): bytes_acked, bytes_received (u64) at 120, 128; segs_out, segs_in (u32)
# at 136, 140 (Linux 4.2); bytes_sent (u64, retransmissions included) at 200 (Linux 4.19).
RECEIVED_AT, SEGS_AT, SENT_AT = 128, 136, 200


class TcpCounts(NamedTuple):
    sent: int  # data bytes sent, retransmissions included (acked bytes before Linux 4.19)
    received: int  # data bytes received in order
    segs_out: int
    segs_in: int

    def wire(self) -> int:
        """Bytes both ways on the wire: data plus every segment's headers and framing."""
        return self.sent + self.received + (self.segs_out + self.segs_in) * TCP_SEGMENT

    def __sub__(self, other: object) -> TcpCounts:
        assert isinstance(other, TcpCounts)
        return TcpCounts(*(max(0, a - b) for a, b in zip(self, other)))


CLOSE_WAIT = 8  # tcpi_state: the peer's FIN is in
CLOSE_NOTIFY = 24 + TCP_SEGMENT  # a TLS close_notify record in its own segment


def close_left(state: Optional[int], tls: bool) -> int:
    """What closing a connection still costs once its counts are read: our FIN (and the peer's, unless
    it came already), their ACKs, and a TLS close_notify each way still to come."""
    if state == CLOSE_WAIT:
        return 2 * TCP_SEGMENT + (CLOSE_NOTIFY if tls else 0)
    return FIN_EXCHANGE + (2 * CLOSE_NOTIFY if tls else 0)


def tcp_state(sock: Optional[socket.socket]) -> Optional[int]:
    """The socket's TCP state (linux/tcp_states.h), or None."""
    if sock is None:
        return None
    try:
        return int(sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 8)[0])
    except (OSError, IndexError, ValueError):
        return None


def parse_tcp_info(raw: bytes) -> Optional[TcpCounts]:
    if len(raw) < SEGS_AT + 8:
        return None
    acked, received = struct.unpack_from("=QQ", raw, RECEIVED_AT - 8)
    segs_out, segs_in = struct.unpack_from("=II", raw, SEGS_AT)
    sent = struct.unpack_from("=Q", raw, SENT_AT)[0] if len(raw) >= SENT_AT + 8 else acked
    return TcpCounts(int(max(sent, acked)), int(received), int(segs_out), int(segs_in))


def tcp_counts(sock: Optional[socket.socket]) -> Optional[TcpCounts]:
    """The socket's counts so far, or None where the kernel does not say (not TCP, closed, not Linux)."""
    if sock is None:
        return None
    try:
        return parse_tcp_info(sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 256))
    except (OSError, ValueError):
        return None


def packets(payload: int, overhead: int, mtu: int = 1500) -> int:
    """Packets a datagram of `payload` bytes (after `overhead` header bytes) takes."""
    room = mtu - overhead
    return max(1, -(-payload // room))


def icmp_echo(sent: int, received: int, payload: int) -> int:
    """Echo requests sent and replies received, each an IPv4 packet."""
    size = FRAME + IP + ICMP + payload
    return (max(0, sent) + max(0, received)) * size


def udp_exchange(query: int, answer: int) -> int:
    """One UDP request and its answer (payload bytes each)."""
    return 2 * (FRAME + IP + UDP) + query + answer


def tcp_refused() -> int:
    """A SYN answered with a reset."""
    return TCP_SEGMENT + SYN_OPTIONS + RST


def tcp_connection(request: int = 0, response: int = 0, answered: bool = True) -> int:
    """A whole short TCP connection: handshake, one request and response (one segment each, ACKed), close."""
    if not answered:
        return 2 * (TCP_SEGMENT + SYN_OPTIONS)  # a SYN and its retry, unanswered
    handshake = 3 * TCP_SEGMENT + 2 * SYN_OPTIONS
    data = (TCP_SEGMENT + request + TCP_SEGMENT if request else 0) + (
        TCP_SEGMENT + response + TCP_SEGMENT if response else 0
    )
    return handshake + data + FIN_EXCHANGE
