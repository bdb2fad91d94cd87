"""Link type: fiber, GEO/LEO satellite, cellular or other, with the evidence.

Looks at the uplink for a few minutes (paired pings to the gateway and the
ISP's first hop, the idle-promotion test, interface facts, the Starlink dish)
and classifies it with `agent.linktype.classify`. It runs every few hours; after the
verdict changes it looks again soon (`[linktype].confirm_s`), so a change is
published at once and confirmed shortly after.

Target: a nearby host (e.g. 1.1.1.1) to trace the first hops towards; it also
stands in for the ISP hop when that does not answer.

Fields: link_type, confidence, access, backhaul, access_ms, isp_min_ms,
isp_hop, idle_samples, samples, changed, previous, evidence
("rule:key=value,...;rule:..."), links (when two links were seen).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
from collections.abc import Mapping
from typing import Any, Optional

from agent.linktype.classify import UNKNOWN, classify
from agent.linktype.evidence import Plan, gather
from agent.linktype.report import operators_from, verdict_fields
from agent.linktype.settings import LinktypeConfig
from agent.probes.base import Probe, ProbeContext
from agent.reading.model import FieldValue, Outcome
from agent.schema import setting

log = logging.getLogger(__name__)

STATE_FILE = "linktype.json"


@dataclasses.dataclass(frozen=True)
class Options:
    observe_s: float = setting(0.0, min=0.0, max=1800.0, help="0 takes [linktype].observe_s")
    promo_trials: int = setting(-1, min=-1, max=5, help="-1 takes [linktype].promo_trials")
    promo_idle_s: float = setting(0.0, min=0.0, max=120.0, help="0 takes [linktype].promo_idle_s")
    isp_hop: str = setting("", help="the ISP's first hop; empty takes [linktype].isp_hop or traces it")


def plan_from(lt: LinktypeConfig, options: Options) -> Plan:
    return Plan(
        observe_s=options.observe_s or lt.observe_s,
        rate_hz=lt.rate_hz,
        promo_trials=lt.promo_trials if options.promo_trials < 0 else options.promo_trials,
        promo_idle_s=options.promo_idle_s or lt.promo_idle_s,
        idle_max_kbps=lt.idle_max_kbps,
        dish=lt.dish,
        isp_hop=options.isp_hop or lt.isp_hop,
    )


def remember(state_dir: str, target: str, link_type: str) -> Optional[str]:
    """Store the verdict; return the previous one (None on the first run or without a state dir)."""
    path = os.path.join(state_dir, STATE_FILE) if state_dir else ""
    state: dict[str, Any] = {}
    if path:
        with contextlib.suppress(OSError, ValueError), open(path) as f:
            state = dict(json.load(f))
    previous = state.get(target)
    state[target] = link_type
    if path:
        try:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(state, f)
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("cannot keep the link verdict in %s: %s", path, exc)
    return previous if isinstance(previous, str) else None


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    lt = ctx.linktype
    obs, facts = await gather(target, plan_from(lt, options), operators_from(lt), lt.asn)
    verdict = classify(obs)
    fields = verdict_fields(verdict, obs, facts)
    previous = remember(ctx.state_dir, target, verdict.link_type)
    changed = previous is not None and previous != verdict.link_type
    fields.update(changed=changed, previous=previous or "")
    return Outcome(ok=True, fields=fields)


def next_interval(
    _options: Options,
    interval: float,
    last: Optional[Mapping[str, FieldValue]],
    ctx: ProbeContext,
    rng: random.Random,
) -> float:
    """`[linktype].confirm_s` after a changed or unknown verdict (confirm it soon), else the interval."""
    if last is not None and (last.get("changed") is True or last.get("link_type") == UNKNOWN):
        return ctx.linktype.confirm_s * rng.uniform(0.9, 1.1)
    return interval * rng.uniform(0.95, 1.05)


PROBE_INTERVAL_S = 4 * 3600.0

PROBE = Probe(
    kind="link",
    summary="link type (fiber, GEO/LEO satellite, cellular) with its evidence",
    options=Options,
    run=run,
    interval_s=PROBE_INTERVAL_S,
    timeout_s=300.0,
    next_interval=next_interval,
)
