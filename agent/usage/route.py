"""Which destinations are beyond the uplink: the node pays for those packets, not for LAN ones.

A destination is on the LAN (free) when a route without a gateway covers it in
/proc/net/route (the node's own subnets, not the default route) or it is a
loopback address; anything else, names included, is counted as crossing the uplink.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from typing import Optional

ROUTES = "/proc/net/route"
RTF_GATEWAY = 0x2
CACHE_S = 60.0
GATEWAY_WORD = "gateway"  # a target naming the default gateway (agent.net.iface)

_cache: tuple[float, list[tuple[int, int]]] = (0.0, [])


def parse_routes(text: str) -> list[tuple[int, int]]:
    """(network, mask) of the directly connected IPv4 routes in a /proc/net/route text."""
    out = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest, flags, mask = int(cols[1], 16), int(cols[3], 16), int(cols[7], 16)
        except ValueError:
            continue
        if flags & RTF_GATEWAY or mask == 0:
            continue
        # /proc/net/route prints the network-order word as a host-order number
        net = int.from_bytes(dest.to_bytes(4, sys.byteorder), "big")
        out.append((net, int.from_bytes(mask.to_bytes(4, sys.byteorder), "big")))
    return out


def connected(now: Optional[float] = None) -> list[tuple[int, int]]:
    global _cache
    now = time.monotonic() if now is None else now
    if now - _cache[0] > CACHE_S or not _cache[0]:
        try:
            with open(ROUTES) as f:
                routes = parse_routes(f.read())
        except OSError:
            routes = []
        _cache = (now, routes)
    return _cache[1]


def is_local(host: str, routes: Optional[list[tuple[int, int]]] = None) -> bool:
    """True when packets to `host` (an address, host:port, or "gateway") stay on the LAN."""
    if host == GATEWAY_WORD:
        return True
    text = host.strip("[]")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if ":" in text and text.count(":") == 1:  # host:port
            return is_local(text.split(":")[0], routes)
        return False
    if address.is_loopback:
        return True
    if address.version != 4:
        return address.is_link_local
    value = int(address)
    return any(value & mask == net for net, mask in (connected() if routes is None else routes))
