"""The ICMP echo session: kernel receive timestamps where the kernel gives them, user-space
times where it refuses (qemu-user, some kernels), and one session for every caller."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from typing import Any

import pytest

from agent.linktype.evidence import trace_first_hops
from agent.net import echo
from agent.net.echo import EchoSession, echo_request, kernel_rx_time
from agent.probes.icmp import ping
from agent.reading.model import PERMISSION, ProbeFailure

SOL, KIND = socket.SOL_SOCKET, echo.SO_TIMESTAMPNS


def test_a_64_bit_timespec_is_two_int64() -> None:
    data = struct.pack("qq", 1_700_000_000, 250_000_000)
    assert kernel_rx_time([(SOL, KIND, data)]) == pytest.approx(1_700_000_000.25)


def test_a_32_bit_armhf_timespec_is_two_int32() -> None:
    data = struct.pack("ii", 1_700_000_000, 750_000_000)
    assert kernel_rx_time([(SOL, KIND, data)]) == pytest.approx(1_700_000_000.75)


def test_a_32_bit_userland_with_64_bit_time_gets_the_new_option_number() -> None:
    data = struct.pack("qq", 1_700_000_000, 0)
    assert kernel_rx_time([(SOL, echo.SO_TIMESTAMPNS_NEW, data)]) == 1_700_000_000.0


@pytest.mark.parametrize(
    "ancdata",
    [[], [(SOL, KIND, b"\x00" * 12)], [(socket.IPPROTO_IP, KIND, struct.pack("qq", 1, 0))], [(SOL, 1, b"\x00" * 16)]],
    ids=["none", "odd-size", "other-level", "other-kind"],
)
def test_anything_but_a_timestamp_message_gives_no_kernel_time(ancdata: list[Any]) -> None:
    assert kernel_rx_time(ancdata) is None


@pytest.mark.parametrize("payload", [b"", b"x", b"netprobe" * 7])
def test_echo_requests_carry_a_valid_internet_checksum(payload: bytes) -> None:
    packet = echo_request(socket.AF_INET, 0x1234, 0xFFFF, payload)
    padded = packet + b"\x00" * (len(packet) % 2)
    total = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF and packet[0] == 8 and packet.endswith(payload)


def skip_without_icmp(exc: ProbeFailure) -> None:
    if exc.code == PERMISSION:
        pytest.skip("no ping socket and no CAP_NET_RAW here")
    raise exc


async def loopback_ping(count: int = 5) -> Any:
    try:
        return await ping("127.0.0.1", count=count, packet_interval=0.01, timeout=1.0)
    except ProbeFailure as exc:
        skip_without_icmp(exc)


async def loopback_session() -> EchoSession:
    try:
        return await EchoSession.open("127.0.0.1", 1.0)
    except ProbeFailure as exc:
        skip_without_icmp(exc)
        raise


def test_loopback_replies_are_timestamped_by_the_kernel() -> None:
    outcome = asyncio.run(loopback_ping())
    assert outcome.ok and outcome.fields["received"] == 5
    assert outcome.fields["rx_time"] == "kernel"


def test_where_the_kernel_refuses_timestamps_replies_are_timed_in_user_space(monkeypatch: Any) -> None:
    real = socket.socket.setsockopt
    refused = []

    def setsockopt(sock: socket.socket, level: int, name: int, *value: Any) -> None:
        if (level, name) == (socket.SOL_SOCKET, echo.SO_TIMESTAMPNS):
            refused.append(sock.type)
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")
        real(sock, level, name, *value)

    monkeypatch.setattr(socket.socket, "setsockopt", setsockopt)
    outcome = asyncio.run(loopback_ping())
    assert refused, "the session asked for kernel timestamps"
    assert outcome.ok and outcome.fields["received"] == 5 and outcome.fields["loss_pct"] == 0.0
    assert outcome.fields["rx_time"] == "user"
    assert 0.0 <= outcome.fields["rtt_min_ms"] <= outcome.fields["rtt_max_ms"] < 100.0


def test_sequences_keep_counting_past_the_16_bit_wire_field() -> None:
    async def run() -> tuple[list[int], dict[int, float]]:
        session = await loopback_session()
        try:
            session.next_seq = 0xFFFF - 1
            sent = [session.send() for _ in range(4)]
            await session.wait(1.0)
            return sent, dict(session.tally.rtt_ms)
        finally:
            session.close()

    sent, rtts = asyncio.run(run())
    assert sent == [0xFFFE, 0xFFFF, 0x10000, 0x10001]
    assert sorted(rtts) == sent


def test_wait_covers_requests_sent_after_earlier_ones_were_all_answered() -> None:
    async def run() -> tuple[bool, int]:
        session = await loopback_session()
        try:
            session.send()
            await session.wait(1.0)
            session.send()
            pending = not session.done.is_set()  # else wait() would return before this one's answer
            await session.wait(1.0)
            return pending, len(session.tally.rtt_ms)
        finally:
            session.close()

    assert asyncio.run(run()) == (True, 2)


def test_a_trace_to_a_host_one_hop_away_ends_at_the_host() -> None:
    try:
        hops = asyncio.run(trace_first_hops("127.0.0.1", max_ttl=4, wait=1.0))
    except ProbeFailure as exc:
        skip_without_icmp(exc)
    assert hops == ["127.0.0.1"]
