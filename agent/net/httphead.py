"""HTTP/1.x heads: requests (the speed server) and responses (the http probe, the speed test client).

Both share the header block, its bounds and the numbers in it. A number is
ASCII digits and not too many of them, because `int()` takes what HTTP does
not: '²'.isdigit() is true yet int('²') raises, int('٣') is 3, and a
5,000-digit Content-Length is no length at all (Python 3.11 refuses to convert
it). A malformed head is a ValueError saying what is wrong; the server answers
it with 400, a client with a protocol_error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

from agent.reading.model import PROTOCOL_ERROR, ProbeFailure

MAX_HEAD_BYTES = 64 * 1024
MAX_FIELDS = 100
MAX_DIGITS = 15  # a petabyte: more than any body or chunk here
DIGITS = {10: frozenset("0123456789"), 16: frozenset("0123456789abcdefABCDEF")}


def parse_number(text: str, what: str, base: int = 10, max_digits: int = MAX_DIGITS) -> int:
    """A non-negative integer of 1 to `max_digits` ASCII digits (hex for base 16): no sign,
    no '_', no '0x', no other script's digits."""
    if not 0 < len(text) <= max_digits or not DIGITS[base].issuperset(text):
        kind = "hex digits" if base == 16 else "digits"
        raise ValueError(f"bad {what} {text[:20]!r}: expected 1 to {max_digits} {kind}")
    return int(text, base)


def head_lines(head: bytes) -> list[str]:
    """The head's lines, the blank line that ends it dropped; bounded in bytes and fields."""
    if len(head) > MAX_HEAD_BYTES:
        raise ValueError(f"head larger than {MAX_HEAD_BYTES} bytes")
    lines = head.decode("latin-1").split("\r\n")
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > MAX_FIELDS + 1:
        raise ValueError(f"more than {MAX_FIELDS} header fields")
    return lines or [""]


def parse_fields(lines: list[str]) -> dict[str, str]:
    """Header fields by lower-cased name, the last of a repeated one kept; lines without a
    colon are skipped. Content-Length is checked here, so no caller meets a bad one, and
    copies of it must agree (two lengths are how requests get smuggled)."""
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            parse_number(value, "Content-Length")
            if headers.get(name, value) != value:
                raise ValueError("conflicting Content-Length fields")
        headers[name] = value
    return headers


def content_length(headers: Mapping[str, str]) -> Optional[int]:
    value = headers.get("content-length")
    return None if value is None else parse_number(value, "Content-Length")


def parse_request(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """(method, target, version, headers) of an HTTP/1.x request head; ValueError if malformed."""
    lines = head_lines(head)
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise ValueError("malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise ValueError("not HTTP/1.x")
    return method, target, version, parse_fields(lines[1:])


def parse_response(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers of an HTTP/1.x response head. Its callers are probes, so a
    malformed head is their PROTOCOL_ERROR failure."""
    try:
        lines = head_lines(head)
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or len(parts[1]) != 3:
            raise ValueError(f"not an HTTP response: {lines[0][:60]!r}")
        status = parse_number(parts[1], "status code", max_digits=3)
        return status, parse_fields(lines[1:])
    except ValueError as exc:
        raise ProbeFailure(PROTOCOL_ERROR, str(exc)) from None
