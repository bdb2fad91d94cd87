"""A month's data budget spent in a minute and a half: the agent steps down before it is reached, and never passes it.

Sped up by configuration: the default schedule with every interval divided by 12, a 60 kB budget, and the
quota's reset day tomorrow, so today is the period's last day and every step comes from the share spent
(lean at 75 %, minimal at 90 %, hold when only the reserve is left). Measured on the routed testbed with the
broker beyond the uplink: the gateway's WAN counters are the judge, not the agent's own account.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.collector import wait_until
from tests.usage.site import NODE, Site

pytestmark = [pytest.mark.testbed, pytest.mark.broker, pytest.mark.slow]

BUDGET_MB = 0.06
STEP = re.compile(r"data budget: (\w+) -> (\w+) at ([\d.]+) of")


def steps(log: str) -> list[tuple[str, str, float]]:
    return [(a, b, float(mb)) for a, b, mb in STEP.findall(log)]


def status_info(site: Site) -> dict[str, Any]:
    from agent.collector.store import open_store

    store = open_store(path=str(site.db_path), readonly=True)
    try:
        node = next(n for n in store.nodes() if n["node"] == NODE)
    finally:
        store.close()
    return {"state": node["status"], **node["status_info"]}


def test_the_agent_steps_down_before_its_budget_and_never_passes_it(testbed: Any, tmp_path: Path) -> None:
    tb = testbed("fiber")
    site = Site(tb, tmp_path / "site", acks={"max_delay_s": 1.0, "min_gap_s": 1.0})
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    cfg = site.config("default", scale=12, usage={"monthly_budget_mb": BUDGET_MB, "reading_interval": 3600.0},
                      throughput={"reset_day": tomorrow.day})  # fmt: skip
    before = site.wan_bytes()
    site.start_agent(cfg)
    budget = BUDGET_MB * 1e6
    assert wait_until(lambda: "-> hold" in site.log("agent"), 150, step=0.5), (steps(site.log("agent")),
                                                                               site.log("agent")[-3000:])  # fmt: skip
    time.sleep(3)  # the publisher says offline (and why), disconnects, and stays away
    at_hold = site.wan_bytes() - before
    time.sleep(15)  # at hold nothing crosses the uplink: the gateway's pings stay on the LAN
    after_hold = site.wan_bytes() - before
    status = status_info(site)  # what the regency's collector was told before the node went quiet
    site.stop_agent()
    spent = site.wan_bytes() - before
    log = site.log("agent")
    seen = steps(log)
    # Down, step by step, each before the budget was reached, and never back up in a rising month.
    assert [b for _, b, _ in seen] == ["lean", "minimal", "hold"], seen
    assert all(mb * 1e6 < budget for _, _, mb in seen), seen
    assert seen[0][2] * 1e6 >= 0.7 * budget  # lean came at 75 %: it did not stop early either
    print(f"\nbudget {budget:.0f} B: steps {seen}; the uplink carried {at_hold} at hold, {after_hold} 15 s later, "
          f"{spent} in all; the agent counted {site.ledger().usage_month}")  # fmt: skip
    assert spent <= budget, (spent, budget)
    assert after_hold == at_hold, (at_hold, after_hold)  # no probe, no publish, no keepalive
    assert site.ledger().usage_month <= budget
    assert site.ledger().level == "hold"
    # It said so: in its log, in its retained status, and in usage Readings the collector stored.
    assert "data budget spent: nothing crosses the uplink" in log
    assert status["state"] == "offline" and status.get("data_level") == "hold", status
    levels = [r["fields"]["level"] for r in site.rows("usage")]
    assert "lean" in levels and "minimal" in levels, levels
    assert "Traceback" not in log, log[-3000:]
    # The schedule really thinned: the second public ICMP target stopped at lean.
    icmp = [(r["seq"], r["target"]) for r in site.rows("icmp")]
    lean_from = min(r["seq"] for r in site.rows("usage") if r["fields"]["level"] == "lean")
    assert not [t for seq, t in icmp if seq > lean_from + 3 and t == "203.0.113.1"], icmp
    assert json.loads(json.dumps(status))  # plain JSON, as the web and the API show it
