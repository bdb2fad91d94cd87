"""The incident engine on synthetic timelines: every cause, flapping, upstream groups, maintenance, notices."""

from __future__ import annotations

import dataclasses

import pytest

from agent.collector.incidents import causes as C
from agent.collector.incidents.engine import Engine, Incident
from tests.incidents.timeline import T0, Sim, settings

MIN = 60.0


def one(sim: Sim, node: str = "", kind: str = C.DARK) -> Incident:
    found = sim.incidents(node=node, kind=kind)
    assert len(found) == 1, found
    return found[0]


def test_a_power_cut_is_unknown_while_silent_and_power_once_the_node_returns_with_a_new_boot() -> None:
    sim = Sim()
    sim.add("n1", desa="Balai Agung")
    sim.run(30 * MIN)
    cut = sim.now
    sim.set("n1", "off")
    sim.run(20 * MIN)
    inc = one(sim, "n1")
    assert inc.end is None and inc.cause == C.UNKNOWN
    assert sim.told() == [("open", C.UNKNOWN)]  # told while dark, before any evidence
    sim.set("n1", "up")
    back = sim.now
    sim.run(15 * MIN)
    inc = one(sim, "n1")
    assert inc.cause == C.POWER
    assert abs(inc.start - cut) <= MIN and inc.end is not None and abs(inc.end - back) <= MIN
    assert sim.told() == [("open", C.UNKNOWN), ("resolved", C.POWER)]
    power = dict(next(e[1] for e in inc.evidence if e[0] == "power"))
    assert power["before"] != power["after"] and power["minutes"] >= 19


def test_an_uplink_cut_is_revised_from_unknown_to_uplink_when_the_replayed_readings_arrive() -> None:
    sim = Sim()
    sim.add("n1")
    sim.run(30 * MIN)
    cut = sim.now
    sim.set("n1", "uplink")
    sim.run(25 * MIN)
    assert one(sim, "n1").cause == C.UNKNOWN  # spooled: nothing known yet
    sim.set("n1", "up")
    back = sim.now
    sim.run(1 * MIN)  # the replay is in, the K good intervals are not yet
    inc = one(sim, "n1")
    assert inc.end is None and inc.cause == C.UPLINK
    assert any(e[0] == "uplink" and e[1]["intervals"] >= 20 for e in inc.evidence), inc.evidence
    sim.run(10 * MIN)
    inc = one(sim, "n1")
    assert inc.end is not None and abs(inc.start - cut) <= MIN and abs(inc.end - back) <= MIN
    # one open, one resolve saying the final cause: the revision came too close to the end to be worth a message
    assert sim.told() == [("open", C.UNKNOWN), ("resolved", C.UPLINK)]
    assert sim.notices[-1].previous_cause == C.UNKNOWN


def test_a_dead_gateway_is_cause_lan() -> None:
    sim = Sim()
    sim.add("n1")
    sim.run(20 * MIN)
    sim.set("n1", "lan")
    sim.run(15 * MIN)
    sim.set("n1", "up")
    sim.run(10 * MIN)
    inc = one(sim, "n1")
    assert inc.cause == C.LAN and inc.end is not None


def test_an_agent_that_stopped_on_a_running_node_is_cause_agent() -> None:
    sim = Sim()
    sim.add("n1")
    sim.run(20 * MIN)
    sim.set("n1", "stopped")
    sim.run(15 * MIN)
    sim.set("n1", "up")  # same boot, mono_s went on counting
    sim.run(10 * MIN)
    inc = one(sim, "n1")
    assert inc.cause == C.AGENT and inc.end is not None
    ev = dict(next(e[1] for e in inc.evidence if e[0] == "agent"))
    assert ev["minutes"] >= 14


def test_a_revised_cause_is_told_once_it_held_while_the_desa_stays_dark() -> None:
    sim = Sim()
    sim.add("n1")
    sim.run(20 * MIN)
    sim.set("n1", "uplink")
    sim.run(15 * MIN)
    sim.set("n1", "up")  # back for one interval: the replay says uplink, too short to close
    sim.run(1 * MIN)
    sim.set("n1", "uplink")
    sim.run(30 * MIN)
    inc = one(sim, "n1")
    assert inc.end is None and inc.cause == C.UPLINK
    assert sim.told() == [("open", C.UNKNOWN), ("cause", C.UPLINK)]
    sim.set("n1", "up")
    sim.run(10 * MIN)
    assert sim.told()[-1] == ("resolved", C.UPLINK)
    assert len(sim.told()) == 3


