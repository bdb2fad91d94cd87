"""Starlink dish telemetry: the dish's own view of its link, read over its gRPC API.

Target: the dish's API address, e.g. 192.168.100.1:9200 ("dish" takes `[linktype] dish`).
Needs grpcio and protobuf (Debian: python3-grpcio, python3-protobuf); without them the
Reading fails with `not_installed`. The schema comes from the dish (server reflection),
so a firmware that renames or drops a field loses that field, not the Reading.

Fields (each only when the dish's firmware has it): pop_ping_latency_ms, pop_ping_drop_rate,
obstruction_fraction, obstructed_now, uptime_s, downlink_bps, uplink_bps, software,
hardware, alerts (the alerts that are on, joined by +, such as thermal throttling),
alert_count, outage_now (the cause of an outage under way), state (older firmware),
drop_rate_15m and latency_p50_15m_ms (from the history), outages, outage_s,
outage_causes ("CAUSE:count,..."), last_outage_cause (over the dish's history window),
refused (requests the dish refused or lacks, e.g. "get_history").
"""

from __future__ import annotations

import asyncio
import dataclasses

from agent.linktype.dish import read_dish
from agent.probes.base import Probe, ProbeContext
from agent.reading.model import BAD_TARGET, Outcome, ProbeFailure
from agent.schema import setting

DISH_ALIAS = "dish"


@dataclasses.dataclass(frozen=True)
class Options:
    request_timeout: float = setting(3.0, min=0.5, max=30.0, help="seconds for each gRPC request to the dish")


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    address = ctx.linktype.dish if target == DISH_ALIAS else target
    if not address:
        raise ProbeFailure(BAD_TARGET, 'no dish address: [linktype] dish is "" (give the address as the target)')
    telemetry = await asyncio.to_thread(read_dish, address, min(options.request_timeout, timeout))
    fields = dict(telemetry.fields)
    fields["refused"] = "+".join(telemetry.refused)
    return Outcome(ok=True, fields=fields)


PROBE = Probe(
    kind="dish",
    summary="Starlink dish telemetry: PoP latency, drops, obstruction, outages, alerts",
    options=Options,
    run=run,
    interval_s=900.0,
    timeout_s=15.0,
)
