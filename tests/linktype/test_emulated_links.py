"""`netprobe probe link` on the emulated uplinks: fiber, GEO, cellular and LEO classify correctly.

The four testbeds are built once and observed at the same time (about 55 s of
wall time for all four, bounded by the LEO look, which needs three 15-s
boundaries). Each scenario's observation time is part of what is proven:
fiber and GEO in 10 s, cellular in 2 idle-promotion trials plus 10 s, LEO in 50 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from tests import testbed as emu
from tests.fixtures.testbed import testbed_unavailable as why_no_testbed

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

# profile -> link probe options (-o KEY=VALUE)
SCENARIOS: dict[str, list[str]] = {
    "fiber": ["observe_s=10", "promo_trials=0"],
    "geo": ["observe_s=10", "promo_trials=0"],
    # the profile's radio sleeps after 10 s of silence: wait 11 s before each trial
    "cellular": ["observe_s=10", "promo_trials=2", "promo_idle_s=11"],
    "leo": ["observe_s=50", "promo_trials=0"],
}


def observe(tb: emu.Testbed, options: list[str], out: dict[str, Any], name: str) -> None:
    argv = ["probe", "link", tb.server_ip, "--json"]
    for o in options:
        argv += ["-o", o]
    try:
        result = tb.exec(tb.node_ns, [sys.executable, "-m", "agent", *argv], timeout=120, check=False)
        out[name] = json.loads(result.stdout) if result.stdout.strip() else {"stderr": result.stderr}
    except Exception as exc:  # reported by the test that reads it
        out[name] = {"stderr": repr(exc)}


@pytest.fixture(scope="module")
def verdicts() -> Any:
    reason = why_no_testbed()
    if reason:
        pytest.skip(reason)
    beds: list[emu.Testbed] = []
    out: dict[str, Any] = {}
    try:
        for i, name in enumerate(SCENARIOS):
            bed = emu.Testbed(emu.PROFILES[name], seed=100 + i)
            beds.append(bed)
            bed.build()
        threads = [
            threading.Thread(target=observe, args=(bed, SCENARIOS[name], out, name))
            for bed, name in zip(beds, SCENARIOS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        yield out
    finally:
        for bed in beds:
            bed.destroy()


def fields_of(verdicts: dict[str, Any], name: str) -> dict[str, Any]:
    reading = verdicts.get(name, {})
    assert "fields" in reading, f"{name}: the link probe printed no Reading: {reading.get('stderr', '')[-800:]}"
    assert reading["ok"], reading
    return dict(reading["fields"])


def test_fiber_testbed_is_classified_fiber_in_10s(verdicts):
    f = fields_of(verdicts, "fiber")
    assert f["link_type"] == "fiber", f
    assert f["isp_hop"] == "203.0.113.1"
    assert 4.0 <= f["access_ms"] <= 7.0  # the profile injects 5 ms


def test_geo_testbed_is_classified_geo_in_10s_by_the_physics_rule(verdicts):
    f = fields_of(verdicts, "geo")
    assert f["link_type"] == "satellite-geo" and f["backhaul"] == "geo", f
    assert f["isp_min_ms"] >= 570 and "geo_floor" in f["evidence"]  # 600 ms, 3 ms jitter each way
    assert f["confidence"] >= 0.9


def test_cellular_testbed_is_classified_cellular_from_the_idle_penalty(verdicts):
    f = fields_of(verdicts, "cellular")
    print("cellular:", f)
    assert f["link_type"] == "cellular", f
    assert "idle_promotion" in f["evidence"]


def test_leo_testbed_is_classified_leo_from_15s_steps_in_50s(verdicts):
    f = fields_of(verdicts, "leo")
    print("leo:", f)
    assert f["link_type"] == "satellite-leo", f
    # found from the 15-s period itself: this machine's clock need not be NTP-synced
    assert "leo_period" in f["evidence"] and f["confidence"] >= 0.7, f


def test_diagnose_shows_the_link_verdict_with_evidence_in_english_and_indonesian(testbed, tmp_path):
    tb = testbed("fiber")
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[[targets]]\nkind = "icmp"\ntarget = "gateway"\n\n[[targets]]\nkind = "icmp"\ntarget = "{tb.server_ip}"\n'
    )
    # One after the other, as a technician would: run at once, each one's echoes were the other's
    # traffic through the emulator, and the look once read a fiber link's delay as jittery.
    results = {lang: tb.agent(["diagnose", "-c", str(cfg), "--lang", lang], timeout=40) for lang in ("en", "id")}
    outputs = {}
    for lang, result in results.items():
        assert result.returncode == 0, result.stderr
        outputs[lang] = result.stdout
    en = next(line for line in outputs["en"].splitlines() if " Link " in line)
    idn = next(line for line in outputs["id"].splitlines() if " Jaringan " in line)
    assert "fiber (confidence" in en and "access delay" in en and "ms, flat" in en
    assert "fiber (keyakinan" in idn and "jeda akses" in idn


def test_samples_taken_while_the_link_is_busy_are_not_counted_as_idle(testbed):
    tb = testbed("fiber")
    argv = [sys.executable, "-m", "agent", "probe", "link", tb.server_ip, "--json"]
    argv += ["-o", "observe_s=10", "-o", "promo_trials=0"]
    probe = tb.popen(tb.node_ns, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)  # then a 2-s flood of 1400-byte pings: far above the 200 kbit/s idle limit
    tb.exec(tb.node_ns, ["ping", "-n", "-q", "-f", "-l", "20", "-s", "1400", "-w", "2", tb.server_ip], check=False)
    out, _ = probe.communicate(timeout=60)
    f = json.loads(out)["fields"]
    assert f["samples"] == 50
    assert 15 <= f["idle_samples"] <= 40, f  # the busy seconds (and the one after each) are left out
    assert f["link_type"] == "fiber", f
