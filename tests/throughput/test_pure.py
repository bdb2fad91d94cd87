"""The throughput logic that needs no network: estimator, allowance, budget, grading, parsing, schedule."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import subprocess
import sys
import time

import pytest

from agent.diagnose.throughput import to_check
from agent.probes import throughput as probe
from agent.probes.base import ProbeContext
from agent.reading.model import PROTOCOL_ERROR, REFUSED, Identity, Outcome, ProbeFailure, make_reading
from agent.throughput import bloat, budget, iperf3, speedtest
from agent.throughput.estimator import STABLE, TIME_CAP, Allowance, RateEstimator, StopRules
from tests.helpers import free_port, requires_tool

MIB = 1 << 20


def slow_start_then_steady(rate_bps: float, rtt: float = 0.1, dt_s: float = 0.05, until: float = 10.0):
    """Cumulative bytes of a flow whose rate doubles every RTT from 1/64 of the link, then holds."""
    t, total, out = 0.0, 0.0, []
    while t < until:
        t = round(t + dt_s, 6)
        rate = min(rate_bps, rate_bps / 64 * 2 ** (t / rtt))
        total += rate / 8 * dt_s
        out.append((t, int(total)))
    return out


def feed(est: RateEstimator, samples):
    for t, b in samples:
        est.add(t, b)
        reason = est.stop_reason(t)
        if reason:
            return t, reason
    return samples[-1][0], None


def test_warm_up_is_excluded_from_the_estimate():
    samples = slow_start_then_steady(10e6)
    est = RateEstimator(StopRules(time_cap_s=10.0))
    t, reason = feed(est, samples)
    assert reason == STABLE
    assert est.warmup_s is not None and 0.4 < est.warmup_s < 1.5
    assert est.estimate_bps == pytest.approx(10e6, rel=0.01)
    plain_average = samples[[s[0] for s in samples].index(t)][1] * 8 / t
    assert plain_average < 0.9 * 10e6  # what a test that keeps slow start would have read


def test_a_steady_flow_stops_as_stable_well_before_the_time_cap():
    est = RateEstimator(StopRules(time_cap_s=10.0))
    t, reason = feed(est, [(i * 0.1, int(i * 0.1 * 1e6)) for i in range(1, 100)])
    assert reason == STABLE and t < 3.0


def test_a_flow_that_never_settles_ends_at_the_time_cap():
    rng = random.Random(3)
    total, samples = 0, []
    for i in range(1, 80):
        total += int(rng.choice([0.2, 3.0]) * 125_000)  # wildly bursty: no stable estimate
        samples.append((i * 0.1, total))
    est = RateEstimator(StopRules(time_cap_s=5.0, stable_pct=1.0))
    t, reason = feed(est, samples)
    assert reason == TIME_CAP and t == pytest.approx(5.0, abs=0.11)


def test_rules_stretch_their_windows_on_a_long_rtt():
    rules = StopRules().for_rtt(600.0)
    assert rules.window_s == pytest.approx(1.2) and rules.span_s == pytest.approx(1.2)
    assert StopRules().for_rtt(10.0).window_s == StopRules().window_s


def test_allowance_never_passes_the_cap_by_a_chunk_or_more():
    cap = 2_000_000
    a = Allowance(cap, MIB)
    granted = [a.take(4) for _ in range(5)]
    assert sum(granted) * MIB <= cap + MIB
    assert a.exhausted and granted[-1] == 0
    tiny = Allowance(100_000, MIB)
    assert tiny.take(4) == 1 and tiny.take(1) == 0  # a cap below one chunk still buys that one chunk
    up = Allowance(1_500_000, MIB)
    assert up.take_bytes(MIB) == MIB and up.take_bytes(MIB) == 1_500_000 - MIB and up.take_bytes(1) == 0


@pytest.mark.parametrize(
    ("today", "reset_day", "start"),
    [
        ("2026-11-28", 1, "2026-11-01"),
        ("2026-11-14", 15, "2026-10-15"),
        ("2026-11-15", 15, "2026-11-15"),
        ("2026-03-01", 31, "2026-02-28"),  # a reset day past the month's end is its last day
        ("2026-02-28", 31, "2026-02-28"),
        ("2026-01-05", 10, "2025-12-10"),
    ],
)
def test_the_monthly_period_starts_on_the_reset_day(today, reset_day, start):
    assert budget.period_start(dt.date.fromisoformat(today), reset_day) == dt.date.fromisoformat(start)


def test_counters_reset_on_a_new_day_and_on_the_reset_day():
    day1 = dt.date(2026, 11, 14)
    s = budget.record(budget.LedgerState(), 3_000_000, day1, 15)
    s = budget.record(s, 2_000_000, day1, 15)
    assert (s.day_bytes, s.month_bytes, s.tests, s.last_bytes) == (5_000_000, 5_000_000, 2, 2_000_000)
    rolled = budget.roll(s, day1 + dt.timedelta(days=1), 15)  # the 15th: a new month and a new day
    assert (rolled.day_bytes, rolled.month_bytes, rolled.last_bytes) == (0, 0, 2_000_000)
    s = budget.record(budget.LedgerState(), 1, dt.date(2026, 11, 20), 15)
    assert budget.roll(s, dt.date(2026, 11, 21), 15).month_bytes == 1  # same month, new day


def test_a_test_that_would_pass_a_budget_is_refused_with_the_reason():
    b = budget.Budget(monthly_bytes=50_000_000, daily_bytes=10_000_000, reset_day=1)
    today = dt.date(2026, 11, 28)
    s = budget.record(budget.LedgerState(), 8_000_000, today, 1)
    assert budget.refusal(s, b, today, budget.estimate_bytes(s, 20_000_000)) == (
        "daily data budget: 8.0 of 10.0 MB used today, a test costs about 8.0 MB"
    )
    assert budget.refusal(s, b, today + dt.timedelta(days=1), 8_000_000) is None
    s = dataclass_replace(s, month_bytes=45_000_000)
    assert "monthly data budget" in (budget.refusal(s, b, today + dt.timedelta(days=1), 8_000_000) or "")
    assert budget.refusal(s, budget.Budget(None, None), today, 10**12) is None
    assert budget.estimate_bytes(budget.LedgerState(), 20_000_000) == 20_000_000  # no history: the cap


def dataclass_replace(s, **kw):
    import dataclasses

    return dataclasses.replace(s, **kw)


def test_ledger_round_trips_and_a_damaged_file_is_kept_aside(tmp_path):
    ledger = budget.Ledger(str(tmp_path / "state"))
    assert ledger.load() == budget.LedgerState()
    state = ledger.update(lambda s: budget.record(s, 1234, dt.date(2026, 11, 28), 1))
    assert budget.Ledger(str(tmp_path / "state")).load() == state
    (tmp_path / "state" / budget.LEDGER_FILE).write_text("{not json")
    assert ledger.load() == budget.LedgerState()
    assert (tmp_path / "state" / (budget.LEDGER_FILE + ".bad")).read_text() == "{not json"


@pytest.mark.parametrize(
    ("increase", "grade"), [(0.0, "A+"), (4.9, "A+"), (5.0, "A"), (45, "B"), (150, "C"), (399, "D"), (400, "F")]
)
def test_bufferbloat_grades_follow_the_waveform_scale(increase, grade):
    assert bloat.grade(increase) == grade


def test_bufferbloat_is_graded_on_the_worse_direction():
    f = bloat.assess([40, 41, 42], [45, 46, 47], [300, 310, 320])
    assert f["rtt_idle_ms"] == 41 and f["rtt_loaded_down_ms"] == 45.5 and f["rtt_loaded_ms"] == 305
    assert f["bufferbloat_ms"] == 264 and f["bufferbloat_grade"] == "D"
    assert bloat.assess([], [], [])["bufferbloat_grade"] is None


def test_pings_held_up_by_a_retransmission_do_not_count_as_queueing():
    # A short queue that drops: a quarter of the TCP pings wait ~200 ms for a retransmission.
    pings = [48, 50, 52, 49, 51, 250, 260, 47, 53, 240, 50, 49]
    assert bloat.assess([41, 41, 42], pings, [])["bufferbloat_grade"] == "A"
    standing_queue = [p + 400 for p in pings]  # a deep queue delays every ping
    assert bloat.assess([41, 41, 42], standing_queue, [])["bufferbloat_grade"] == "F"


def test_echoes_are_read_at_their_median_and_the_method_is_named():
    # Lost echoes are simply missing, so every echo that came back measured the queue.
    echoes = [60, 80, 100, 120, 140]
    f = bloat.assess([40, 40, 40], echoes, [], method="icmp")
    assert f["rtt_loaded_ms"] == 100 and f["bufferbloat_grade"] == "C" and f["rtt_method"] == "icmp"
    g = bloat.assess([40, 40, 40], echoes, [], method="http")
    assert g["rtt_loaded_ms"] == 80 and g["bufferbloat_grade"] == "B" and g["rtt_method"] == "http"


@requires_tool("iperf3")
def test_iperf3_json_from_the_real_tool_is_parsed():
    port = free_port()
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = subprocess.run(
            ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-J", "-t", "1", "-P", "2", "-R"],
            capture_output=True, text=True, timeout=20,
        ).stdout  # fmt: skip
    finally:
        server.wait(10)
    phase = iperf3.parse_json(out)
    raw = json.loads(out)["end"]["sum_received"]
    assert phase.bps == raw["bits_per_second"] > 0
    assert phase.streams == 2 and phase.bytes_moved >= raw["bytes"] > 0


@requires_tool("iperf3")
def test_iperf3_without_a_server_is_a_refused_error_not_a_traceback():
    out = subprocess.run(
        ["iperf3", "-c", "127.0.0.1", "-p", str(free_port()), "-J", "-t", "1"], capture_output=True, text=True
    ).stdout
    with pytest.raises(ProbeFailure) as info:
        iperf3.parse_json(out)
    assert info.value.code == REFUSED
    with pytest.raises(ProbeFailure) as info:
        iperf3.parse_json("iperf3: error")
    assert info.value.code == PROTOCOL_ERROR


def test_throughput_is_a_heavy_probe_with_its_own_schedule():
    assert probe.PROBE.heavy is True  # the scheduler's heavy lock: never beside another heavy probe
    assert probe.PROBE.next_interval is probe.next_interval


def test_schedule_gaps_are_exponential_with_clamps():
    opts = probe.Options(mean_interval=6 * 3600, min_interval=3600, max_interval=24 * 3600)
    rng = random.Random(5)
    gaps = [probe.next_interval(opts, 0.0, None, ProbeContext(), rng) for _ in range(20000)]
    assert min(gaps) == 3600 and max(gaps) == 24 * 3600
    m, lo, hi = 6 * 3600, 3600, 24 * 3600
    expected = lo + m * (math.exp(-lo / m) - math.exp(-hi / m))  # E[clamp(Exp(m), lo, hi)]
    assert sum(gaps) / len(gaps) == pytest.approx(expected, rel=0.03)
    at_low = sum(g == lo for g in gaps) / len(gaps)
    at_high = sum(g == hi for g in gaps) / len(gaps)
    assert at_low == pytest.approx(1 - math.exp(-lo / m), abs=0.01)  # 15 %: exponential, not a fixed period
    assert at_high == pytest.approx(math.exp(-hi / m), abs=0.005)


def test_speedtest_targets_are_auto_an_id_or_legacy_urls():
    assert speedtest.choose_server("auto") == speedtest.ServerChoice()
    assert speedtest.choose_server("1234") == speedtest.ServerChoice(server_id=1234)
    assert speedtest.choose_server("http://10.0.0.1:8989").urls == ("http://10.0.0.1:8989",)
    assert speedtest.server_entries(("http://h:1",))[0]["url"] == "http://h:1/speedtest/upload.php"
    with pytest.raises(ProbeFailure):
        speedtest.choose_server("ftp://x")


def reading(ok: bool, fields: dict, code: str = "", message: str = ""):
    outcome = Outcome(ok=True, fields=fields) if ok else Outcome.failed(code, message)
    return make_reading(Identity("n", {}), "throughput", "http://s", outcome, time.time(), 0.0, 1.0)


def test_diagnose_words_for_a_good_a_bloated_and_a_skipped_test():
    good = {
        "download_mbps": 19.0,
        "upload_mbps": 4.8,
        "bytes_used": 9e6,
        "bufferbloat_grade": "A",
        "bufferbloat_ms": 12,
    }
    assert to_check(reading(True, good)).status == "OK"
    bloated = to_check(reading(True, {**good, "bufferbloat_grade": "F", "bufferbloat_ms": 480}))
    assert bloated.status == "WARN" and bloated.hint == ("hint.bufferbloat", {"ms": 480})
    skipped = to_check(reading(False, {}, "skipped", "daily data budget: ..."))
    assert skipped.status == "SKIP" and skipped.hint[0] == "hint.throughput_budget"
    assert to_check(reading(False, {}, "refused", "x")).status == "WARN"


def test_discovering_the_throughput_probe_loads_no_backend():
    code = (
        "import sys, agent.probes as p; p.registry(); "
        "print(sorted(m for m in sys.modules if m == 'speedtest' or m.startswith('agent.throughput')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    # The settings and the budget ledger are small and pure; every backend waits for a test to run.
    loaded = set(eval(out.stdout))
    assert loaded <= {"agent.throughput", "agent.throughput.settings", "agent.throughput.budget"}, loaded

