"""The pure parts of the data accounting: packet sizes, estimates, the ledger, the steps, the metered profile."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import socket
from pathlib import Path
from typing import Any, Optional

import pytest

from agent.config import TargetConfig, parse_config
from agent.daemon.scheduler import Scheduler
from agent.throughput import budget as ledger
from agent.usage import estimate, pace, profile, report, route, wire
from agent.usage.meter import Meter

MB = 1_000_000
ROUTES = route.parse_routes(
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t016433C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)


def local(host: str) -> bool:
    return route.is_local(host, ROUTES)


# -- where packets go, and their size --------------------------------------------------------


def test_the_lan_is_free_and_everything_beyond_the_gateway_is_counted():
    assert local("198.51.100.1") and local("198.51.100.77:443") and local("gateway") and local("127.0.0.1")
    assert not local("1.1.1.1") and not local("203.0.113.18:7") and not local("www.google.com")


def test_an_icmp_run_costs_its_echoes_both_ways_with_headers():
    fields = {"sent": 5, "received": 4, "duplicates": 0}
    options = type("O", (), {"payload_size": 56})()
    assert estimate.run_bytes("icmp", "1.1.1.1", True, fields, options, local) == 9 * (14 + 20 + 8 + 56)
    assert estimate.run_bytes("icmp", "gateway", True, fields, options, local) == 0


def test_tcp_dns_http_and_link_runs_have_plausible_costs():
    tcp = estimate.run_bytes("tcp", "1.1.1.1:443", True, {"sent": 3, "received": 3}, None, local)
    assert 3 * 350 < tcp < 3 * 550
    dns = estimate.run_bytes("dns", "google.com", True, {"server": "8.8.8.8", "rcode": "NOERROR", "answers": 1,
                                                          "record": "A"}, None, local)  # fmt: skip
    assert 150 < dns < 250
    assert (
        estimate.run_bytes("dns", "google.com", True, {"server": "198.51.100.1", "rcode": "NOERROR"}, None, local) == 0
    )
    assert estimate.run_bytes("http", "https://203.0.113.18/", True, {"wire_bytes": 1234}, None, local) == 1234
    full = estimate.run_bytes("http", "https://203.0.113.18/", True, {"connect_ms": 1, "tls_ms": 2}, None, local)
    resumed = estimate.run_bytes(
        "http", "https://203.0.113.18/", True, {"connect_ms": 1, "tls_ms": 2, "tls_resumed": True}, None, local
    )
    assert full > resumed + 3000
    link = {"samples": 900, "idle_samples": 880, "isp_hop": "203.0.113.1", "evidence": "promo:trials=2,hits=0"}
    look = estimate.run_bytes("link", "1.1.1.1", True, link, None, local)
    assert 1780 * 58 < look < 1780 * 58 + 4000  # the 900 echoes to the ISP hop dominate
    assert estimate.run_bytes("host", "self", True, {"if_eth0_rx_bytes": 10**9}, None, local) == 0


def test_tcp_info_counts_a_real_connection_within_its_headers():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    client.sendall(b"x" * 5000)
    got = 0
    while got < 5000:
        got += len(peer.recv(65536))
    peer.sendall(b"y" * 700)
    assert len(client.recv(1000)) == 700
    counts = wire.tcp_counts(client)
    assert counts is not None and counts.sent >= 5000 and counts.received == 700
    assert counts.segs_out >= 2 and counts.segs_in >= 2
    assert 5700 + 4 * wire.TCP_SEGMENT <= counts.wire() < 5700 + 20 * wire.TCP_SEGMENT
    for s in (client, peer, server):
        s.close()


# -- the ledger ------------------------------------------------------------------------------------


def test_the_ledger_counts_all_traffic_per_kind_and_rolls_it_like_the_tests_counts(tmp_path: Path):
    day1, day2, next_period = dt.date(2026, 11, 3), dt.date(2026, 11, 4), dt.date(2026, 12, 1)
    state = ledger.spend(ledger.LedgerState(), {"report": 1000, "icmp": 500}, day1, 1)
    state = ledger.record(state, 20 * MB, day1, 1)  # a throughput test: its own counts and the total
    assert state.usage == {"report": 1000, "icmp": 500, "throughput": 20 * MB} and state.month_bytes == 20 * MB
    state = ledger.spend(state, {"icmp": 100}, day2, 1)
    assert state.usage_day == 100 and state.usage_month == 20 * MB + 1600
    assert ledger.spend(state, {}, dt.date(2026, 11, 2), 1).usage_month == 20 * MB + 1600  # the clock stepped back
    assert ledger.spend(state, {}, next_period, 1).usage == {}
    saved = ledger.Ledger(str(tmp_path))
    saved.save(state)
    assert saved.load() == state
    data = json.loads((tmp_path / ledger.LEDGER_FILE).read_text())
    data["usage"] = {"icmp": "lots", "report": 5}  # a hand edit
    (tmp_path / ledger.LEDGER_FILE).write_text(json.dumps(data))
    assert saved.load().usage == {"report": 5}


def test_the_meter_adds_from_any_thread_and_saves_to_the_ledger(tmp_path: Path):
    now = dt.datetime(2026, 11, 10, 12, 0)
    meter = Meter(str(tmp_path), 10 * MB, 1, now=lambda: now)
    meter.add("report", 3000)
    meter.add("icmp", 1500, label="cloudflare")
    assert meter.month() == 4500 and meter.cost("cloudflare") == 1500
    meter.flush()
    again = Meter(str(tmp_path), 10 * MB, 1, now=lambda: now)
    assert again.by_kind() == {"report": 3000, "icmp": 1500}
    # a throughput test recorded by the probe in the same file is seen after the next flush
    ledger.Ledger(str(tmp_path)).update(lambda s: ledger.record(s, 2 * MB, now.date(), 1))
    again.flush()
    assert again.month() == 2 * MB + 4500


# -- the steps -------------------------------------------------------------------------------------


def test_on_pace_is_full_ahead_of_pace_steps_down_and_the_budget_is_never_the_limit_reached():
    budget = 10 * MB
    start, end = dt.date(2026, 11, 1), dt.date(2026, 12, 1)
    mid = dt.datetime(2026, 11, 15, 0, 0)  # 14 days of 30 gone: allowance (14 + 1) / 30
    allowed = pace.allowance(budget, start, end, mid)
    assert allowed == pytest.approx(budget * 15 / 30)
    assert pace.level(int(allowed * 0.9), budget, allowed) == pace.FULL
    assert pace.level(int(allowed * 1.1), budget, allowed) == pace.LEAN
    assert pace.level(int(allowed * 1.3), budget, allowed) == pace.MINIMAL
    assert pace.level(budget - 1000, budget, allowed) == pace.HOLD
    late = pace.allowance(budget, start, end, dt.datetime(2026, 11, 30, 23, 0))
    assert pace.level(int(0.8 * budget), budget, late) == pace.LEAN  # on pace, but 75 % is spent
    assert pace.level(int(0.92 * budget), budget, late) == pace.MINIMAL
    assert pace.level(10**12, None, 0.0) == pace.FULL  # no budget: counted only


def test_a_level_is_left_upwards_only_with_a_margin():
    budget, allowed = 10 * MB, 5 * MB
    just_under = int(allowed * 0.97)  # on pace again, by 3 %
    assert pace.level(just_under, budget, allowed, current=pace.FULL) == pace.FULL
    assert pace.level(just_under, budget, allowed, current=pace.LEAN) == pace.LEAN
    assert pace.level(int(allowed * 0.85), budget, allowed, current=pace.LEAN) == pace.FULL
    assert pace.level(int(allowed * 0.85), budget, allowed, current=pace.MINIMAL) == pace.FULL


def targets(cfg_targets: list[dict[str, Any]]) -> list[TargetConfig]:
    return parse_config({"targets": cfg_targets}).targets


def test_each_step_runs_less_and_hold_keeps_only_the_lan():
    ts = parse_config({}).targets + targets([{"kind": "throughput", "target": "http://203.0.113.18/"},
                                            {"kind": "host", "target": "self"}])  # fmt: skip
    assert pace.plan(pace.FULL, ts, local) == {}
    lean = pace.plan(pace.LEAN, ts, local)
    assert lean["gateway"] == 1.0 and lean["cloudflare"] == 3.0 and lean["google"] is None
    assert lean["dns-system"] == 3.0 and lean["dns-public"] is None and lean["throughput:http://203.0.113.18/"] is None
    assert lean["link"] == 2.0 and lean["host:self"] == 2.0
    minimal = pace.plan(pace.MINIMAL, ts, local)
    running = {k for k, v in minimal.items() if v is not None}
    assert running == {"gateway", "cloudflare", "cloudflare-tcp", "link", "host:self"}
    hold = pace.plan(pace.HOLD, ts, local)
    assert {k for k, v in hold.items() if v is not None} == {"gateway", "host:self"}


def test_the_scheduler_stretches_pauses_and_replans_at_once():
    runs: list[tuple[str, float]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        ts = targets([{"kind": "tcp", "target": "127.0.0.1:9", "name": "a", "interval": 0.1, "timeout": 0.05},
                      {"kind": "tcp", "target": "127.0.0.1:9", "name": "b", "interval": 0.1, "timeout": 0.05}])  # fmt: skip

        async def run(t: TargetConfig) -> Optional[dict[str, Any]]:
            runs.append((t.label, loop.time()))
            return None

        sched = Scheduler(ts, run, splay=0, jitter=0)
        sched.start()
        await asyncio.sleep(0.55)
        sched.set_plan({"a": 3.0, "b": None})
        began = loop.time()
        await asyncio.sleep(1.0)
        sched.set_plan({})  # back to full: b runs at once, not after a stretched gap
        await asyncio.sleep(0.25)
        await sched.stop()
        counts = {
            name: sum(1 for n, at in runs if n == name and began + 0.05 < at < began + 1.0) for name in ("a", "b")
        }
        assert counts["b"] == 0 and 2 <= counts["a"] <= 4, counts  # every 0.3 s, not 0.1
        assert any(n == "b" and at > began + 1.0 for n, at in runs)

    asyncio.run(scenario())


def test_admit_can_skip_a_run():
    runs: list[str] = []

    async def scenario() -> None:
        ts = targets([{"kind": "tcp", "target": "127.0.0.1:9", "interval": 0.05, "timeout": 0.02}])
        sched = Scheduler(ts, lambda t: _record(runs, t), splay=0, jitter=0)
        sched.admit = lambda _t: False
        sched.start()
        await asyncio.sleep(0.3)
        await sched.stop()

    asyncio.run(scenario())
    assert runs == []


async def _record(runs: list[str], t: TargetConfig) -> None:
    runs.append(t.label)


# -- the metered profile and the usage Reading ------------------------------------------------------


def test_the_metered_profile_fills_what_the_file_leaves_out_and_the_file_wins():
    cfg = parse_config({"daemon": {"profile": "metered"}, "mqtt": {"keepalive": 300}})
    assert cfg.mqtt.keepalive == 300 and cfg.mqtt.batch_s == 600.0 and cfg.usage.monthly_budget_mb == 10.0
    assert [t.label for t in cfg.targets] == ["gateway", "cloudflare", "cloudflare-tcp", "dns-system", "web", "link"]
    assert cfg.linktype.observe_s == 90.0 and cfg.linktype.rate_hz == 1.0
    own = parse_config({"daemon": {"profile": "metered"}, "targets": [{"kind": "icmp", "target": "1.1.1.1"}]})
    assert [t.label for t in own.targets] == ["icmp:1.1.1.1"]
    plain = parse_config({})
    assert plain.mqtt.batch_s == 120.0 and plain.usage.monthly_budget_mb == 0.0 and len(plain.targets) == 8
    assert profile.suggestion("default", "satellite-geo") == "metered"
    assert profile.suggestion("metered", "satellite-geo") == profile.suggestion("default", "fiber") == ""


def test_the_usage_reading_fields_fit_the_contract():
    from agent.reading.contract import fields_problem

    f = report.fields({"report": 1_500_000, "icmp": 700_000}, 90_000, 10 * MB, report.plan_mb({"plan_mb": "1000"}),
                      pace.LEAN, "2026-11-01", "metered", "")  # fmt: skip
    assert f["month_mb"] == 2.2 and f["plan_mb"] == 1000.0 and f["share_pct"] == 0.22 and f["mb_report"] == 1.5
    assert fields_problem(f) is None
    assert report.plan_mb({"plan_mb": "lots"}) is None and report.plan_mb({}) is None
    assert "plan_mb" not in report.fields({}, 0, None, None, pace.FULL, "", "default", "")


def test_a_profile_value_that_is_not_a_choice_is_reported():
    from agent.config import ConfigError

    with pytest.raises(ConfigError) as exc:
        parse_config({"daemon": {"profile": "cheap"}})
    assert "daemon.profile" in str(exc.value)
    assert dataclasses.is_dataclass(parse_config({}).usage)


def test_netprobe_usage_reads_the_ledger_beside_a_running_agent(tmp_path: Path):
    import subprocess
    import sys

    state = tmp_path / "state"
    (tmp_path / "agent.toml").write_text(
        f'[node]\nid = "n1"\nstate_dir = "{state}"\n[usage]\nmonthly_budget_mb = 10\n[site.tags]\nplan_mb = "1000"\n'
    )
    today = dt.date.today()
    ledger.Ledger(str(state)).update(lambda s: ledger.spend(s, {"report": 1_200_000, "icmp": 800_000}, today, 1))

    def usage(*extra: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "agent", "usage", "-c", str(tmp_path / "agent.toml"), *extra]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)

    data = json.loads(usage("--json").stdout)
    assert data["month_mb"] == 2.0 and data["mb_report"] == 1.2 and data["budget_mb"] == 10.0
    assert data["plan_mb"] == 1000.0 and data["share_pct"] == 0.2 and data["level"] in pace.LEVELS
    text = usage().stdout
    assert "2.00 MB of a 10 MB budget (20 %)" in text and "report" in text and "plan:    1000 MB" in text
