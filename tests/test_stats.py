"""RTT statistics: properties that must hold for any series, and the known values."""

from __future__ import annotations

import math
import statistics
from typing import Optional

from hypothesis import given
from hypothesis import strategies as st

from agent import stats
from agent.net.echo import EchoTally, parse_reply
from agent.probes.icmp import outcome

rtt = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)
series = st.lists(st.one_of(rtt, st.none()), min_size=1, max_size=200)


def test_known_series_matches_hand_computed_values() -> None:
    f = stats.summarize([10.0, None, 20.0, 30.0, None, None, 40.0])
    assert f["sent"] == 7 and f["received"] == 4
    assert f["loss_pct"] == round(300 / 7, 3)
    assert f["rtt_min_ms"] == 10.0 and f["rtt_max_ms"] == 40.0 and f["rtt_avg_ms"] == 25.0
    assert f["rtt_p50_ms"] == 25.0
    assert f["rtt_mdev_ms"] == round(math.sqrt(125.0), 3)  # population sd, as iputils ping
    assert f["jitter_ms"] == 10.0
    assert f["loss_burst_max"] == 2


@given(series)
def test_summary_is_ordered_and_bounded(samples: list[Optional[float]]) -> None:
    f = stats.summarize(samples)
    received = [s for s in samples if s is not None]
    assert f["sent"] == len(samples) and f["received"] == len(received)
    assert 0.0 <= f["loss_pct"] <= 100.0
    if not received:
        assert "rtt_avg_ms" not in f and f["loss_pct"] == 100.0
        return
    lo, hi = round(min(received), 3), round(max(received), 3)
    assert f["rtt_min_ms"] == lo and f["rtt_max_ms"] == hi
    for key in ("rtt_avg_ms", "rtt_p50_ms", "rtt_p90_ms", "rtt_p99_ms"):
        assert lo - 0.001 <= f[key] <= hi + 0.001, key
    assert f["rtt_p50_ms"] <= f["rtt_p90_ms"] + 0.001 <= f["rtt_p99_ms"] + 0.002
    assert 0.0 <= f["jitter_ms"] <= hi - lo + 0.001
    assert math.isclose(f["rtt_mdev_ms"], statistics.pstdev(received), abs_tol=0.002)


@given(st.lists(rtt, min_size=1, max_size=100))
def test_percentile_agrees_with_statistics_quantiles(values: list[float]) -> None:
    ordered = sorted(values)
    if len(values) > 1:
        deciles = statistics.quantiles(values, n=10, method="inclusive")
        assert math.isclose(stats.percentile(ordered, 50), statistics.median(values), abs_tol=1e-6)
        assert math.isclose(stats.percentile(ordered, 90), deciles[8], abs_tol=1e-6)
    assert stats.percentile(ordered, 0) == ordered[0] and stats.percentile(ordered, 100) == ordered[-1]


@given(series)
def test_longest_loss_run_is_the_longest_run_of_none(samples: list[Optional[float]]) -> None:
    text = "".join("x" if s is None else "." for s in samples)
    longest = max((len(run) for run in text.split(".")), default=0)
    assert stats.longest_loss_run(samples) == longest


def test_constant_rtt_has_no_jitter_or_deviation() -> None:
    f = stats.summarize([12.5] * 10)
    assert f["jitter_ms"] == 0.0 and f["rtt_mdev_ms"] == 0.0 and "loss_burst_max" not in f


@given(st.lists(st.tuples(st.integers(0, 19), st.floats(0.0, 3.0)), max_size=60))
def test_duplicate_and_late_replies_never_change_loss_or_rtt(replies: list[tuple[int, float]]) -> None:
    """Whatever extra replies arrive, each request counts once, and late ones count as lost."""
    replies = sorted(replies, key=lambda r: r[0] + r[1])  # the wire delivers them in time order
    tally = EchoTally(timeout_s=1.0)
    for seq in range(20):
        tally.sent(seq, 1000.0 + seq)
    for seq, after in replies:
        tally.replied(seq, 1000.0 + seq + after)
    on_time: dict[int, float] = {}
    for seq, after in replies:
        if after <= 1.0:
            on_time.setdefault(seq, after)
    samples = tally.samples()
    assert [s is not None for s in samples] == [seq in on_time for seq in range(20)]
    for seq, value in enumerate(samples):
        if value is not None:
            assert math.isclose(value, on_time[seq] * 1000.0, abs_tol=1e-6)
    fields = outcome(tally, "x", socket="raw").fields
    assert fields["received"] == len(on_time)
    assert fields["duplicates"] + fields["late"] == len(replies) - len(on_time)


def test_reply_to_an_unknown_sequence_is_ignored() -> None:
    tally = EchoTally(timeout_s=1.0)
    tally.sent(0, 100.0)
    tally.replied(7, 100.1)
    assert tally.samples() == [None] and tally.duplicates == 0 and tally.late == 0


@given(st.binary(max_size=200), st.sampled_from([2, 10]), st.booleans())
def test_any_packet_on_the_icmp_socket_is_parsed_or_ignored_never_raises(packet: bytes, family: int, raw: bool) -> None:
    """Whatever arrives on a raw socket (other hosts' ICMP, truncated errors) must not end a run."""
    parsed = parse_reply(packet, family, raw)
    assert parsed is None or (len(parsed) == 3 and all(0 <= v <= 0xFFFF for v in parsed))


def test_a_run_is_complete_only_once_every_request_it_will_send_is_answered() -> None:
    tally = EchoTally(timeout_s=1.0, expected=3)
    tally.sent(0, 100.0)
    tally.replied(0, 100.01)
    assert not tally.complete()  # two requests are still to be sent
    for seq in (1, 2):
        tally.sent(seq, 100.0 + seq)
        tally.replied(seq, 100.01 + seq)
    assert tally.complete()
