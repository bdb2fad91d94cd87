"""Throughput: download and upload goodput, the bytes it cost, and latency under load.

Backends: `http` (default; a LibreSpeed client against `netprobe speed-server`
or any LibreSpeed install: target is its base URL), `speedtest` (speedtest-cli:
target "auto", a server id, or a legacy-protocol URL) and `iperf3` (target
host[:port] of an `iperf3 -s`).

It costs data, so: with a config, scheduled tests run only when
[throughput] enabled = true; every test is counted in a ledger in the state
directory; a test that would pass the daily or monthly budget is skipped, and
the skip is a Reading with error code "skipped". Unattended runs are spaced by
randomized exponential gaps (mean and clamps), as M-Lab asks of its clients.

Fields: download_mbps, upload_mbps, bytes_used, duration_s, streams, backend,
server, stop_reason ("stable" | "time_cap" | "byte_cap" | "server_end" |
"fixed"), rtt_idle_ms, rtt_loaded_ms (down/up), bufferbloat_ms,
bufferbloat_grade (A+ .. F), rtt_method ("icmp" | "http" | "tcp"); per
direction: bytes_down_phase, bytes_up_phase, stop_reason_down,
stop_reason_up, warmup_down_s, warmup_up_s; and the budget: budget_day_mb,
budget_month_mb (used so far, this test included).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Mapping
from typing import Any, Optional

from agent.probes.base import Probe, ProbeContext
from agent.reading.model import SKIPPED, FieldValue, Outcome, ProbeFailure
from agent.schema import setting
from agent.throughput.budget import Budget
from agent.throughput.settings import ThroughputConfig

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
STALL_TIMEOUT_S = 10.0
UNCAPPED_ESTIMATE = 50_000_000  # budget estimate for a first test with no byte cap (speedtest-cli, iperf3)


@dataclasses.dataclass(frozen=True)
class Options:
    backend: str = setting("http", choices=("http", "speedtest", "iperf3"), help="how to measure")
    streams: int = setting(4, min=1, max=16, help="parallel TCP streams (http, iperf3)")
    max_seconds: float = setting(10.0, above=0.0, max=60.0, help="time cap per direction (http, iperf3)")
    max_mb: float = setting(20.0, min=0.0, help="byte cap per test, MB (http); 0 = none")
    upload: bool = setting(True, help="measure the upload too")
    stable_pct: float = setting(3.0, above=0.0, max=50.0, help="stop when the estimate moves less than this...")
    stable_span: float = setting(1.5, above=0.0, max=10.0, help="...over this many seconds")
    token: str = setting("", help="shared token of a speed-server that asks for one (never logged)")
    verify_tls: bool = setting(True, help="verify the server certificate (https)")
    ca_file: str = setting("", help="extra CA bundle (PEM) to trust")
    mean_interval: float = setting(21600.0, above=0.0, help="mean seconds between scheduled tests")
    min_interval: float = setting(3600.0, min=0.0, help="never sooner than this after the last test")
    max_interval: float = setting(86400.0, above=0.0, help="never later than this")


def exponential_gap(mean: float, low: float, high: float, rng: random.Random) -> float:
    """Poisson-process spacing (no node tests at the same minute as its neighbours), clamped."""
    return min(max(rng.expovariate(1.0 / mean), low), max(low, high))


def next_interval(
    o: Options, _interval: float, _last: Optional[Mapping[str, FieldValue]], _ctx: ProbeContext, rng: random.Random
) -> float:
    return exponential_gap(o.mean_interval, o.min_interval, o.max_interval, rng)


def byte_cap(options: Options) -> Optional[int]:
    return int(options.max_mb * 1e6) if options.max_mb > 0 and options.backend == "http" else None


async def measure(target: str, options: Options, timeout: float, progress: Any = None) -> dict[str, FieldValue]:
    """Run the backend; the Reading fields, same keys for every backend."""
    from agent.throughput.result import to_fields

    stall = min(timeout, STALL_TIMEOUT_S)
    t0 = time.perf_counter()
    if options.backend == "http":
        from agent.throughput import librespeed

        settings = librespeed.Settings(
            streams=options.streams,
            time_cap_s=options.max_seconds,
            byte_cap=byte_cap(options),
            upload=options.upload,
            stable_pct=options.stable_pct,
            stable_span_s=options.stable_span,
            token=options.token,
            verify_tls=options.verify_tls,
            ca_file=options.ca_file,
            timeout=stall,
        )
        m = await librespeed.measure(target, settings, progress)
        return to_fields("http", m.server, m.down, m.up, m.idle_rtts, time.perf_counter() - t0, m.extra_bytes,
                         m.rtt_method)  # fmt: skip
    if options.backend == "speedtest":
        from agent.throughput import speedtest

        down, up_phase, idle, server, method = await speedtest.measure(target, stall, options.upload)
        return to_fields("speedtest", server, down, up_phase, idle, time.perf_counter() - t0, rtt_method=method)
    from agent.throughput import iperf3

    down, up_phase, idle, method = await iperf3.measure_with_rtt(
        target, options.max_seconds, options.streams, options.upload
    )
    return to_fields("iperf3", target, down, up_phase, idle, time.perf_counter() - t0, rtt_method=method)


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    from agent.throughput import budget as b

    tp = ctx.throughput
    labels: dict[str, FieldValue] = {"backend": options.backend, "server": target}
    if not tp.enabled and not ctx.interactive:
        return Outcome.failed(SKIPPED, "throughput tests are off ([throughput] enabled = false)", **labels)
    today = ctx.today or dt.date.today()
    ledger = b.Ledger(ctx.state_dir) if ctx.state_dir else None
    rules = budget_of(tp)
    if ledger is not None and rules is not None:
        state = ledger.load()
        estimate = b.estimate_bytes(state, byte_cap(options) or UNCAPPED_ESTIMATE)
        why = b.refusal(state, rules, today, estimate)
        if why:
            state = b.roll(state, today, rules.reset_day)
            return Outcome.failed(SKIPPED, why, bytes_used=0, **labels, **budget_fields(state))
    try:
        fields = await measure(target, options, timeout, ctx.progress)
    except ProbeFailure as exc:
        return Outcome.failed(exc.code, exc.message, **labels)
    if ledger is not None:
        used = int(fields.get("bytes_used") or 0)
        try:
            state = ledger.update(lambda s: b.record(s, used, today, rules.reset_day if rules else 1))
            fields.update(budget_fields(state))
        except OSError as exc:  # e.g. a technician without write access to the state directory
            log.warning("cannot record %d bytes in the throughput ledger %s: %s", used, ledger.path, exc)
            fields["ledger_error"] = str(exc.strerror or exc)
    return Outcome(ok=True, fields=fields)


def budget_of(tp: ThroughputConfig) -> Budget:

    def limit(mb: float) -> Optional[int]:
        return int(mb * 1e6) if mb > 0 else None

    return Budget(limit(tp.monthly_budget_mb), limit(tp.daily_budget_mb), tp.reset_day)


def budget_fields(state: Any) -> dict[str, FieldValue]:
    return {"budget_day_mb": round(state.day_bytes / 1e6, 3), "budget_month_mb": round(state.month_bytes / 1e6, 3)}


PROBE = Probe(
    kind="throughput",
    summary="download/upload goodput, bytes used and latency under load (http, speedtest, iperf3)",
    options=Options,
    run=run,
    interval_s=21600.0,
    timeout_s=DEFAULT_TIMEOUT_S,
    heavy=True,
    next_interval=next_interval,
)
