"""The link classifier on synthetic series (tests/linksim.py), its traps, and its local evidence."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import math
import os
import socket
import threading

import pytest

from agent.linktype import features as lf
from agent.linktype.classify import (
    CELLULAR,
    FIBER,
    GEO,
    LEO,
    OTHER,
    UNKNOWN,
    InterfaceFacts,
    Observation,
    Operator,
    classify,
)
from agent.linktype.evidence import dish_answered, interface_facts, is_vpn, probe_dish
from agent.linktype.features import PromoTrial, Sample
from agent.linktype.periodicity import periodicity
from tests.linksim import T0, simulate

STARLINK = Operator("Starlink", LEO, ("103.228.240.0/22",), (14593, 45700))


def rules(verdict):
    return {e.rule for e in verdict.evidence}


@pytest.mark.parametrize(
    ("kind", "variant"),
    [(FIBER, ""), (GEO, ""), (LEO, ""), (CELLULAR, ""), (OTHER, "dsl"), (OTHER, "cable")],
)
def test_each_class_is_recognised_from_five_minutes_of_idle_series(kind, variant):
    obs, _ = simulate(kind, seed=11, duration_s=300, synced=True, load=False, wifi=False, variant=variant)
    verdict = classify(obs)
    assert verdict.link_type == kind, verdict.evidence
    assert verdict.confidence >= 0.6
    assert verdict.evidence, "a verdict always carries its evidence"


def test_geo_verdict_names_the_physics_rule_with_its_minimum():
    obs, drawn = simulate(GEO, seed=3, duration_s=120, load=False)
    verdict = classify(obs)
    geo = next(e for e in verdict.evidence if e.rule == "geo_floor")
    assert geo.params["min_ms"] >= 450 and abs(geo.params["min_ms"] - drawn["base"]) < 5
    assert verdict.backhaul == "geo" and verdict.confidence >= 0.95


def test_loaded_fiber_with_600ms_bufferbloat_is_not_geo():
    obs, _ = simulate(FIBER, seed=5, duration_s=180, load=False, synced=True)
    # a throughput test from 30 s to 150 s: 600-900 ms queues, flagged by the interface counters
    bloated = tuple(
        dataclasses.replace(s, rtt_ms=s.rtt_ms + 600 + (i % 7) * 50, idle=False)
        if 30 <= s.t - T0 < 150 and s.rtt_ms is not None
        else s
        for i, s in enumerate(obs.isp)
    )
    verdict = classify(dataclasses.replace(obs, isp=bloated))
    assert max(s.rtt_ms for s in bloated if s.rtt_ms) > 600
    assert verdict.link_type == FIBER


def test_bufferbloat_spikes_that_slip_past_the_idle_gate_do_not_make_geo():
    obs, _ = simulate(FIBER, seed=6, duration_s=120, load=False)
    spiky = tuple(
        dataclasses.replace(s, rtt_ms=s.rtt_ms + 650) if i % 3 == 0 and s.rtt_ms is not None else s
        for i, s in enumerate(obs.isp)
    )
    verdict = classify(dataclasses.replace(obs, isp=spiky))
    assert verdict.link_type != GEO
    assert "geo_floor" not in rules(verdict)


def test_a_link_seen_only_under_load_gets_no_verdict():
    obs, _ = simulate(FIBER, seed=7, duration_s=60, load=False)
    loaded = tuple(dataclasses.replace(s, rtt_ms=(s.rtt_ms or 0) + 700, idle=False) for s in obs.isp)
    verdict = classify(dataclasses.replace(obs, isp=loaded))
    assert verdict.link_type == UNKNOWN
    assert "no_idle_samples" in rules(verdict)


def test_leo_without_a_synced_clock_is_found_from_its_own_15s_period():
    synced, _ = simulate(LEO, seed=21, duration_s=300, synced=True, load=False, loss_pct=0)
    unsynced = dataclasses.replace(synced, clock_synced=False)
    # a Pi without its RTC: the clock is off by an arbitrary amount, so :12 is anywhere
    off = 1234.3
    shifted = dataclasses.replace(
        unsynced,
        isp=tuple(dataclasses.replace(s, t=s.t + off) for s in synced.isp),
        gateway=tuple(dataclasses.replace(s, t=s.t + off) for s in synced.gateway),
    )
    a, b, c = classify(synced), classify(unsynced), classify(shifted)
    assert a.link_type == b.link_type == c.link_type == LEO
    assert b.confidence >= 0.8 and b.confidence == c.confidence  # the clock's error changes nothing
    assert {"leo_period", "leo_phase"} <= rules(a)  # a synced clock adds the phase as evidence
    assert "leo_period" in rules(c) and "leo_phase" not in rules(c)
    assert a.confidence > b.confidence


def test_the_period_is_found_at_any_phase_and_not_in_other_links():
    obs, _ = simulate(LEO, seed=22, duration_s=300, synced=True, load=False)
    access = lf.access_series(obs.gateway, obs.isp)
    found = periodicity(access)
    assert found is not None and found.periodic and found.phase_s in (11.5, 12.0, 12.5)
    shifted = periodicity([dataclasses.replace(s, t=s.t + 4.0) for s in access])
    assert shifted is not None and shifted.periodic and (shifted.phase_s - found.phase_s) % 15 in (3.5, 4.0, 4.5)
    for kind, seed in ((CELLULAR, 23), (FIBER, 24), (OTHER, 25)):
        other, _ = simulate(kind, seed=seed, duration_s=300, load=False)
        p = periodicity(lf.access_series(other.gateway, other.isp))
        assert p is not None and not p.periodic, (kind, p)


def test_steps_at_the_utc_phase_count_with_a_synced_clock_and_not_elsewhere():
    obs, _ = simulate(LEO, seed=22, duration_s=300, synced=True, load=False)
    access = lf.access_series(obs.gateway, obs.isp)
    assert lf.step_score_at(access, 12.0).score >= 2.0 > lf.step_score_at(access, 4.5).score


def test_cable_modem_on_192_168_100_1_without_the_starlink_api_is_not_starlink():
    obs, _ = simulate(OTHER, seed=31, duration_s=300, variant="cable", load=False, synced=True)
    verdict = classify(dataclasses.replace(obs, dish_host=True, dish_api=False))
    assert verdict.link_type != LEO
    assert "not_a_dish" in rules(verdict) and "dish_api" not in rules(verdict)


def test_a_dish_api_answer_is_decisive_for_starlink():
    obs, _ = simulate(LEO, seed=32, duration_s=30, load=False)  # too short for the step signature
    assert classify(obs).link_type != LEO
    verdict = classify(dataclasses.replace(obs, dish_api=True, dish_host=True))
    assert verdict.link_type == LEO and verdict.confidence >= 0.95


def test_cellular_access_on_a_geo_backhaul_is_reported_as_both():
    obs, _ = simulate(GEO, seed=41, duration_s=120, load=False)
    wwan = InterfaceFacts("wwan0", "wwan", "qmi_wwan", 519)
    verdict = classify(dataclasses.replace(obs, interface=wwan))
    assert (verdict.link_type, verdict.access, verdict.backhaul) == (CELLULAR, CELLULAR, "geo")
    assert {"wwan_interface", "satellite_backhaul"} <= rules(verdict)


def test_behind_a_vpn_the_access_delay_beats_the_operator_prefix():
    obs, _ = simulate(FIBER, seed=51, duration_s=300, load=False, wifi=False)
    tunnelled = dataclasses.replace(
        obs, vpn=True, hops=("198.51.100.1", "103.228.241.9"), operators=(STARLINK,), interface=InterfaceFacts("wg0")
    )
    assert classify(tunnelled).link_type == FIBER
    plain = dataclasses.replace(tunnelled, vpn=False)
    assert classify(plain).link_type != FIBER  # without the tunnel the Starlink prefix weighs heavily


def test_starlink_hop_pattern_names_leo_on_a_short_look():
    obs, _ = simulate(LEO, seed=61, duration_s=30, load=False)
    hops = ("192.168.1.1", "100.64.0.1", "172.16.249.6", "149.19.108.1")
    verdict = classify(dataclasses.replace(obs, hops=hops))
    assert verdict.link_type == LEO and "starlink_hops" in rules(verdict)


def test_cgnat_alone_is_not_starlink():
    obs, _ = simulate(CELLULAR, seed=62, duration_s=300, load=False, synced=True)
    hops = ("192.168.8.1", "100.64.0.1", "10.10.0.1")
    verdict = classify(dataclasses.replace(obs, hops=hops))
    assert "starlink_hops" not in rules(verdict) and verdict.link_type == CELLULAR


def test_failover_between_fiber_and_geo_is_reported_as_two_links():
    fiber, _ = simulate(FIBER, seed=71, duration_s=200, load=False, wifi=False)
    geo, _ = simulate(GEO, seed=72, duration_s=200, load=False, wifi=False)
    shift = 200.0
    later = tuple(dataclasses.replace(s, t=s.t + shift) for s in geo.isp)
    later_gw = tuple(dataclasses.replace(s, t=s.t + shift) for s in geo.gateway)
    obs = dataclasses.replace(fiber, isp=fiber.isp + later, gateway=fiber.gateway + later_gw)
    verdict = classify(obs)
    assert "two_links" in rules(verdict)
    assert sorted(v.link_type for v in verdict.links) == sorted([FIBER, GEO])


def test_no_replies_gives_unknown_with_zero_confidence():
    obs = Observation(isp=tuple(Sample(T0 + i, None) for i in range(20)))
    verdict = classify(obs)
    assert (verdict.link_type, verdict.confidence) == (UNKNOWN, 0.0)
    assert "no_replies" in rules(verdict)


def test_wifi_jitter_between_agent_and_router_is_subtracted():
    obs, _ = simulate(FIBER, seed=81, duration_s=300, wifi=True, load=False)
    raw = lf.spread(list(obs.isp))
    access = lf.spread(lf.access_series(obs.gateway, obs.isp))
    assert raw is not None and access is not None
    assert access.iqr < raw.iqr / 2
    assert classify(obs).link_type == FIBER


# ----- local evidence (I/O half) ------------------------------------------------


def test_interface_facts_read_a_wwan_modem_from_sysfs(tmp_path):
    dev = tmp_path / "wwan0"
    (tmp_path / "drivers" / "qmi_wwan").mkdir(parents=True)
    (dev / "device").mkdir(parents=True)
    (dev / "uevent").write_text("DEVTYPE=wwan\nINTERFACE=wwan0\nIFINDEX=4\n")
    (dev / "type").write_text("519\n")
    os.symlink(tmp_path / "drivers" / "qmi_wwan", dev / "device" / "driver")
    facts = interface_facts("wwan0", root=str(tmp_path))
    assert facts == InterfaceFacts("wwan0", "wwan", "qmi_wwan", 519)
    assert not is_vpn(facts, root=str(tmp_path))
    (tmp_path / "wg0").mkdir()
    (tmp_path / "wg0" / "type").write_text("65534\n")
    assert is_vpn(interface_facts("wg0", root=str(tmp_path)), root=str(tmp_path))


def serve(handler_cls) -> tuple[str, socket.socket]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"127.0.0.1:{srv.server_address[1]}", srv


class CableModemPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<html>DOCSIS status</html>")

    def log_message(self, *args):
        pass


def fake_dish(stop: threading.Event) -> tuple[str, socket.socket]:
    """Answers like a gRPC server: SETTINGS, then HEADERS (:status 200) on stream 1."""
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(0.2)

    def loop():
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                continue
            with conn:
                conn.recv(4096)
                settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                headers = b"\x00\x00\x01\x01\x04\x00\x00\x00\x01\x88"
                conn.sendall(settings + headers)

    threading.Thread(target=loop, daemon=True).start()
    return f"127.0.0.1:{lsock.getsockname()[1]}", lsock


def test_a_web_page_on_the_dish_address_is_not_the_dish_api():
    address, srv = serve(CableModemPage)
    try:
        api, host = asyncio.run(probe_dish(address, timeout=1.0))
    finally:
        srv.shutdown()
    assert (api, host) == (False, True)


def test_a_grpc_answer_on_the_dish_address_is_the_dish_api():
    stop = threading.Event()
    address, lsock = fake_dish(stop)
    try:
        api, host = asyncio.run(probe_dish(address, timeout=1.0))
    finally:
        stop.set()
        lsock.close()
    assert (api, host) == (True, True)


def test_a_closed_dish_port_is_not_the_dish_api():
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    api, _ = asyncio.run(probe_dish(f"127.0.0.1:{port}", timeout=0.5))
    assert api is False


def test_http2_parser_needs_both_settings_and_our_answer():
    settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    answer = b"\x00\x00\x01\x01\x04\x00\x00\x00\x01\x88"
    assert dish_answered(settings + answer)
    assert not dish_answered(settings)
    assert not dish_answered(b"HTTP/1.1 400 Bad Request\r\n\r\n")


# ----- the numbers behind the rules (checked, not copied: shared/notes/linktype-research.md §1) ---

C_KM_S = 299_792.458


def test_geo_rule_sits_below_the_four_leg_physics_floor_and_above_any_terrestrial_path():
    from agent.linktype.classify import GEO_FLOOR_MS

    geo_floor = 4 * 35_786 / C_KM_S * 1000  # zenith, both ends
    horizon = 4 * math.sqrt(42_164.0**2 - 6_378.137**2) / C_KM_S * 1000
    fiber_ms_per_100km = 2 * 100 / (C_KM_S / 1.468) * 1000
    jayapura_jakarta = 3_750 / 100 * fiber_ms_per_100km * 1.5  # the longest domestic path, x1.5 routing
    assert round(geo_floor, 1) == 477.5 and round(horizon) == 556
    assert round(fiber_ms_per_100km, 2) == 0.98
    assert jayapura_jakarta + 100 < GEO_FLOOR_MS < geo_floor  # 55 ms + generous queueing still far below


def test_random_loss_lands_near_boundaries_two_fifteenths_of_the_time():
    samples = [Sample(T0 + i * 0.01, None) for i in range(1500)]  # 15 s of uniform losses
    share, n = lf.loss_alignment(samples)
    assert n == 1500 and abs(share - 2 / 15) < 0.01


# ----- the link probe's schedule and config ----------------------------------------


def test_link_probe_remembers_the_verdict_and_rechecks_after_the_configured_confirm_s(tmp_path):
    import random

    from agent.config import parse_config
    from agent.probes import link

    assert link.remember(str(tmp_path), "1.1.1.1", FIBER) is None
    assert link.remember(str(tmp_path), "1.1.1.1", GEO) == FIBER
    cfg = parse_config({"linktype": {"confirm_s": 120}, "targets": [{"kind": "link", "target": "1.1.1.1"}]})
    target, ctx = cfg.targets[0], cfg.probe_context()
    assert target.interval == link.PROBE_INTERVAL_S and link.PROBE.heavy is False
    rng = random.Random(1)

    def gap(last):
        return link.next_interval(target.options, target.interval, last, ctx, rng)

    changed = gap({"link_type": GEO, "changed": True})
    unknown = gap({"link_type": "unknown", "changed": False})
    steady = gap({"link_type": GEO, "changed": False})
    first = gap(None)
    # [linktype].confirm_s = 120 is honoured (it used to fall back to the default 900 s).
    assert 108 <= changed <= 132 and 108 <= unknown <= 132
    assert steady > 3600 and first > 3600


def test_operators_from_config_name_the_link_by_prefix():
    from agent.config import parse_config
    from agent.linktype.report import operators_from

    cfg = parse_config(
        {"linktype": {"operators": [{"name": "Desa WISP", "link_type": "other", "prefixes": ["203.0.113.0/28"]}]}}
    )
    obs, _ = simulate(CELLULAR, seed=91, duration_s=30, load=False)  # too short to tell on timing
    ops = operators_from(cfg.linktype)
    verdict = classify(dataclasses.replace(obs, hops=("198.51.100.1", "203.0.113.1"), operators=ops))
    ev = next(e for e in verdict.evidence if e.rule == "operator")
    assert ev.params == {"operator": "Desa WISP", "match": "203.0.113.1"} and ev.link_type == OTHER


def test_diagnose_link_check_skips_when_the_other_checks_used_up_the_20s():
    import time

    from agent.config import parse_config
    from agent.diagnose.link import link_check, time_spent
    from agent.diagnose.options import DiagnoseOptions
    from agent.reading.model import Identity, Outcome, make_reading

    ident = Identity("n", {})
    slow = [
        make_reading(ident, "icmp", "1.1.1.1", Outcome(ok=True), time.time(), 0.0, 16.5),
        make_reading(ident, "dns", "google.com", Outcome(ok=True), time.time(), 0.0, 9.0),
        make_reading(ident, "throughput", "x", Outcome(ok=True), time.time(), 0.0, 1.0),
    ]
    assert time_spent(slow) == pytest.approx(17.5)
    t0 = time.perf_counter()
    readings, checks = asyncio.run(link_check(parse_config({}), slow, [], DiagnoseOptions()))
    assert time.perf_counter() - t0 < 0.5 and readings == []
    assert checks[0].status == "SKIP" and checks[0].numbers == [("link.no_time", {})]


# ----- cellular without silence ------------------------------------------------------------


def busy(obs: Observation, trials: tuple[PromoTrial, ...], skipped: int = 0) -> Observation:
    return dataclasses.replace(obs, promo=trials, promo_skipped=skipped)


def trial(delta: float, disturbed: str = "") -> PromoTrial:
    return PromoTrial(40.0 + delta, (40.0, 41.0, 39.0, 40.5, 40.2), disturbed)


def test_one_promotion_among_trials_a_busy_radio_missed_still_names_cellular():
    # the field case: one trial saw the wake-up, the other met a radio other users kept awake
    obs, _ = simulate(CELLULAR, seed=101, duration_s=60, load=False, wwan=False)
    verdict = classify(busy(obs, (trial(120.0), trial(1.0))))
    assert verdict.link_type == CELLULAR and verdict.confidence >= 0.6, verdict.evidence
    promo = next(e for e in verdict.evidence if e.rule == "idle_promotion")
    assert promo.params["hits"] == 1 and promo.params["trials"] == 2


def test_disturbed_trials_are_left_out_and_said_in_the_evidence():
    obs, _ = simulate(CELLULAR, seed=102, duration_s=60, load=False, wwan=False)
    verdict = classify(busy(obs, (trial(150.0, "traffic"), trial(1.0, "local"), trial(90.0)), skipped=1))
    promo = next(e for e in verdict.evidence if e.rule == "idle_promotion")
    assert promo.params == {
        "delta_ms": 89.8, "hits": 1, "trials": 1, "disturbed": 2, "why": "local+traffic", "no_quiet": 1
    }  # fmt: skip
    nothing = classify(busy(obs, (trial(150.0, "traffic"),), skipped=2))
    note = next(e for e in nothing.evidence if e.rule == "no_idle_promotion")
    assert note.link_type == "" and note.params["disturbed"] == 1 and note.params["no_quiet"] == 2


def test_a_busy_cellular_link_without_any_promotion_is_cellular_or_unknown_never_another_class():
    wrong = []
    for seed in range(40):
        obs, _ = simulate(CELLULAR, seed=200 + seed, duration_s=120, wwan=False)
        verdict = classify(busy(obs, (trial(0.5), trial(-1.0))))  # the radio never slept
        if verdict.link_type not in (CELLULAR, UNKNOWN):
            wrong.append((seed, verdict.link_type, [e.rule for e in verdict.evidence]))
    assert not wrong


def test_a_cgnat_first_hop_with_a_mobile_core_delay_adds_to_cellular():
    obs, _ = simulate(CELLULAR, seed=103, duration_s=60, load=False, wwan=False)
    hops = ("192.168.8.1", "100.72.15.1", "10.0.0.1")
    verdict = classify(dataclasses.replace(obs, hops=hops))
    assert "cgnat_hop" in rules(verdict) and verdict.link_type == CELLULAR
    fiber, _ = simulate(FIBER, seed=104, duration_s=60, load=False)
    assert "cgnat_hop" not in rules(classify(dataclasses.replace(fiber, hops=hops)))  # a few ms: fixed CGNAT
    starlink = ("192.168.1.1", "100.64.0.1", "172.16.249.6")
    leo, _ = simulate(LEO, seed=105, duration_s=60, load=False)
    assert "cgnat_hop" not in rules(classify(dataclasses.replace(leo, hops=starlink)))


def test_a_vsat_capacity_request_delay_is_not_taken_for_a_radio_waking():
    obs, _ = simulate(GEO, seed=106, duration_s=60, load=False)
    verdict = classify(busy(obs, (trial(400.0), trial(380.0))))  # DAMA: the first packet waits a request cycle
    assert verdict.link_type == GEO and verdict.backhaul == "geo"


def test_every_rule_the_classifier_emits_reads_in_english_and_indonesian():
    from agent.i18n import MESSAGES, text
    from tests import linksim_heldout

    seen: dict = {}
    for kind in (FIBER, GEO, LEO, CELLULAR, OTHER):
        for seed in range(8):
            for sim in (simulate, linksim_heldout.simulate):
                obs, _ = sim(kind, seed, duration_s=180)
                for e in classify(obs).evidence:
                    seen.setdefault(e.rule, e.params)
    assert {"leo_period", "idle_promotion", "geo_floor"} <= set(seen)
    for rule, params in seen.items():
        assert f"link.ev.{rule}" in MESSAGES, rule
        assert text(f"link.ev.{rule}", "en", **params) != text(f"link.ev.{rule}", "id", **params) or rule == "operator"
