"""The `usage` Reading: what the agent's own traffic cost this period, by kind, against its budget. Pure.

Made by the daemon every `[usage] reading_interval` (a day) and at each change
of step, and read by the collector's fleet view and web page (docs/data-cost.md).

Fields: month_mb (all of the agent's traffic since the period began), day_mb
(today), budget_mb (0: no budget), plan_mb (the node's data plan, from the site
tag plan_mb; absent when unknown), share_pct (month_mb of plan_mb, or else of
budget_mb), level (full, lean, minimal, hold), period (its first day), profile,
suggested_profile ("metered" when the link look found a metered link and the
profile is not; "" otherwise), and per kind `mb_<kind>`: mb_report (MQTT:
readings, status, acks, keepalives), mb_icmp, mb_tcp, mb_dns, mb_http, mb_link,
mb_path, mb_throughput.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

from agent.reading.model import FieldValue

MB = 1e6
MAX_KINDS = 16  # a Reading holds 64 fields


def plan_mb(tags: Mapping[str, Any]) -> Optional[float]:
    """The node's data plan in MB from its site tag `plan_mb` (a number, or text holding one)."""
    value = tags.get("plan_mb")
    try:
        number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def fields(
    by_kind: Mapping[str, int],
    today: int,
    budget: Optional[int],
    plan: Optional[float],
    level: str,
    period: str,
    profile: str,
    suggested: str,
) -> dict[str, FieldValue]:
    month = sum(by_kind.values())
    out: dict[str, FieldValue] = {
        "month_mb": round(month / MB, 3),
        "day_mb": round(today / MB, 3),
        "budget_mb": round((budget or 0) / MB, 3),
        "level": level,
        "period": period,
        "profile": profile,
        "suggested_profile": suggested,
    }
    if plan is not None:
        out["plan_mb"] = plan
    base = plan if plan else (budget or 0) / MB
    if base:
        out["share_pct"] = round(100.0 * month / MB / base, 2)
    for kind, n in sorted(by_kind.items(), key=lambda kv: -kv[1])[:MAX_KINDS]:
        out[f"mb_{kind}"] = round(n / MB, 3)
    return out
