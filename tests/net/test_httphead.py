"""One HTTP/1.x head parser: requests for the speed server, responses for the http probe and the
speed test client, and numbers that int() would take but HTTP does not."""

from __future__ import annotations

import asyncio
import socket

import pytest

from agent.net.httphead import MAX_FIELDS, content_length, parse_number, parse_request, parse_response
from agent.probes import http
from agent.reading.model import PROTOCOL_ERROR, ProbeFailure
from agent.throughput.server import Drop, SpeedServer, parse_head

HUGE = "9" * 5000  # Python 3.11 refuses to convert it; 3.9 makes a number no body has


def test_a_request_head_gives_method_target_version_and_lower_cased_headers() -> None:
    head = b"POST /empty?r=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nX-Odd:  v  \r\n\r\n"
    method, target, version, headers = parse_request(head)
    assert (method, target, version) == ("POST", "/empty?r=1", "HTTP/1.1")
    assert headers == {"host": "h", "content-length": "12", "x-odd": "v"}
    assert content_length(headers) == 12


def test_a_response_head_gives_status_and_headers() -> None:
    assert parse_response(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n") == (204, {"connection": "close"})
    assert parse_response(b"HTTP/1.0 200\r\n")[0] == 200  # no reason phrase


@pytest.mark.parametrize("text", ["²", "٣", "1_0", "+5", "-1", " 5", "", HUGE, "0x10"])
def test_numbers_are_ascii_digits_of_a_sane_length(text: str) -> None:
    with pytest.raises(ValueError, match="bad Content-Length"):
        parse_number(text, "Content-Length")


def test_chunk_sizes_are_hex_digits_without_prefix_or_sign() -> None:
    assert parse_number("1aF", "chunk size", base=16) == 0x1AF
    for text in ("0x10", "-1", "1_0", "f" * 16):
        with pytest.raises(ValueError):
            parse_number(text, "chunk size", base=16)


@pytest.mark.parametrize(
    ("value", "message"),
    [("²", "bad Content-Length '²'"), (HUGE, "bad Content-Length '99999"), ("5\r\nContent-Length: 6", "conflicting")],
)
def test_a_bad_content_length_is_a_clean_error_on_both_sides(value: str, message: str) -> None:
    with pytest.raises(ValueError) as request_error:
        parse_request(f"POST /empty HTTP/1.1\r\nContent-Length: {value}\r\n\r\n".encode("latin-1"))
    with pytest.raises(ProbeFailure) as response_error:
        parse_response(f"HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n".encode("latin-1"))
    assert message in str(request_error.value) and len(str(request_error.value)) < 100
    assert response_error.value.code == PROTOCOL_ERROR and message in response_error.value.message


@pytest.mark.parametrize(
    "head",
    [
        b"<html>hello</html>\r\n\r\n",
        b"HTTP/1.1 2\xb20 OK\r\n\r\n",  # '2²0' in latin-1: isdigit() is true
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (MAX_FIELDS + 1) + b"\r\n",
    ],
)
def test_a_malformed_response_head_is_a_protocol_error(head: bytes) -> None:
    with pytest.raises(ProbeFailure) as info:
        parse_response(head)
    assert info.value.code == PROTOCOL_ERROR


@pytest.mark.parametrize(
    "head",
    [b"GET /\r\n\r\n", b"GET / SPDY/3\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n"],
)
def test_the_speed_server_answers_a_malformed_request_head_with_400(head: bytes) -> None:
    with pytest.raises(Drop) as info:
        parse_head(head)
    assert info.value.status == 400


def test_the_speed_server_drops_a_5000_digit_content_length_with_400_and_keeps_serving() -> None:
    async def run() -> tuple[bytes, bytes]:
        server = SpeedServer(pool=bytes(2 << 20))
        host, port = await server.start("127.0.0.1", 0)
        try:
            answers = []
            for request in (f"POST /empty HTTP/1.1\r\nContent-Length: {HUGE}\r\n\r\n", "GET /empty HTTP/1.0\r\n\r\n"):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request.encode())
                answers.append(await asyncio.wait_for(reader.readline(), 5))
                writer.close()
            return answers[0], answers[1]
        finally:
            await server.close()

    bad, good = asyncio.run(run())
    assert bad.startswith(b"HTTP/1.1 400 ") and good.startswith(b"HTTP/1.1 200 ")


def test_the_http_probe_reports_a_bad_content_length_as_a_protocol_error() -> None:
    async def run() -> ProbeFailure:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nbody")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0, family=socket.AF_INET)
        port = server.sockets[0].getsockname()[1]
        try:
            await http.fetch(http.parse_url(f"http://127.0.0.1:{port}/"), http.Options(), 5.0)
        except ProbeFailure as exc:
            return exc
        finally:
            server.close()
        raise AssertionError("the probe accepted a Content-Length of '²'")

    failure = asyncio.run(run())
    assert failure.code == PROTOCOL_ERROR and "Content-Length" in failure.message
