"""Which uplink the node is on, whether it changed, and whether it is the usual one.

A desa with fiber and a VSAT or 4G backup fails over when the fiber is cut: the default
route moves to another interface or gateway (failover on the node), or only the ISP's
first hop changes (failover on the village router). The link look runs every few hours,
so `watch` checks cheaply in between: /proc/net/route every `watch_s` seconds (no
packet sent) and the first hops every tenth time (one echo per TTL, a few hundred bytes),
and returns as soon as either changed, so the look runs at once.

`note` keeps, per target, the uplinks seen and how long each was held: the usual uplink is
the one held longest, and any other is a backup.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any, Optional

from agent.linktype.evidence import default_interface, trace_first_hops
from agent.linktype.settings import LinktypeConfig
from agent.net import iface
from agent.net.hops import isp_hop
from agent.reading.model import FieldValue, ProbeFailure

log = logging.getLogger(__name__)

MAX_KEPT = 8  # uplinks remembered per target (a load-balanced ISP may show several hops)
HOP_EVERY = 10  # route checks per first-hop check
HOP_TTL = 4
CONFIRM_S = 1.0  # a route seen changed is read again after this, so a flap mid-update is not a change


@dataclasses.dataclass(frozen=True)
class Uplink:
    iface: str
    gateway: str
    isp_hop: str

    @property
    def key(self) -> str:
        return f"{self.iface or '-'} via {self.gateway or '-'} hop {self.isp_hop or '-'}"

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> Uplink:
        def text(name: str) -> str:
            value = fields.get(name)
            return value if isinstance(value, str) else ""

        return cls(text("iface"), text("gateway"), text("isp_hop"))


def route_now() -> tuple[str, str]:
    """(interface, gateway) of the default route now, from /proc/net/route."""
    return default_interface(), iface.default_gateway() or ""


async def hop_now(target: str, gateway: str) -> str:
    """The ISP's first hop towards `target` now; "" when it cannot be told (no answer, no raw socket)."""
    try:
        address, _ = await iface.resolve(target, 3.0)
        hops = await trace_first_hops(address, HOP_TTL, 1.0)
    except (ProbeFailure, OSError) as exc:
        log.debug("uplink watch: no trace (%s)", exc)
        return ""
    found = isp_hop(hops, gateway or None)
    return found[1] if found and found[1] != address else ""


def changes(before: Uplink, now: Uplink) -> list[str]:
    """What differs: "route" (interface or gateway) and "isp_hop" (only when both are known)."""
    out = []
    if (before.iface, before.gateway) != (now.iface, now.gateway):
        out.append("route")
    if before.isp_hop and now.isp_hop and before.isp_hop != now.isp_hop:
        out.append("isp_hop")
    return out


async def watch(target: str, last: Optional[Mapping[str, FieldValue]], lt: LinktypeConfig) -> str:
    """Return (what changed) once the uplink differs from the last look's; never without one."""
    if last is None or lt.watch_s <= 0 or not (last.get("iface") or last.get("gateway")):
        await asyncio.Event().wait()  # nothing to compare with: the schedule alone decides
    before = Uplink.of(last or {})
    checks = 0
    while True:
        await asyncio.sleep(lt.watch_s)
        checks += 1
        route = route_now()
        if (route[0], route[1]) != (before.iface, before.gateway):
            await asyncio.sleep(CONFIRM_S)
            if route_now() == route:
                log.info("uplink watch: the default route moved to %s via %s", route[0] or "-", route[1] or "-")
                return "route"
        elif checks % HOP_EVERY == 0 and before.isp_hop:
            hop = await hop_now(target, route[1])
            if hop and hop != before.isp_hop and await hop_now(target, route[1]) == hop:
                log.info("uplink watch: the ISP hop moved from %s to %s", before.isp_hop, hop)
                return "isp_hop"


def note(state: dict[str, Any], uplink: Uplink, now: float) -> tuple[str, bool]:
    """Record `uplink` as seen at `now` in `state` (a JSON-able dict, changed in place).

    Returns (the previous uplink's key or "", whether `uplink` is a backup: not the one held
    longest). Time held is credited to the uplink that was current since the last note.
    """
    seen: dict[str, float] = {str(k): float(v) for k, v in dict(state.get("held_s", {})).items()}
    previous = str(state.get("uplink", ""))
    since = state.get("since")
    if previous and isinstance(since, (int, float)) and now > since:
        seen[previous] = seen.get(previous, 0.0) + (now - since)
    seen.setdefault(uplink.key, 0.0)
    seen = dict(sorted(seen.items(), key=lambda kv: -kv[1])[:MAX_KEPT])
    seen.setdefault(uplink.key, 0.0)
    state.update(uplink=uplink.key, since=now, held_s=seen)
    usual = max(seen.items(), key=lambda kv: kv[1])[0]
    backup = len(seen) > 1 and uplink.key != usual and seen[usual] > 0
    return previous, backup
