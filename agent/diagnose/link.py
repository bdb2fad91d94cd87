"""The link-type check of `netprobe diagnose`: a brief look, told with its evidence in en/id.

diagnose must end within 20 s, so this looks for about 4 s (no idle-promotion
test, a 3-hop trace) and says so: GEO and fiber show in seconds, while LEO and
cellular need the daemon's longer look, so a brief "unknown" is expected there.
"""

from __future__ import annotations

import asyncio
import logging
import time

from agent import clock
from agent.config import Config
from agent.diagnose.options import DEADLINE_S, DiagnoseOptions
from agent.diagnose.verdicts import FAIL, OK, SKIP, Check, Params, role_of
from agent.linktype.classify import Observation, Verdict, classify
from agent.linktype.evidence import Plan, gather
from agent.linktype.report import operators_from, verdict_fields
from agent.reading.model import TIMEOUT, Outcome, ProbeFailure, Reading, make_reading
from agent.runner import identity_of

log = logging.getLogger(__name__)

LOOK_S = 4.0
LIMIT_S = 8.0
LATENCY_KINDS = ("icmp", "tcp", "dns", "http")


def time_spent(readings: list[Reading]) -> float:
    """diagnose's elapsed time so far: the latency probes ran together, later checks one by one."""
    together = [r.duration_ms for r in readings if r.measurement in LATENCY_KINDS]
    in_turn = [r.duration_ms for r in readings if r.measurement not in LATENCY_KINDS]
    return (max(together, default=0.0) + sum(in_turn)) / 1000.0


def reference_target(cfg: Config) -> str:
    """The first configured public ICMP target (it is where the trace points)."""
    for t in cfg.targets:
        if t.kind == "icmp" and role_of(t.kind, t.target, t.options, t.role) == "internet":
            return t.target
    return "1.1.1.1"


def evidence_numbers(verdict: Verdict) -> list[tuple[str, Params]]:
    out: list[tuple[str, Params]] = []
    for e in verdict.evidence:
        out.append((f"link.ev.{e.rule}", dict(e.params)))
    return out


async def look(cfg: Config, target: str, seconds: float) -> tuple[Verdict, Observation, dict[str, str]]:
    lt = cfg.linktype
    plan = Plan(
        observe_s=max(1.0, seconds),
        rate_hz=lt.rate_hz,
        promo_trials=0,
        idle_max_kbps=lt.idle_max_kbps,
        dish=lt.dish,
        isp_hop=lt.isp_hop,
        max_trace_ttl=3,
        dish_timeout=1.0,
        trace_wait=0.8,
    )
    obs, facts = await gather(target, plan, operators_from(lt), lt.asn)
    return classify(obs), obs, facts


async def link_check(
    cfg: Config, readings: list[Reading], checks: list[Check], _options: DiagnoseOptions
) -> tuple[list[Reading], list[Check]]:
    """A later check of diagnose: ([the link Reading], [the "link" Check])."""

    if not cfg.linktype.enabled:
        return [], []
    status = {c.name: c.status for c in checks}
    if status.get("gateway") == FAIL or status.get("internet") == FAIL:
        return [], [Check("link", SKIP, [("link.skipped_down", {})])]
    left = DEADLINE_S - time_spent(readings)
    if left < 3.0:
        return [], [Check("link", SKIP, [("link.no_time", {})])]
    limit = min(LIMIT_S, left)
    target = reference_target(cfg)
    started, mono, t0 = time.time(), clock.monotonic_s(), time.perf_counter()
    try:
        verdict, obs, facts = await asyncio.wait_for(look(cfg, target, min(LOOK_S, limit - 2.5)), limit)
        outcome = Outcome(ok=True, fields=verdict_fields(verdict, obs, facts))
    except (ProbeFailure, asyncio.TimeoutError, OSError) as exc:
        message = exc.message if isinstance(exc, ProbeFailure) else f"no verdict within {limit:g} s"
        code = exc.code if isinstance(exc, ProbeFailure) else TIMEOUT
        outcome = Outcome.failed(code, message)
        verdict = None
    reading = make_reading(
        identity_of(cfg), "link", target, outcome, started, mono, time.perf_counter() - t0
    )  # fmt: skip
    if verdict is None:
        error = outcome.error.message if outcome.error else ""
        return [reading], [Check("link", SKIP, [("link.failed", {"why": error})], readings=(reading.id,))]
    numbers: list[tuple[str, Params]] = [
        (
            "link.verdict",
            {
                "link_type": verdict.link_type,
                "confidence": f"{verdict.confidence:.2f}",
                "access": verdict.access,
                "backhaul": verdict.backhaul,
            },
        )
    ]
    numbers += evidence_numbers(verdict)
    hint = ("link.brief_look", {"seconds": f"{LOOK_S:g}"})
    return [reading], [Check("link", OK, numbers, hint=hint, readings=(reading.id,))]