def test_a_link_flapping_six_times_in_ten_minutes_is_one_incident() -> None:
    sim = Sim(tick=10.0)
    sim.add("n1")
    sim.run(20 * MIN)
    for _ in range(6):  # 100 s per flap: down 60 s, up 40 s
        sim.set("n1", "uplink")
        sim.run(60)
        sim.set("n1", "up")
        sim.run(40)
    sim.run(15 * MIN)
    incs = sim.incidents("n1")
    assert len(incs) == 1, [(i.start, i.end) for i in incs]
    assert incs[0].end is not None
    assert [e for e, _ in sim.told()] == ["open", "resolved"]


def test_loss_seen_in_the_good_moments_of_a_flapping_link_belongs_to_its_dark_incident() -> None:
    sim = Sim(every=20.0)  # three readings per interval: an interval can be half up, half down
    sim.add("n1")
    sim.run(20 * MIN)
    for _ in range(8):
        sim.set("n1", "uplink")
        sim.run(70)
        sim.set("n1", "up")
        sim.run(40)
    sim.run(15 * MIN)
    dark = one(sim, "n1")
    lossy = sim.incidents("n1", C.DEGRADED)
    assert lossy and all(i.parent == dark.id for i in lossy)  # recorded, and the dark incident speaks for it
    assert sim.told() == [("open", C.UPLINK), ("resolved", C.UPLINK)]  # the short replays said why early


def test_a_public_target_that_never_answers_while_others_do_is_left_out() -> None:
    sim = Sim()
    sim.add("n1")
    blocked = sim.nodes["n1"]
    sim.run(10 * MIN)
    for _ in range(30):  # 8.8.8.8 is firewalled at this desa: every reading of it fails
        sim.deliver("n1", "icmp", "9.9.9.9", False, {"sent": 5, "received": 0, "loss_pct": 100.0}, error="timeout")
        sim.run(MIN)
    assert sim.incidents("n1") == [] and blocked.state == "up"


def test_one_bad_interval_opens_nothing() -> None:
    sim = Sim()
    sim.add("n1")
    sim.run(20 * MIN)
    sim.set("n1", "uplink")
    sim.run(60)
    sim.set("n1", "up")
    sim.run(15 * MIN)
    assert sim.incidents("n1") == [] and sim.told() == []


def test_an_incident_over_before_hold_s_is_recorded_but_not_told() -> None:
    sim = Sim(settings(hold_s=900.0))
    sim.add("n1")
    sim.run(20 * MIN)
    sim.set("n1", "off")
    sim.run(6 * MIN)
    sim.set("n1", "up")
    sim.run(10 * MIN)
    assert one(sim, "n1").cause == C.POWER
    assert sim.told() == []


def test_the_collectors_own_outage_makes_no_desa_dark() -> None:
    sim = Sim(settings(groups=[{"name": "hub", "kecamatan": ["Sekayu"]}]))
    for i in range(3):
        sim.add(f"n{i}")
    sim.run(20 * MIN)
    sim.collector_down = True  # its broker connection is gone for 40 min; the nodes are fine
    sim.run(40 * MIN)
    sim.collector_back()
    sim.run(20 * MIN)
    assert sim.incidents() == [] and sim.told() == []


def test_a_restarted_collector_gives_every_node_a_silent_time_for_its_backlog() -> None:
    sim = Sim()
    for i in range(3):
        sim.add(f"n{i}")
    sim.run(20 * MIN)
    sim.collector_down = True  # the collector is stopped for 40 min
    sim.run(40 * MIN)
    sim.engine = Engine(sim.cfg, sim.engine.policy)  # it starts again, knowing only the database
    for n in sim.nodes.values():
        sim._row(n, last_ts=T0 + 20 * MIN)
        sim.engine.node({"node": n.node, "last_seen": T0 + 20 * MIN, "status": "online"})
    sim.collector_back(slowly=True)
    for node in sim.nodes:  # the broker hands over one node's backlog a minute: n0 is heard long before n2
        sim.run(MIN)
        sim.release(node)
    sim.run(10 * MIN)
    assert sim.incidents() == [] and sim.told() == []


