"""What watching costs, on the routed testbed: the agent's own account against the gateway's WAN counters.

Two desa, built at once: a fiber one running the default schedule with every interval divided by 12,
a GEO one running the `metered` profile with every interval divided by 60 (90 s each, in parallel).
The broker and the collector sit beyond the emulated uplink, so reporting crosses it too. The figures
printed are the run's bytes per second divided by the scale, times a month: an upper bound (the run's one-offs,
the connection and every target's first run, are in it); tests/bench/bench_usage.py takes the slope of
two runs instead, so they cancel (docs/data-cost.md).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests import testbed as emu
from tests.fixtures.testbed import testbed_unavailable as why_no_testbed
from tests.usage.site import Site

pytestmark = [pytest.mark.testbed, pytest.mark.broker, pytest.mark.slow]

RUN_S = 90.0
MONTH_S = 30 * 86400.0
RUNS = {"default": ("fiber", 12.0), "metered": ("geo", 60.0)}


def run(name: str, bed: str, scale: float, workdir: Path, out: dict[str, Any]) -> None:
    try:
        with emu.Testbed(emu.PROFILES[bed], seed=19) as tb:
            site = Site(tb, workdir / name, acks={"max_delay_s": 1.0, "min_gap_s": 1.0})
            before = site.wan_bytes()
            site.start_agent(site.config(name, scale=scale))
            started = time.monotonic()
            time.sleep(RUN_S)
            view = site.fleet_view()  # the regency's view while the node runs (a clean stop says offline)
            site.stop_agent()
            took = time.monotonic() - started
            time.sleep(2.0)  # the collector stores the last batch
            out[name] = {"wan": site.wan_bytes() - before, "ledger": site.ledger(), "took": took,
                         "rows": site.rows(), "view": view, "log": site.log("agent")}  # fmt: skip
    except Exception as exc:  # reported by the tests that read it
        out[name] = {"error": repr(exc)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reason = why_no_testbed()
    if reason:
        pytest.skip(reason)
    out: dict[str, Any] = {}
    workdir = tmp_path_factory.mktemp("usage")
    threads = [threading.Thread(target=run, args=(n, b, s, workdir, out)) for n, (b, s) in RUNS.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_S + 120)
    return out


def result(runs: dict[str, Any], name: str) -> dict[str, Any]:
    r = runs.get(name, {"error": "did not finish"})
    assert "error" not in r, r["error"]
    return r


def month_mb(r: dict[str, Any], scale: float) -> float:
    """The run's bytes a second, in real time (its schedule ran `scale` times faster), for a month."""
    return r["wan"] / r["took"] / scale * MONTH_S / 1e6


@pytest.mark.parametrize("name", list(RUNS))
def test_the_agents_own_account_is_within_10_percent_of_the_gateways_counters(runs: dict[str, Any], name: str):
    r = result(runs, name)
    counted, wan = r["ledger"].usage_month, r["wan"]
    bed, scale = RUNS[name]
    print(f"\n{name} on {bed} (intervals / {scale:g}, {r['took']:.0f} s): the uplink carried {wan} bytes, the agent "
          f"counted {counted} ({100 * (counted / wan - 1):+.1f} %): {dict(sorted(r['ledger'].usage.items()))}; "
          f"at most {month_mb(r, scale):.1f} MB a month")  # fmt: skip
    assert wan > 5000
    assert abs(counted / wan - 1) <= 0.10, (counted, wan, r["ledger"].usage)
    # every kind that crossed the uplink was counted (the gateway's pings stay on the LAN, free)
    assert {"report", "icmp", "tcp", "dns", "http", "link"} <= set(r["ledger"].usage)


@pytest.mark.parametrize("name", list(RUNS))
def test_the_collector_stored_every_reading_and_sees_the_desa_online_on_its_link(runs: dict[str, Any], name: str):
    r = result(runs, name)
    seqs = sorted(row["seq"] for row in r["rows"])
    assert seqs and seqs == list(range(1, len(seqs) + 1))  # batched, stored once each, no gap
    view = r["view"]
    assert view.state == "online" and view.uplink == "ok" and not view.dark, view
    assert view.link_type == {"fiber": "fiber", "geo": "satellite-geo"}[RUNS[name][0]], view


def test_the_metered_profile_costs_a_small_fraction_of_the_default(runs: dict[str, Any]):
    default, metered = result(runs, "default"), result(runs, "metered")
    ratio = month_mb(metered, RUNS["metered"][1]) / month_mb(default, RUNS["default"][1])
    assert ratio < 0.15, ratio
    report = metered["ledger"].usage.get("report", 0) / metered["ledger"].usage_month
    assert report < 0.6, metered["ledger"].usage  # reporting no longer dominates


def test_https_checks_resumed_their_tls_session(runs: dict[str, Any]):
    web = [row for row in result(runs, "default")["rows"] if row["measurement"] == "http"]
    assert len(web) >= 3 and all(row["ok"] for row in web)
    assert [row["fields"]["tls_resumed"] for row in web[:3]] == [False, True, True]
    assert web[1]["fields"]["wire_bytes"] < web[0]["fields"]["wire_bytes"] - 300
