"""Facts about this host's network, read from /proc and the resolver."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from typing import Optional

from agent.reading.model import NO_ROUTE, RESOLVE_FAILED, TIMEOUT, ProbeFailure

GATEWAY_ALIAS = "gateway"


def parse_route_table(text: str) -> Optional[str]:
    """The IPv4 default gateway from /proc/net/route text, lowest metric first."""
    best: Optional[tuple[int, str]] = None
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8 or parts[1] != "00000000" or parts[7] != "00000000":
            continue
        flags = int(parts[3], 16)
        if not flags & 0x2:  # RTF_GATEWAY
            continue
        gateway = socket.inet_ntoa(struct.pack("<I", int(parts[2], 16)))
        metric = int(parts[6])
        if best is None or metric < best[0]:
            best = (metric, gateway)
    return best[1] if best else None


def default_gateway() -> Optional[str]:
    try:
        with open("/proc/net/route") as f:
            return parse_route_table(f.read())
    except OSError:
        return None


def resolve_gateway(host: str) -> str:
    if host != GATEWAY_ALIAS:
        return host
    gateway = default_gateway()
    if gateway is None:
        raise ProbeFailure(NO_ROUTE, "no default route: this host has no gateway (check the LAN cable, Wi-Fi or DHCP)")
    return gateway


def ip_family(host: str) -> Optional[int]:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


async def resolve(host: str, timeout: float, family: int = socket.AF_UNSPEC) -> tuple[str, int]:
    """(address, family) for a host name or literal; failures become ProbeFailure."""
    host = resolve_gateway(host)
    literal = ip_family(host)
    if literal is not None:
        return host, literal
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, None, family=family, type=socket.SOCK_STREAM), timeout)
    except asyncio.TimeoutError:
        raise ProbeFailure(TIMEOUT, f"looking up '{host}' took longer than {timeout:g} s") from None
    except socket.gaierror as exc:
        raise ProbeFailure(RESOLVE_FAILED, f"cannot resolve '{host}': {exc.strerror}") from None
    if not infos:
        raise ProbeFailure(RESOLVE_FAILED, f"cannot resolve '{host}': no addresses")
    fam, _, _, _, sockaddr = infos[0]
    return str(sockaddr[0]), int(fam)