def three(sim: Sim) -> None:
    for i, desa in enumerate(("Balai Agung", "Soak Baru", "Kayuara")):
        sim.add(f"n{i}", desa=desa)


def test_three_desa_behind_one_configured_upstream_dark_together_are_one_incident_listing_them() -> None:
    sim = Sim(settings(groups=[{"name": "hub-sekayu", "kecamatan": ["Sekayu"]}]))
    three(sim)
    sim.run(20 * MIN)
    for n in ("n0", "n1", "n2"):
        sim.set(n, "uplink")
    sim.run(20 * MIN)
    for n in ("n0", "n1", "n2"):
        sim.set(n, "up")
    sim.run(10 * MIN)
    groups = [i for i in sim.stored.values() if not i.node]
    assert len(groups) == 1
    g = groups[0]
    assert g.cause == C.UPSTREAM and g.group == "hub-sekayu" and g.end is not None
    assert sorted(m["desa"] for m in g.members) == ["Balai Agung", "Kayuara", "Soak Baru"]
    assert {m["cause"] for m in g.members} == {C.UPLINK}
    assert [(n.event, n.incident.id) for n in sim.notices] == [("open", g.id), ("resolved", g.id)]
    assert all(i.parent == g.id for i in sim.incidents(kind=C.DARK) if i.node)


def test_nodes_sharing_an_isp_hop_are_grouped_without_configuration() -> None:
    sim = Sim()
    three(sim)
    for node in ("n0", "n1", "n2"):
        sim.deliver(node, "link", "1.1.1.1", True, {"link_type": "fiber", "isp_hop": "203.0.113.1"})
    sim.run(20 * MIN)
    for n in ("n0", "n1", "n2"):
        sim.set(n, "uplink")
    sim.run(20 * MIN)
    groups = [i for i in sim.stored.values() if not i.node]
    assert len(groups) == 1 and groups[0].group == "isp-hop 203.0.113.1"
    assert len(groups[0].members) == 3
    assert [n.event for n in sim.notices] == ["open"]


def test_a_shared_cgnat_hop_does_not_make_a_group() -> None:
    sim = Sim()
    three(sim)
    for node in ("n0", "n1", "n2"):  # every Starlink dish shows 100.64.0.1
        sim.deliver(node, "link", "1.1.1.1", True, {"link_type": "satellite-leo", "isp_hop": "100.64.0.1"})
    sim.run(20 * MIN)
    for n in ("n0", "n1", "n2"):
        sim.set(n, "uplink")
    sim.run(20 * MIN)
    assert [i for i in sim.stored.values() if not i.node] == []
    assert len(sim.notices) == 3


def test_a_group_of_power_cuts_is_told_as_an_area_power_cut() -> None:
    sim = Sim(settings(groups=[{"name": "pln-sekayu", "kecamatan": ["Sekayu"]}]))
    three(sim)
    sim.run(20 * MIN)
    for n in ("n0", "n1", "n2"):
        sim.set(n, "off")
    sim.run(20 * MIN)
    for n in ("n0", "n1", "n2"):
        sim.set(n, "up")
    sim.run(10 * MIN)
    g = next(i for i in sim.stored.values() if not i.node)
    assert g.cause == C.POWER and sim.told() == [("open", C.UPSTREAM), ("resolved", C.POWER)]


def test_one_desa_dark_alone_in_its_group_is_its_own_incident() -> None:
    sim = Sim(settings(groups=[{"name": "hub", "kecamatan": ["Sekayu"]}]))
    three(sim)
    sim.run(20 * MIN)
    sim.set("n1", "uplink")
    sim.run(20 * MIN)
    assert [i for i in sim.stored.values() if not i.node] == []
    assert [(n.event, n.incident.node) for n in sim.notices] == [("open", "n1")]


