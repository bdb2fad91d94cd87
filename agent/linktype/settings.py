"""`[linktype]`: how the link look observes the uplink, and the operators whose addresses name a link."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Optional

from agent.schema import setting


def check_prefixes(values: list[str]) -> Optional[str]:
    for v in values:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            return f"'{v}' is not an address block like 103.228.240.0/22"
    return None


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    name: str = setting(help="e.g. Starlink Indonesia")
    link_type: str = setting(
        choices=("fiber", "satellite-geo", "satellite-leo", "cellular", "other"), help="what this operator sells"
    )
    prefixes: list[str] = setting(factory=list, check=check_prefixes, help="address blocks seen in its first hops")
    asns: list[int] = setting(factory=list, help="its AS numbers")


# Starlink's ASNs, AS45700 being the Indonesian entity.
DEFAULT_OPERATORS: tuple[OperatorConfig, ...] = (
    OperatorConfig(
        "Starlink", "satellite-leo", ["103.228.240.0/22", "116.254.96.0/22", "179.65.192.0/21"], [14593, 45700]
    ),
    OperatorConfig("Telkomsel", "cellular", [], [23693]),
    OperatorConfig("Telkom IndiHome", "fiber", [], [7713, 17974]),
)


@dataclasses.dataclass(frozen=True)
class LinktypeConfig:
    enabled: bool = setting(True, help="classify the uplink: fiber, satellite, cellular")
    observe_s: float = setting(180.0, min=5.0, max=1800.0, help="seconds of paired pings per link run")
    rate_hz: float = setting(5.0, min=0.5, max=20.0, help="pings per second to the gateway and the ISP hop")
    promo_trials: int = setting(2, min=0, max=5, help="cellular idle-promotion trials per run")
    promo_idle_s: float = setting(20.0, min=1.0, max=120.0, help="silence before each promotion trial")
    idle_max_kbps: float = setting(200.0, min=10.0, help="above this interface rate, samples are not idle")
    isp_hop: str = setting("", help="the ISP's first hop; empty finds it with a short trace")
    dish: str = setting("192.168.100.1:9200", help='Starlink dish gRPC address; "" skips the check')
    asn: int = setting(0, min=0, help="this node's operator AS number, when known (0: unknown)")
    confirm_s: float = setting(900.0, min=60.0, help="re-check this soon after the verdict changed")
    watch_s: float = setting(
        30.0,
        min=0.0,
        help="between looks, check the default route this often (and the ISP hop every 10th time); "
        "a new uplink is looked at and published at once; 0: off",
    )
    operators: list[OperatorConfig] = setting(
        factory=lambda: list(DEFAULT_OPERATORS), help="operators whose prefixes/ASNs name the link"
    )
