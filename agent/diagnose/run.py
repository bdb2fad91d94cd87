"""`netprobe diagnose`: every configured check once, concurrently, told in plain words.

A technician is promised an answer within 20 s, even on a dead uplink: the
whole run has one deadline, DEADLINE_S. The latency probes run together and
are capped LATER_CHECKS_S before it, which leaves room for the later checks
(throughput, link type); those take what is left. A probe still running at
its cap becomes a failed Reading.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable
from typing import Callable, Optional

from agent import i18n, optional
from agent.config import Config
from agent.diagnose import verdicts
from agent.diagnose.link import link_check
from agent.diagnose.options import DEADLINE_S, LATER_CHECKS_S, DiagnoseOptions
from agent.diagnose.throughput import throughput_check
from agent.diagnose.verdicts import Check
from agent.reading.model import Reading
from agent.runner import budget_s, identity_of, run_target

# A later check is a coroutine: (config, the Readings so far, the checks so far, options)
# -> (its Readings, its Checks). They run one after the other, after the latency checks.
LaterCheck = Callable[
    [Config, list[Reading], list[Check], DiagnoseOptions], Awaitable[tuple[list[Reading], list[Check]]]
]
LATER_CHECKS: tuple[LaterCheck, ...] = (throughput_check, link_check)


@dataclasses.dataclass
class Diagnosis:
    node: str
    readings: list[Reading]
    checks: list[Check]
    missing: list[optional.Part] = dataclasses.field(default_factory=list)  # optional parts not installed

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
                "missing_parts": [
                    {"module": p.module, "enables": p.enables, "install": p.install} for p in self.missing
                ],
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
        for part in self.missing:
            lines.append(
                f"  {t('optional.missing', lang, module=part.module, enables=t(f'optional.{part.module}', lang), install=part.install)}"
            )
        return "\n".join(lines)


async def diagnose(cfg: Config, options: Optional[DiagnoseOptions] = None) -> Diagnosis:
    options = options or DiagnoseOptions()
    identity = identity_of(cfg)
    ctx = cfg.probe_context(interactive=True)
    targets = [t for t in cfg.targets if verdicts.role_of(t.kind, t.target, t.options, t.role)]
    readings = list(
        await asyncio.gather(
            *(run_target(t, identity, ctx, limit_s=min(budget_s(t), DEADLINE_S - LATER_CHECKS_S)) for t in targets)
        )
    )
    by_role: dict[str, list[Reading]] = {}
    for t, r in zip(targets, readings):
        by_role.setdefault(verdicts.role_of(t.kind, t.target, t.options, t.role) or "", []).append(r)
    checks = verdicts.latency_checks(by_role)
    for later in LATER_CHECKS:
        more_readings, more_checks = await later(cfg, readings, checks, options)
        readings += more_readings
        checks += more_checks
    return Diagnosis(identity.node, readings, checks, optional.missing_parts())
