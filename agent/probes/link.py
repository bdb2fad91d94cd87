"""Link type: fiber, GEO/LEO satellite, cellular or other, with the evidence.

Looks at the uplink for a few minutes (paired pings to the gateway and the
ISP's first hop, the idle-promotion test, interface facts, the Starlink dish)
and classifies it with `agent.linktype.classify`. It runs every few hours; after the
verdict changes it looks again soon (`[linktype].confirm_s`), so a change is
published at once and confirmed shortly after. In between, its watcher reads the
default route every `[linktype].watch_s` seconds (and the first hops every tenth
time): when the uplink moves (a fiber cut, a failover to a backup link), a short
look runs at once and its Reading says `changed`, what changed and whether this is
the usual uplink or a backup.

Target: a nearby host (e.g. 1.1.1.1) to trace the first hops towards; it also
stands in for the ISP hop when that does not answer.

Fields: link_type, confidence, access, backhaul, access_ms, isp_min_ms,
isp_hop, iface, gateway, idle_samples, samples, evidence
("rule:key=value,...;rule:..."), links (when two links were seen), changed
(the link type or the uplink differs from the last look), change ("route",
"isp_hop", "link_type", joined by +; "" when none), previous (the last link
type), uplink ("IFACE via GATEWAY hop ISP_HOP"), previous_uplink, backup (true
when this uplink is not the one held longest).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import time
from collections.abc import Mapping
from typing import Any, Optional

from agent.linktype.classify import UNKNOWN, classify
from agent.linktype.evidence import Plan, gather
from agent.linktype.report import operators_from, verdict_fields
from agent.linktype.settings import LinktypeConfig
from agent.linktype.uplink import Uplink, changes, note, route_now, watch
from agent.probes.base import Probe, ProbeContext
from agent.reading.model import FieldValue, Outcome
from agent.schema import setting

log = logging.getLogger(__name__)

STATE_FILE = "linktype.json"
CHANGE_LOOK_S = 20.0  # a new uplink's first look: short, so the change is out at once; the full one follows


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


def load_state(state_dir: str) -> dict[str, Any]:
    path = os.path.join(state_dir, STATE_FILE) if state_dir else ""
    state: dict[str, Any] = {}
    if path:
        with contextlib.suppress(OSError, ValueError), open(path) as f:
            loaded = json.load(f)
            state = dict(loaded) if isinstance(loaded, dict) else {}
    return state


def save_state(state_dir: str, state: dict[str, Any]) -> None:
    if not state_dir:
        return
    path = os.path.join(state_dir, STATE_FILE)
    try:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("cannot keep the link verdict in %s: %s", path, exc)


def remember(state_dir: str, target: str, link_type: str) -> Optional[str]:
    """Store the verdict; return the previous one (None on the first run or without a state dir)."""
    state = load_state(state_dir)
    previous = state.get(target)
    state[target] = link_type
    save_state(state_dir, state)
    return previous if isinstance(previous, str) else None


def uplink_fields(state_dir: str, target: str, uplink: Uplink, now: float) -> dict[str, FieldValue]:
    """uplink, previous_uplink, backup, and the route/hop part of `change`, from the kept state."""
    state = load_state(state_dir)
    per_target = state.get("uplinks")
    uplinks: dict[str, Any] = dict(per_target) if isinstance(per_target, dict) else {}
    mine = uplinks.get(target)
    kept: dict[str, Any] = dict(mine) if isinstance(mine, dict) else {}
    before = kept.get("last")
    previous, backup = note(kept, uplink, now)
    moved = changes(Uplink.of(before), uplink) if isinstance(before, dict) else []
    kept["last"] = dataclasses.asdict(uplink)
    uplinks[target] = kept
    state["uplinks"] = uplinks
    save_state(state_dir, state)
    fields: dict[str, FieldValue] = {"uplink": uplink.key, "previous_uplink": previous, "backup": backup}
    fields["change"] = "+".join(moved)
    return fields


def route_moved(state_dir: str, target: str) -> bool:
    """The default route differs from the one of the last look: this run was woken by the watcher."""
    mine = load_state(state_dir).get("uplinks", {})
    last = mine.get(target, {}).get("last") if isinstance(mine, dict) else None
    if not isinstance(last, dict):
        return False
    old = Uplink.of(last)
    return (old.iface, old.gateway) != route_now()


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    lt = ctx.linktype
    plan = plan_from(lt, options)
    if route_moved(ctx.state_dir, target):  # a new uplink: say so now, look closer after confirm_s
        plan = dataclasses.replace(plan, observe_s=min(plan.observe_s, CHANGE_LOOK_S), promo_trials=0)
    obs, facts = await gather(target, plan, operators_from(lt), lt.asn)
    verdict = classify(obs)
    fields = verdict_fields(verdict, obs, facts)
    fields.update(iface=str(facts.get("iface", "")), gateway=str(facts.get("gateway", "")))
    uplink = Uplink.of(fields)
    moved = uplink_fields(ctx.state_dir, target, uplink, time.time())
    previous = remember(ctx.state_dir, target, verdict.link_type)
    retyped = previous is not None and previous != verdict.link_type
    change = "+".join(p for p in (str(moved.pop("change")), "link_type" if retyped else "") if p)
    fields.update(changed=bool(change), change=change, previous=previous or "", **moved)
    return Outcome(ok=True, fields=fields)


async def watch_uplink(
    target: str, _options: Options, last: Optional[Mapping[str, FieldValue]], ctx: ProbeContext
) -> str:
    """The scheduler's early wake-up: returns (what moved) when the uplink moved since the last look."""
    return await watch(target, last, ctx.linktype)


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
    watch=watch_uplink,
)
