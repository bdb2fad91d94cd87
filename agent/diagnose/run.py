"""`netprobe diagnose`: every configured check once, concurrently, told in plain words.

On a dead uplink the whole run ends within DEADLINE_S: every probe is capped,
and a probe still running at the cap becomes a failed Reading.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
from collections.abc import Awaitable
from typing import Any, Callable

from agent import i18n
from agent.config import Config
from agent.diagnose import verdicts
from agent.diagnose.verdicts import Check
from agent.reading.model import Reading
from agent.runner import budget_s, identity_of, run_target

DEADLINE_S = 17.0

# Later checks (throughput, link type) are listed here as "module:function", imported only
# when diagnose runs. The function is a coroutine: (config, latency Readings, checks so far,
# parsed CLI args) -> (its Readings, its Checks). It runs after the latency checks.
ExtraCheck = Callable[[Config, list[Reading], list[Check], Any], Awaitable[tuple[list[Reading], list[Check]]]]
EXTRA_CHECKS: list[str] = [
    "agent.diagnose.throughput:throughput_check",
    "agent.diagnose.link:diagnose_check",
]


def load_extra(spec: str) -> ExtraCheck:
    module_name, _, func = spec.partition(":")
    return getattr(importlib.import_module(module_name), func)


@dataclasses.dataclass
class Diagnosis:
    node: str
    readings: list[Reading]
    checks: list[Check]

    @property
    def verdict(self) -> str:
        return verdicts.overall(self.checks)

    @property
    def exit_code(self) -> int:
        return verdicts.EXIT_CODES[self.verdict]

    def to_json(self) -> str:
        return json.dumps(
            {
                "verdict": self.verdict,
                "node": self.node,
                "checks": [c.to_dict() for c in self.checks],
                "readings": [r.to_dict() for r in self.readings],
            },
            ensure_ascii=False,
        )

    def render(self, lang: str = "en") -> str:
        t = i18n.text
        lines = [t("heading", lang, node=self.node)]
        for c in self.checks:
            label = t(f"check.{c.name}", lang)
            numbers = "; ".join(t(key, lang, **params) for key, params in c.numbers)
            lines.append(f"  {t('status.' + c.status, lang):<9} {label:<10} {numbers}")
            if c.hint:
                lines.append(f"  {'':<9} {'':<10} -> {t(c.hint[0], lang, **c.hint[1])}")
        verdict = t(f"verdict.{self.verdict}", lang)
        lines.append(t("verdict_line", lang, verdict=verdict))
        if self.verdict == verdicts.HEALTHY:
            lines.append(f"  {t('hint.healthy', lang)}")
        return "\n".join(lines)


async def diagnose(cfg: Config, args: Any = None) -> Diagnosis:
    identity = identity_of(cfg)
    ctx = cfg.probe_context(interactive=True)
    targets = [t for t in cfg.targets if verdicts.role_of(t.kind, t.target, t.options, t.role)]
    readings = list(
        await asyncio.gather(*(run_target(t, identity, ctx, limit_s=min(budget_s(t), DEADLINE_S)) for t in targets))
    )
    by_role: dict[str, list[Reading]] = {}
    for t, r in zip(targets, readings):
        by_role.setdefault(verdicts.role_of(t.kind, t.target, t.options, t.role) or "", []).append(r)
    checks = verdicts.latency_checks(by_role)
    for spec in EXTRA_CHECKS:
        more_readings, more_checks = await load_extra(spec)(cfg, readings, checks, args)
        readings += more_readings
        checks += more_checks
    return Diagnosis(identity.node, readings, checks)
