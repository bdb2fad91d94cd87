"""`netprobe diagnose`'s throughput check: one capped test against the configured server.

It runs only where a server is configured (a `throughput` target, or
[throughput] server) and the internet check did not fail; `--no-throughput`
leaves it out. The data budget applies as for scheduled tests. On a terminal a
progress line shows the estimate as it forms; it is the CLI's output, so
`--json` and pipes never see it.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Optional

from agent import i18n
from agent.config import Config, TargetConfig
from agent.diagnose.options import DiagnoseOptions
from agent.diagnose.verdicts import FAIL, OK, SKIP, WARN, Check
from agent.reading.model import SKIPPED, Reading
from agent.runner import adhoc_target, identity_of, run_target

NAME = "throughput"
BAD_GRADES = ("D", "F")
DIAGNOSE_SECONDS = 8.0


def pick_target(cfg: Config) -> Optional[TargetConfig]:
    """The first configured throughput target, else one for [throughput] server, capped for diagnose."""
    cap_mb = cfg.throughput.diagnose_max_mb
    for t in cfg.targets:
        if t.kind == NAME:
            o = t.options
            capped = dataclasses.replace(
                o, max_mb=min(o.max_mb or cap_mb, cap_mb), max_seconds=min(o.max_seconds, DIAGNOSE_SECONDS)
            )
            return dataclasses.replace(t, options=capped)
    if not cfg.throughput.server:
        return None
    return adhoc_target(NAME, cfg.throughput.server, None, max_mb=cap_mb, max_seconds=DIAGNOSE_SECONDS)


def to_check(reading: Reading) -> Check:
    """Pure: the Reading in a technician's words."""
    f = reading.fields
    ids = (reading.id,)
    if reading.ok:
        numbers = [
            (
                "num.throughput",
                {
                    "down": f.get("download_mbps"),
                    "up": f.get("upload_mbps"),
                    "mb": round(float(f.get("bytes_used") or 0) / 1e6, 1),
                },
            ),
            (
                "num.bufferbloat",
                {"idle": f.get("rtt_idle_ms"), "loaded": f.get("rtt_loaded_ms"), "grade": f.get("bufferbloat_grade")},
            ),
        ]
        if f.get("bufferbloat_grade") in BAD_GRADES:
            return Check(NAME, WARN, numbers, ("hint.bufferbloat", {"ms": f.get("bufferbloat_ms")}), ids)
        return Check(NAME, OK, numbers, None, ids)
    error = reading.error or {}
    numbers = [("num.throughput_failed", {"why": error.get("message", "")})]
    if error.get("code") == SKIPPED:
        return Check(NAME, SKIP, numbers, ("hint.throughput_budget", {}), ids)
    return Check(NAME, WARN, numbers, ("hint.throughput_failed", {"server": reading.target}), ids)


class ProgressLine:
    """One line on the terminal, rewritten in place while the test runs."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.shown = False

    def __call__(self, direction: str, seconds: float, bps: Optional[float]) -> None:
        mbps = f"{bps / 1e6:.1f}" if bps else "..."
        text = i18n.text("progress.throughput", self.lang, direction=i18n.text(f"dir.{direction}", self.lang),
                         mbps=mbps, secs=f"{seconds:.0f}")  # fmt: skip
        sys.stdout.write(f"\r{text:<60}")
        sys.stdout.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stdout.write("\r" + " " * 60 + "\r")
            sys.stdout.flush()


async def throughput_check(
    cfg: Config, _readings: list[Reading], checks: list[Check], options: DiagnoseOptions
) -> tuple[list[Reading], list[Check]]:
    """A later check of diagnose: ([the throughput Reading], [the "throughput" Check])."""
    if not options.throughput:
        return [], []
    target = pick_target(cfg)
    if target is None:
        return [], [Check(NAME, SKIP, [("num.none", {})])]
    if any(c.name in ("gateway", "internet") and c.status == FAIL for c in checks):
        return [], [Check(NAME, SKIP, [("num.none", {})], ("hint.throughput_needs_internet", {}))]
    show = sys.stdout.isatty() and not options.as_json
    progress = ProgressLine(options.lang) if show else None
    ctx = dataclasses.replace(cfg.probe_context(interactive=True), progress=progress)
    limit = 2 * target.options.max_seconds + 3 * target.timeout
    try:
        reading = await run_target(target, identity_of(cfg), ctx, limit_s=limit)
    finally:
        if progress:
            progress.clear()
    return [reading], [to_check(reading)]
