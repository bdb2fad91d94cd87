"""What watching costs a month (docs/data-cost.md): the default schedule and the `metered` profile, on the GEO testbed.

Each configuration runs twice on its own GEO testbed (the regency's broker and collector beyond the
emulated VSAT uplink), SHORT_S and LONG_S, with every interval (probes, batch latency, status,
keepalive, the link watcher) divided by its scale; the three configurations run at the same time.
The month is the slope of the two runs (what the longer one added per second, so the one-offs of a
start, the connection and every target's first run, cancel) divided by the scale, times 30 days:

    month = (bytes(LONG_S) - bytes(SHORT_S)) / (LONG_S - SHORT_S) / scale * 30 days

for the gateway's WAN counters (the judge) and for the agent's own account, kind by kind (reporting is
kind `report`: Readings, status, acks, keepalives). The link look runs every few hours, so no run holds
a second one: its month is looks a month times one look's bytes at the profile's real size (the
estimate the test suite holds within 7 % of the counters: tests/usage/test_testbed.py), added to both.

    .venv/bin/python -m pytest tests/bench/bench_usage.py -s -p no:cacheprovider -o python_files='bench_*.py'

Writes artifacts/bench-usage.json.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config import parse_config
from agent.usage import estimate
from agent.usage.profile import METERED_SECTIONS
from tests import testbed as emu
from tests.fixtures.collector import ROOT
from tests.fixtures.testbed import testbed_unavailable as why_no_testbed
from tests.usage.site import Site

pytestmark = [pytest.mark.testbed, pytest.mark.broker, pytest.mark.slow]

SHORT_S, LONG_S = 60.0, 180.0
MONTH_S = 30 * 86400.0
CONFIGS = {  # name -> (profile, scale, extra config sections)
    "default": ("default", 12.0, {}),
    "default, batch = false": ("default", 12.0, {"mqtt": {"batch": False}}),
    "metered": ("metered", 60.0, {}),
}
PROBING = ("icmp", "tcp", "dns", "http", "path", "throughput")


def one_run(profile: str, scale: float, extra: dict[str, Any], seconds: float, workdir: Path) -> dict[str, Any]:
    with emu.Testbed(emu.PROFILES["geo"], seed=1919) as tb:
        site = Site(tb, workdir)
        before = site.wan_bytes()
        site.start_agent(site.config(profile, scale=scale, **extra))
        started = time.monotonic()
        time.sleep(seconds)
        site.stop_agent()
        took = time.monotonic() - started
        readings = len(site.rows())
        return {"s": took, "wan": site.wan_bytes() - before, "kinds": dict(site.ledger().usage), "readings": readings}


def measure(name: str, out: dict[str, Any], workdir: Path) -> None:
    profile, scale, extra = CONFIGS[name]
    try:
        runs = [
            one_run(profile, scale, extra, s, workdir / f"{name}-{s:g}".replace(" ", "")) for s in (SHORT_S, LONG_S)
        ]
        out[name] = runs
    except Exception as exc:
        out[name] = {"error": repr(exc)}


def link_month(profile: str) -> tuple[float, float]:
    """(bytes a month of the link looks at the profile's real size, looks a month)."""
    cfg = parse_config({"daemon": {"profile": profile}} if profile == "metered" else {})
    lt = cfg.linktype
    link = next(t for t in cfg.targets if t.kind == "link")
    samples = int(lt.observe_s * lt.rate_hz)
    fields = {"samples": samples, "idle_samples": samples, "evidence": f"promo:trials={lt.promo_trials}"}
    look = estimate.run_bytes("link", "1.1.1.1", True, fields, None, lambda _h: False)
    looks = MONTH_S / link.interval
    return look * looks, looks


def per_month(runs: list[dict[str, Any]], scale: float, key: Any) -> float:
    short, long = runs
    slope = (key(long) - key(short)) / (long["s"] - short["s"])
    return slope / scale * MONTH_S


def test_bytes_a_month_default_and_metered() -> None:
    reason = why_no_testbed()
    if reason:
        pytest.skip(reason)
    out: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-usage-"))
    threads = [threading.Thread(target=measure, args=(name, out, workdir)) for name in CONFIGS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LONG_S + SHORT_S + 300)
    report: dict[str, Any] = {"method": __doc__.split("\n\n")[1], "short_s": SHORT_S, "long_s": LONG_S}
    print()
    for name, (profile, scale, _) in CONFIGS.items():
        runs = out.get(name)
        assert isinstance(runs, list), (name, runs)
        links, looks = link_month(profile)
        wan = per_month(runs, scale, lambda r: r["wan"]) + links
        counted = per_month(runs, scale, lambda r: sum(r["kinds"].values())) + links
        kinds = {
            k: per_month(runs, scale, lambda r, k=k: r["kinds"].get(k, 0))
            for k in set().union(*(r["kinds"] for r in runs))
        }
        kinds["link"] = kinds.get("link", 0.0) + links
        reporting = kinds.get("report", 0.0)
        probing = sum(v for k, v in kinds.items() if k != "report")
        readings = per_month(runs, scale, lambda r: r["readings"])
        row = {
            "scale": scale,
            "runs": runs,
            "mb_month_wan": round(wan / 1e6, 2),
            "mb_month_counted": round(counted / 1e6, 2),
            "mb_month_reporting": round(reporting / 1e6, 2),
            "mb_month_probing": round(probing / 1e6, 2),
            "mb_month_by_kind": {k: round(v / 1e6, 3) for k, v in sorted(kinds.items())},
            "link_looks_month": round(looks),
            "readings_month": round(readings),
            "reporting_bytes_per_reading": round(reporting / readings, 1) if readings else None,
        }
        report[name] = row
        print(f"{name:>24}: {row['mb_month_wan']:7.2f} MB a month on the uplink (the agent counted "
              f"{row['mb_month_counted']:.2f}): reporting {row['mb_month_reporting']:.2f}, probing "
              f"{row['mb_month_probing']:.2f} {row['mb_month_by_kind']}; {row['readings_month']} Readings, "
              f"{row['reporting_bytes_per_reading']} B each")  # fmt: skip
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "bench-usage.json").write_text(json.dumps(report, indent=1, default=str))
    assert report["metered"]["mb_month_wan"] < 10.0, report["metered"]
    assert METERED_SECTIONS["usage"]["monthly_budget_mb"] == 10.0
