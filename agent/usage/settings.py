"""`[usage]`: the node's one monthly data budget for all of its own traffic, and the usage Reading."""

from __future__ import annotations

import dataclasses

from agent.schema import setting


@dataclasses.dataclass(frozen=True)
class UsageConfig:
    """The budget for everything the agent sends and receives: probes, reporting, tests (docs/data-cost.md)."""

    monthly_budget_mb: float = setting(
        0.0,
        min=0.0,
        help="MB a month for all of the agent's own traffic (probes, reporting, throughput tests); the agent "
        "steps down as it runs out and never passes it; 0 = no budget, only counted. "
        "The month starts on [throughput] reset_day",
    )
    reading_interval: float = setting(
        86400.0, min=0.0, help="seconds between usage Readings (and one at each change of step); 0 = none"
    )

    def budget_bytes(self) -> int:
        return int(self.monthly_budget_mb * 1e6)