def window(start_min: float, end_min: float, **kw: object) -> dict[str, object]:
    fmt = "%Y-%m-%dT%H:%M:%S+00:00"
    import time

    return {
        "name": "pemadaman bergilir",
        "start": time.strftime(fmt, time.gmtime(T0 + start_min * MIN)),
        "end": time.strftime(fmt, time.gmtime(T0 + end_min * MIN)),
        **kw,
    }


def test_no_message_inside_a_maintenance_window_nor_at_its_end() -> None:
    sim = Sim(settings(), maintenance=[window(30, 60, kecamatan=["Sekayu"])])
    sim.add("n1")
    sim.run(35 * MIN)
    sim.set("n1", "off")  # the planned blackout
    sim.run(20 * MIN)
    sim.set("n1", "up")
    sim.run(20 * MIN)  # past the window's end
    inc = one(sim, "n1")
    assert inc.cause == C.POWER and inc.maintenance == "pemadaman bergilir"
    assert sim.told() == []


def test_a_window_that_ends_while_the_node_is_still_down_tells_nothing_then_and_once_after_the_overrun() -> None:
    sim = Sim(settings(maintenance_overrun_s=1800.0), maintenance=[window(30, 60, nodes=["n1"])])
    sim.add("n1")
    sim.run(35 * MIN)
    sim.set("n1", "off")
    sim.run(50 * MIN)  # the window ended 25 min ago
    assert sim.told() == []
    sim.run(10 * MIN)  # 35 min after: overran
    assert sim.told() == [("open", C.UNKNOWN)] and sim.notices[0].overrun
    sim.set("n1", "up")
    sim.run(10 * MIN)
    assert sim.told() == [("open", C.UNKNOWN), ("resolved", C.POWER)]


def test_a_weekly_window_naming_a_group_silences_its_members_only() -> None:
    # T0 is Friday 29 May 2026, 03:26:40 WIB: the Friday window 03:40-04:40 begins 13 min later.
    friday = {"name": "pemadaman bergilir", "groups": ["hub-sekayu"], "days": ["fri"], "time_start": "03:40",
              "time_end": "04:40"}  # fmt: skip
    sim = Sim(settings(groups=[{"name": "hub-sekayu", "kecamatan": ["Sekayu"]}]), maintenance=[friday])
    sim.add("n1", kecamatan="Sekayu")
    sim.add("n2", kecamatan="Lais")
    sim.run(20 * MIN)
    sim.set("n1", "off")
    sim.set("n2", "off")
    sim.run(20 * MIN)
    sim.set("n1", "up")
    sim.set("n2", "up")
    sim.run(20 * MIN)
    assert one(sim, "n1").maintenance == "pemadaman bergilir" and one(sim, "n2").maintenance == ""
    assert {n.incident.node for n in sim.notices} == {"n2"}


def test_an_incident_that_began_before_a_window_is_told_as_usual() -> None:
    sim = Sim(settings(), maintenance=[window(40, 90, kecamatan=["Sekayu"])])
    sim.add("n1")
    sim.run(30 * MIN)
    sim.set("n1", "lan")
    sim.run(30 * MIN)
    sim.set("n1", "up")
    sim.run(10 * MIN)
    assert sim.told() == [("open", C.UNKNOWN), ("resolved", C.LAN)]


def test_an_engine_restarted_on_stored_incidents_tells_nothing_twice() -> None:
    sim = Sim()
    sim.add("n1")
    sim.run(20 * MIN)
    sim.set("n1", "uplink")
    sim.run(20 * MIN)
    assert sim.told() == [("open", C.UNKNOWN)]
    # A new engine: loads the open incidents as stored, and the readings it can see again.
    opened = [dataclasses.replace(i) for i in sim.stored.values() if i.end is None]
    sim.engine = Engine(sim.cfg, sim.engine.policy)
    sim.engine.load(opened)
    for n in sim.nodes.values():
        sim._row(n, last_ts=T0 + 20 * MIN)  # the nodes table knows its last Reading
        sim.engine.status(n.node, "offline", sim.now)
    sim.run(5 * MIN)
    sim.set("n1", "up")
    sim.run(10 * MIN)
    assert sim.told() == [("open", C.UNKNOWN), ("resolved", C.UPLINK)]
    assert len({i.id for i in sim.stored.values()}) == 1


# -- degraded -----------------------------------------------------------------------------------


