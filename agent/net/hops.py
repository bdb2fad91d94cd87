"""What a trace's first hops say about this host's uplink (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional


def isp_hop(hops: Sequence[str], gateway: Optional[str]) -> Optional[tuple[int, str]]:
    """(TTL, address) of the ISP's first hop, or None: the first responder beyond the LAN's router.

    `hops[i]` is the responder at TTL i + 1, "" where none answered. The link
    classifier subtracts the gateway's RTT from this hop's to isolate the access
    link, so the hop must lie beyond that link: a hop too far adds a little
    backhaul, but the LAN router taken for it hides the link altogether. Its
    address says nothing (carriers' first hops are often private or CGNAT, and a
    LAN router may answer from a public WAN address), its position does:

    - the gateway answered: the first responder after it;
    - the gateway is known but not among the responders (silent, or answering
      from another of its addresses): it is still TTL 1, so the first
      responder from TTL 2 on;
    - no gateway (a point-to-point default route: PPP, a modem in raw-IP mode):
      TTL 1 already is the ISP's, so the first responder.
    """
    start = 0  # no gateway
    if gateway:
        start = hops.index(gateway) + 1 if gateway in hops else 1
    return next(((ttl, h) for ttl, h in enumerate(hops[start:], start + 1) if h), None)
