"""The uplink bookkeeping (pure) and the scheduler's early wake-up that the link watcher uses."""

from __future__ import annotations

import asyncio
import dataclasses

from agent.config import parse_config
from agent.daemon.scheduler import Scheduler
from agent.linktype.uplink import Uplink, changes, note
from agent.probes import get

FIBER = Uplink("eth0", "198.51.100.1", "203.0.113.1")
VSAT = Uplink("eth1", "192.0.2.1", "203.0.113.33")


def test_the_usual_uplink_is_the_one_held_longest_and_any_other_is_a_backup():
    state: dict = {}
    assert note(state, FIBER, 1000.0) == ("", False)
    assert note(state, FIBER, 5000.0) == (FIBER.key, False)
    assert note(state, VSAT, 5600.0) == (FIBER.key, True)  # fiber held 4600 s, the VSAT 0 s
    assert note(state, VSAT, 9000.0) == (VSAT.key, True)  # 3400 s on the VSAT: still the backup
    assert note(state, FIBER, 20000.0) == (VSAT.key, True)  # the VSAT held 14400 s: now the usual one
    assert state["held_s"] == {FIBER.key: 4600.0, VSAT.key: 14400.0}


def test_a_change_is_the_route_or_a_known_isp_hop_never_a_hop_that_did_not_answer():
    assert changes(FIBER, VSAT) == ["route", "isp_hop"]
    assert changes(FIBER, dataclasses.replace(FIBER, isp_hop="203.0.113.9")) == ["isp_hop"]  # the router failed over
    assert changes(FIBER, dataclasses.replace(FIBER, isp_hop="")) == []


def test_a_probe_watcher_wakes_the_schedule_before_its_interval():
    cfg = parse_config({"targets": [{"kind": "link", "target": "192.0.2.9", "interval": 3600}]})
    link = get("link")
    woken = asyncio.Event()
    runs: list[float] = []

    async def watch(target, options, last, ctx):
        await woken.wait()
        woken.clear()
        return "route"

    async def run(target):
        runs.append(asyncio.get_running_loop().time())
        return {"iface": "eth0", "gateway": "198.51.100.1"}

    async def main():
        sched = Scheduler(cfg.targets, run, splay=0, probe_of=lambda t: dataclasses.replace(link, watch=watch))
        sched.start()
        await asyncio.sleep(0.1)
        assert len(runs) == 1
        woken.set()
        await asyncio.sleep(1.5)
        await sched.stop()

    asyncio.run(main())
    assert len(runs) == 2 and runs[1] - runs[0] < 2.0  # not an hour later (and no busy loop)
