"""The link emulator's scheduling core and the profiles, without a network (runs as any user)."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from tests.testbed.profiles import (
    PROFILES,
    Direction,
    GilbertElliott,
    Handover,
    IdlePenalty,
    Profile,
    profile_from_dict,
    profile_to_dict,
)
from tests.testbed.schedule import DOWN, UP, LinkModel, handover_slot, handover_state

NO_DELAY = Direction(0.0)


def plain(down: Direction, up: Direction = NO_DELAY, **kw: object) -> Profile:
    return Profile("t", "test", down=down, up=up, **kw)  # type: ignore[arg-type]


def run_frames(model: LinkModel, direction: str, n: int, gap_s: float, start: float = 1000.0) -> list[object]:
    return [model.decide(direction, start + i * gap_s) for i in range(n)]


def longest_run(flags: list[bool]) -> int:
    best = run = 0
    for lost in flags:
        run = run + 1 if lost else 0
        best = max(best, run)
    return best


def test_fixed_delay_is_added_per_direction():
    model = LinkModel(plain(Direction(300.0), Direction(20.0)), now=0.0)
    assert model.decide(DOWN, 10.0) == pytest.approx(10.3)
    assert model.decide(UP, 10.0) == pytest.approx(10.02)


def test_jitter_never_reorders_frames_unless_asked():
    model = LinkModel(plain(Direction(20.0, jitter_ms=10.0)), seed=3)
    releases = run_frames(model, DOWN, 2000, 0.001)
    assert releases == sorted(releases)  # type: ignore[type-var]
    reordering = LinkModel(plain(Direction(20.0, jitter_ms=10.0, reorder=True)), seed=3)
    shuffled = run_frames(reordering, DOWN, 2000, 0.001)
    assert shuffled != sorted(shuffled)  # type: ignore[type-var]


def test_jitter_spreads_delays_with_the_configured_width():
    model = LinkModel(plain(Direction(50.0, jitter_ms=4.0)), seed=5)
    delays = [(r - (1000.0 + i)) * 1000 for i, r in enumerate(run_frames(model, DOWN, 3000, 1.0))]  # type: ignore[operator]
    assert statistics.median(delays) == pytest.approx(50.0, abs=0.3)
    assert statistics.pstdev(delays) == pytest.approx(4.0, rel=0.1)


def test_random_loss_matches_the_rate_and_is_reproducible_by_seed():
    lost = [r is None for r in run_frames(LinkModel(plain(Direction(1.0, loss_pct=5.0)), seed=11), DOWN, 20000, 0.01)]
    assert 100.0 * sum(lost) / len(lost) == pytest.approx(5.0, abs=0.5)
    again = [r is None for r in run_frames(LinkModel(plain(Direction(1.0, loss_pct=5.0)), seed=11), DOWN, 20000, 0.01)]
    assert lost == again
    other = [r is None for r in run_frames(LinkModel(plain(Direction(1.0, loss_pct=5.0)), seed=12), DOWN, 20000, 0.01)]
    assert lost != other


def test_gilbert_elliott_loss_comes_in_bursts_at_its_mean_rate():
    ge = GilbertElliott(p_good_to_bad=0.01, p_bad_to_good=0.2)
    model = LinkModel(plain(Direction(1.0, burst=ge)), seed=2)
    lost = [r is None for r in run_frames(model, DOWN, 50000, 0.01)]
    assert 100.0 * sum(lost) / len(lost) == pytest.approx(ge.mean_loss_pct(), abs=1.0)
    random_lost = [
        r is None for r in run_frames(LinkModel(plain(Direction(1.0, loss_pct=ge.mean_loss_pct()))), DOWN, 50000, 0.01)
    ]
    assert longest_run(lost) >= 2 * longest_run(random_lost)


def test_handover_boundaries_fall_at_12_27_42_57_utc():
    h = Handover(offsets_ms=(0.0, 5.0, 2.0, 8.0), loss_ms=60.0)
    minute = 1_800_000_000.0  # a whole UTC minute (divisible by 60)
    assert minute % 60 == 0
    slots = [handover_slot(h, minute + s) for s in (11.9, 12.0, 26.9, 27.0, 42.0, 57.0, 71.9, 72.0)]
    assert slots[0] + 1 == slots[1] == slots[2] == slots[3] - 1 == slots[4] - 2 == slots[5] - 3 == slots[6] - 3
    assert slots[7] == slots[6] + 1
    assert handover_state(h, minute + 12.0)[1] and handover_state(h, minute + 12.059)[1]
    assert not handover_state(h, minute + 12.061)[1] and not handover_state(h, minute + 11.99)[1]


def test_handover_steps_the_delay_and_drops_frames_right_after_a_boundary():
    h = Handover(offsets_ms=(0.0, 10.0), loss_ms=50.0)
    model = LinkModel(plain(Direction(20.0), handover=h))
    minute = 1_800_000_000.0
    before = model.decide(DOWN, minute + 11.5)
    during = model.decide(DOWN, minute + 12.02)
    after = model.decide(DOWN, minute + 12.5)
    assert during is None
    assert before is not None and after is not None
    step_ms = ((after - (minute + 12.5)) - (before - (minute + 11.5))) * 1000
    assert abs(step_ms) == pytest.approx(10.0, abs=1e-3)


def test_idle_penalty_hits_only_the_first_frame_after_silence():
    profile = plain(Direction(20.0), Direction(20.0), idle_penalty=IdlePenalty(after_s=5.0, extra_ms=80.0))
    model = LinkModel(profile, now=0.0)
    busy = model.decide(UP, 1.0)
    woke = model.decide(UP, 7.0)
    next_one = model.decide(DOWN, 7.2)
    assert busy == pytest.approx(1.02)
    assert woke == pytest.approx(7.1)  # 20 ms + 80 ms wake-up
    assert next_one == pytest.approx(7.22)
    assert model.counts["idle_penalties"] == 1


def test_dead_uplink_drops_everything_and_lossless_frames_survive_loss():
    dead = LinkModel(plain(Direction(1.0), uplink_dead=True))
    assert all(dead.decide(d, 1.0 + i, lossy=False) is None for i, d in enumerate((UP, DOWN) * 5))
    lossy = LinkModel(plain(Direction(1.0, loss_pct=100.0)))
    assert lossy.decide(DOWN, 1.0) is None
    assert lossy.decide(DOWN, 2.0, lossy=False) is not None  # ARP


def test_reconfigure_keeps_order_across_a_delay_drop():
    model = LinkModel(plain(Direction(300.0)))
    first = model.decide(DOWN, 1.0)
    model.reconfigure(plain(Direction(1.0)))
    second = model.decide(DOWN, 1.01)
    assert first is not None and second is not None and second >= first


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles_survive_the_trip_to_the_emulator(name):
    assert profile_from_dict(profile_to_dict(PROFILES[name])) == PROFILES[name]


def test_each_profile_shows_the_physics_of_its_class():
    fiber, leo, geo, cell = (PROFILES[n] for n in ("fiber", "leo", "geo", "cellular"))
    assert fiber.base_rtt_ms() <= 10 and fiber.down.jitter_ms < 1 and fiber.down.rate_mbit == 100
    assert leo.handover is not None and (leo.handover.period_s, leo.handover.phase_s) == (15.0, 12.0)
    steps = [leo.base_rtt_ms() + 2 * o for o in leo.handover.offsets_ms]
    assert min(steps) >= 20 and max(steps) <= 40 and (leo.down.rate_mbit, leo.up.rate_mbit) == (50, 10)
    assert min(geo.down.delay_ms, geo.up.delay_ms) >= 290 and geo.base_rtt_ms() >= 580
    round_trip_loss = 100 * (1 - (1 - geo.down.loss_pct / 100) * (1 - geo.up.loss_pct / 100))
    assert round_trip_loss == pytest.approx(1.0, abs=0.2) and (geo.down.rate_mbit, geo.up.rate_mbit) == (10, 2)
    assert 25 <= cell.base_rtt_ms() <= 60 and cell.down.jitter_ms >= 2 and cell.idle_penalty is not None
    assert (cell.down.rate_mbit, cell.up.rate_mbit) == (20, 5)
    assert PROFILES["dead-uplink"].uplink_dead and not PROFILES["dead-uplink"].dns_broken
    assert PROFILES["dns-broken"].dns_broken and not PROFILES["dns-broken"].uplink_dead
    assert all(p.doc for p in PROFILES.values())


def test_overriding_a_direction_keeps_the_rest_of_the_profile():
    geo = dataclasses.replace(PROFILES["geo"], down=Direction(delay_ms=5))
    assert geo.down.delay_ms == 5 and geo.up == PROFILES["geo"].up
