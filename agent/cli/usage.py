"""`netprobe usage`: what the agent's own traffic cost this period, by kind, against its budget.

Reads the data ledger in the state directory (the running daemon saves its counts
there every few minutes and at each change of step), so it works beside `netprobe run`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

from agent.cli.common import add_config_arg, load_config_or_exit
from agent.cli.exitcodes import EX_OK
from agent.throughput import budget as ledger
from agent.usage import pace
from agent.usage import report as usage_report

KINDS = {
    "report": "MQTT: readings, status, acknowledgements, keepalives",
    "link": "link looks and the uplink watcher's traces",
    "throughput": "throughput tests",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="print it as JSON")


def main(args: argparse.Namespace) -> int:
    cfg = load_config_or_exit(args.config)
    now = dt.datetime.now()
    reset_day = cfg.throughput.reset_day
    state = ledger.roll(ledger.Ledger(cfg.node.state_dir).load(), now.date(), reset_day)
    budget = cfg.usage.budget_bytes() or None
    start = ledger.period_start(now.date(), reset_day)
    end = pace.period_end(start, reset_day)
    saved = state.level if state.level in pace.LEVELS else pace.FULL
    allowed = pace.allowance(budget, start, end, now) if budget else float("inf")
    step = pace.level(state.usage_month, budget, allowed, saved)
    plan = usage_report.plan_mb(cfg.site.tags)
    fields = usage_report.fields(state.usage, state.usage_day, budget, plan, step, start.isoformat(),
                                 cfg.daemon.profile, "")  # fmt: skip
    fields.pop("suggested_profile")
    if args.json:
        print(json.dumps({**fields, "period_end": end.isoformat(), "ledger": ledger.Ledger(cfg.node.state_dir).path}))
        return EX_OK
    month = state.usage_month / 1e6
    of = f" of a {budget / 1e6:g} MB budget ({100 * month / (budget / 1e6):.0f} %)" if budget else " (no budget set)"
    print(f"data used since {start.isoformat()} (the period ends {end.isoformat()}): {month:.2f} MB{of}")
    print(f"  today:   {state.usage_day / 1e6:.2f} MB")
    print(f"  step:    {step}" + (f": {pace.says(step)}" if pace.says(step) else ""))
    if plan:
        print(f"  plan:    {plan:g} MB (site tag plan_mb): {100 * month / plan:.1f} % of it")
    print(f"  profile: {cfg.daemon.profile}")
    for kind, n in sorted(state.usage.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<11}{n / 1e6:8.3f} MB  {KINDS.get(kind, 'probes')}")
    return EX_OK
