"""One rule for the ISP's first hop, shared by the path probe and the link classifier.

They used to disagree when the gateway was not among the responders: the path
probe dropped the first responder if its address was private, the classifier
skipped TTL 1 whatever answered there. The rule goes by position, because the
classifier needs a hop beyond the access link and addresses do not say where
that is (carriers' first hops are often private or CGNAT).
"""

from __future__ import annotations

from typing import Optional

import pytest

from agent.net.hops import isp_hop
from agent.probes.path import notable_hops

GW = "192.168.1.1"


def path_marks(hops: list[str], gateway: Optional[str]) -> tuple[str, Optional[int]]:
    marks = notable_hops([{"ttl": i + 1, "address": h} for i, h in enumerate(hops)], gateway)
    return marks["isp_hop"], marks["isp_hop_ttl"]


@pytest.mark.parametrize(
    ("hops", "gateway", "expected"),
    [
        # the gateway answered: the first responder after it, private or CGNAT alike
        ([GW, "100.64.0.1", "149.19.108.1"], GW, (2, "100.64.0.1")),
        ([GW, "", "10.20.0.1"], GW, (3, "10.20.0.1")),
        # the gateway is silent at TTL 1, and the ISP's first hop is CGNAT: the path probe used
        # to take it for the LAN router and mark TTL 3
        (["", "100.64.0.1", "10.1.2.3", "149.19.108.1"], GW, (2, "100.64.0.1")),
        # the LAN router answers from its public WAN address: the path probe used to mark the
        # router itself, which would leave the classifier no access delay to see
        (["203.0.113.1", "198.51.100.9"], GW, (2, "198.51.100.9")),
        # a point-to-point default route (PPP, a raw-IP modem): no LAN router, TTL 1 is the ISP's
        (["10.64.0.1", "10.64.8.2"], None, (1, "10.64.0.1")),
        ([GW], GW, None),
        (["", ""], GW, None),
        ([], None, None),
    ],
)
def test_the_isp_hop_is_the_first_responder_beyond_the_lan_router(
    hops: list[str], gateway: Optional[str], expected: Optional[tuple[int, str]]
) -> None:
    assert isp_hop(hops, gateway) == expected
    assert path_marks(hops, gateway) == ((expected[1], expected[0]) if expected else ("", None))


def test_the_path_probe_reads_ttls_not_list_positions() -> None:
    hops = [{"ttl": 2, "address": "100.64.0.1"}, {"ttl": 1, "address": ""}, {"ttl": 3, "address": "149.19.108.1"}]
    marks = notable_hops(hops, GW)
    assert (marks["isp_hop"], marks["isp_hop_ttl"]) == ("100.64.0.1", 2)
    assert (marks["first_public_hop"], marks["first_public_ttl"]) == ("149.19.108.1", 3)