def test_loss_over_the_threshold_for_the_window_is_degraded_and_closes_after_k_good() -> None:
    sim = Sim()
    n = sim.add("n1")
    sim.run(20 * MIN)
    n.loss_pct = 20.0
    sim.run(15 * MIN)
    inc = one(sim, "n1", C.DEGRADED)
    assert inc.cause == C.LOSS and inc.severity == "warning" and inc.end is None
    assert inc.evidence[0][1]["loss"] == pytest.approx(20.0)
    n.loss_pct = 0.0
    sim.run(10 * MIN)
    assert one(sim, "n1", C.DEGRADED).end is not None
    assert sim.told() == [("open", C.LOSS), ("resolved", C.LOSS)]


@pytest.mark.parametrize(("link", "degraded"), [("satellite-geo", False), ("fiber", True)])
def test_600_ms_is_normal_on_geo_and_degraded_on_fiber(link: str, degraded: bool) -> None:
    sim = Sim()
    n = sim.add("n1")
    sim.deliver("n1", "link", "1.1.1.1", True, {"link_type": link})
    n.rtt_ms = 600.0
    sim.run(20 * MIN)
    found = sim.incidents("n1", C.DEGRADED)
    assert bool(found) is degraded
    if degraded:
        assert found[0].cause == C.LATENCY and found[0].evidence[0][1]["link"] == "fiber"


def test_throughput_under_the_contracted_share_twice_is_degraded() -> None:
    sim = Sim()
    sim.add("n1", contract_mbps="20")
    for mbps in (18.0, 6.0, 7.0):
        sim.deliver("n1", "throughput", "speed", True, {"download_mbps": mbps, "upload_mbps": 2.0})
        sim.run(30 * MIN)
    inc = one(sim, "n1", C.DEGRADED)
    assert inc.cause == C.THROUGHPUT and inc.evidence[0][1]["contract"] == 20.0
    sim.deliver("n1", "throughput", "speed", True, {"download_mbps": 19.0})
    sim.run(MIN)
    assert one(sim, "n1", C.DEGRADED).end is not None


def test_fiber_falling_back_to_satellite_is_a_link_change_until_it_returns() -> None:
    sim = Sim()
    sim.add("n1")
    sim.deliver("n1", "link", "1.1.1.1", True, {"link_type": "fiber"})
    sim.run(10 * MIN)
    sim.deliver("n1", "link", "1.1.1.1", True, {"link_type": "satellite-geo", "changed": True, "previous": "fiber"})
    sim.run(10 * MIN)
    inc = one(sim, "n1", C.DEGRADED)
    assert inc.cause == C.LINK_CHANGE and inc.evidence[0][1] == {"from": "fiber", "to": "satellite-geo"}
    sim.deliver("n1", "link", "1.1.1.1", True, {"link_type": "fiber", "changed": True, "previous": "satellite-geo"})
    sim.run(MIN)
    assert one(sim, "n1", C.DEGRADED).end is not None


def test_a_clock_unsynced_for_long_is_degraded() -> None:
    sim = Sim(settings(clock_unsynced_s=1800.0))
    n = sim.add("n1")
    n.synced = False
    sim.run(20 * MIN)
    assert sim.incidents("n1", C.DEGRADED) == []
    sim.run(15 * MIN)
    assert one(sim, "n1", C.DEGRADED).cause == C.CLOCK
    n.synced = True
    sim.run(2 * MIN)
    assert one(sim, "n1", C.DEGRADED).end is not None


def test_a_spent_data_budget_is_degraded_until_a_test_runs_again() -> None:
    sim = Sim()
    sim.add("n1")
    why = "monthly data budget: 998.0 of 1000.0 MB used since 2026-05-01, a test costs about 25.0 MB"
    sim.deliver("n1", "throughput", "speed", False, {"budget_month_mb": 998.0}, error="skipped", message=why)
    sim.run(5 * MIN)
    inc = one(sim, "n1", C.DEGRADED)
    assert inc.cause == C.BUDGET and inc.evidence[0][1]["month_mb"] == 998.0
    sim.deliver("n1", "throughput", "speed", True, {"download_mbps": 10.0})
    sim.run(MIN)
    assert one(sim, "n1", C.DEGRADED).end is not None
