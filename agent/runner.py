"""Runs one probe and always returns a Reading, whatever went wrong.

The collector finds blank spots from failed Readings, so a probe that raises,
hangs or meets a bug still yields a Reading with `ok: false`. Every Reading is
made to meet the contract (`agent.reading.contract.conform`) before it leaves
here, so the collector never rejects what a node spooled and sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

from agent import clock, probes
from agent.config import Config, TargetConfig, build_target
from agent.probes.base import ProbeContext
from agent.reading.contract import conform
from agent.reading.model import INTERNAL, TIMEOUT, Identity, Outcome, ProbeFailure, Reading, make_reading
from agent.schema import ConfigError, Problem, TomlValue

log = logging.getLogger(__name__)

GRACE_S = 5.0  # beyond the probe's own timeouts, before the runner gives up on it


def identity_of(cfg: Config) -> Identity:
    return Identity(node=cfg.node.resolved_id(), site=cfg.site.as_dict())


def budget_s(target: TargetConfig) -> float:
    """An upper bound on one run: every request paced and timing out in turn, plus grace.

    It only catches a probe that hangs; a probe's own timeouts end a normal run far sooner.
    """
    opts = target.options
    count = getattr(opts, "count", 1)
    spacing = getattr(opts, "packet_interval", 0.0)
    return count * (spacing + target.timeout) + target.timeout + GRACE_S


async def run_target(
    target: TargetConfig,
    identity: Identity,
    ctx: Optional[ProbeContext] = None,
    seq: Optional[Callable[[], int]] = None,
    limit_s: Optional[float] = None,
) -> Reading:
    probe = probes.get(target.kind)
    ctx = ctx or ProbeContext(interactive=True)  # no context: a person's ad-hoc run
    started_epoch, started_mono, t0 = time.time(), clock.monotonic_s(), time.perf_counter()
    limit = limit_s if limit_s is not None else budget_s(target)
    try:
        outcome = await asyncio.wait_for(probe.run(target.target, target.options, target.timeout, ctx), limit)
    except ProbeFailure as exc:
        outcome = Outcome.failed(exc.code, exc.message)
    except asyncio.TimeoutError:
        outcome = Outcome.failed(TIMEOUT, f"{target.kind} {target.target} did not finish within {limit:g} s")
    except Exception as exc:  # a bug must still leave a Reading behind
        log.exception("probe %s %s failed unexpectedly", target.kind, target.target)
        outcome = Outcome.failed(INTERNAL, f"{type(exc).__name__}: {exc}")
    duration = time.perf_counter() - t0
    reading = make_reading(
        identity,
        target.kind,
        target.target,
        outcome,
        started_epoch,
        started_mono,
        duration,
        seq() if seq else None,
    )
    return conform(reading)


def adhoc_target(kind: str, target: str, timeout: Optional[float], **options: Optional[TomlValue]) -> TargetConfig:
    """A TargetConfig for a command-line probe, validated like a config entry."""
    data: dict[str, Any] = {"kind": kind, "target": target, **{k: v for k, v in options.items() if v is not None}}
    if timeout is not None:
        data["timeout"] = timeout
    problems: list[Problem] = []
    built = build_target(data, "", problems)
    if problems or built is None:
        raise ConfigError(problems, "command line")
    return built
