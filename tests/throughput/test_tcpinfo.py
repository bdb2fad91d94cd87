"""The kernel counts a throughput rate is read from: parsed from TCP_INFO, and checked on real sockets."""

from __future__ import annotations

import socket
import struct
import threading

from agent.throughput import tcpinfo
from agent.throughput.tcpinfo import Arrivals, Counts

MSS = 1448


def tcp_info(snd_mss=0, rcv_mss=0, sacked=0, acked=0, received=0, segs_in=0, size=256) -> bytes:
    raw = bytearray(size)
    struct.pack_into("=IIII", raw, 16, snd_mss, rcv_mss, 0, sacked)
    if size >= 136:
        struct.pack_into("=QQ", raw, 120, acked, received)
    if size >= 156:
        struct.pack_into("=I", raw, 152, segs_in)
    return bytes(raw)


def test_delivered_adds_what_the_peer_holds_out_of_order():
    c = tcpinfo.parse(tcp_info(snd_mss=MSS, rcv_mss=MSS, sacked=10, acked=1_000_000, received=5, segs_in=7))
    assert c == Counts(acked=1_000_000, received=5, delivered=1_000_000 + 10 * MSS, segs_in=7)
    assert c.moved == 1_000_005


def test_an_older_kernel_without_segment_counts_falls_back_to_in_order_bytes():
    c = tcpinfo.parse(tcp_info(received=4_000, size=136))
    assert c is not None and c.segs_in == 0 and Arrivals().bytes(c) == 4_000
    assert tcpinfo.parse(tcp_info(size=120)) is None


def test_arrivals_go_on_through_a_hole_and_are_not_counted_twice_when_it_fills():
    arrivals = Arrivals()
    head = 300  # a response head: a short first segment
    in_order = [Counts(0, head + n * MSS, 0, 1 + n) for n in range(1, 200)]
    seen = [arrivals.bytes(c) for c in in_order]
    assert seen == [c.received for c in in_order]
    # Segment 200 is lost: 50 more arrive out of order, the in-order count stands still.
    frozen = in_order[-1].received
    during = [arrivals.bytes(Counts(0, frozen, 0, 200 + n)) for n in range(1, 51)]
    assert during == sorted(during) and during[-1] - frozen > 48 * MSS
    # The retransmission fills the hole: the in-order count catches up, and nothing jumps.
    filled = arrivals.bytes(Counts(0, frozen + 51 * MSS, 0, 251))
    assert filled == frozen + 51 * MSS
    assert filled - during[-1] < 2 * MSS


def test_counts_on_a_real_connection_match_the_bytes_sent():
    n = 20 << 20
    server = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, Counts] = {}

    def receive() -> None:
        conn, _ = server.accept()
        got = 0
        while got < n:
            got += len(conn.recv(1 << 20))
        counts = tcpinfo.counters(conn)
        assert counts is not None
        seen["receiver"] = counts
        conn.sendall(b"k")
        conn.recv(1)
        conn.close()

    thread = threading.Thread(target=receive)
    thread.start()
    with socket.create_connection(server.getsockname()) as client:
        for _ in range(20):
            client.sendall(bytes(1 << 20))
        client.recv(1)
        sender = tcpinfo.counters(client)
        client.sendall(b"x")
    thread.join(10)
    server.close()
    receiver = seen["receiver"]
    assert sender is not None and sender.acked == n + 1 and sender.delivered == n + 1  # +1: the SYN
    assert receiver.received == n and receiver.segs_in > 0
    # Loopback segments vary in size (up to 64 KiB): the learned size, unlike the MSS, stays exact.
    assert Arrivals().bytes(receiver) == n
