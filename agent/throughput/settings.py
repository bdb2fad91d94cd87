"""`[throughput]`: the node's data budget for throughput tests, and the diagnose test's server.

Each test's own settings (backend, streams, caps, schedule) are its `[[targets]]`
entry's options, declared in `agent.probes.throughput`.
"""

from __future__ import annotations

import dataclasses

from agent.schema import setting


@dataclasses.dataclass(frozen=True)
class ThroughputConfig:
    """The node's data budget for throughput tests; each test's own settings are on its [[targets]] entry."""

    enabled: bool = setting(False, help="scheduled throughput tests (they cost data); off: no test traffic at all")
    monthly_budget_mb: float = setting(1000.0, min=0.0, help="MB per month for all tests; 0 = no limit")
    daily_budget_mb: float = setting(100.0, min=0.0, help="MB per day for all tests; 0 = no limit")
    reset_day: int = setting(1, min=1, max=31, help="day of the month the monthly quota starts again")
    server: str = setting("", help="LibreSpeed/speed-server base URL for `netprobe diagnose`; empty: no test")
    diagnose_max_mb: float = setting(10.0, above=0.0, help="byte cap of the diagnose test (MB)")
