"""The link emulator's decisions, apart from its sockets: frame in (direction, arrival time), release
time or drop out. Pure apart from a seeded RNG, so a test can replay exactly what the emulator does.

Times are wall-clock seconds (time.time()), because the LEO handover is aligned to UTC seconds.
Every frame draws the same number of random values whatever happens to it, so the decisions for a
given sequence of frames depend only on the seed.
"""

from __future__ import annotations

import math
import random
from typing import Optional

from tests.testbed.profiles import Direction, Handover, Profile

DOWN, UP = "down", "up"


def handover_slot(handover: Handover, wall: float) -> int:
    """Index of the slot `wall` falls in; slot k starts at boundary k (phase_s + k * period_s)."""
    return math.floor((wall - handover.phase_s) / handover.period_s)


def handover_state(handover: Handover, wall: float) -> tuple[float, bool]:
    """(extra one-way delay in ms, whether frames are being lost) at wall-clock time `wall`."""
    slot = handover_slot(handover, wall)
    since_boundary = wall - (handover.phase_s + slot * handover.period_s)
    offset = handover.offsets_ms[slot % len(handover.offsets_ms)] if handover.offsets_ms else 0.0
    return offset, since_boundary * 1000.0 < handover.loss_ms


class DirectionState:
    """What one direction remembers between frames: its RNG, last release time, burst state."""

    def __init__(self, settings: Direction, rng: random.Random) -> None:
        self.settings = settings
        self.rng = rng
        self.last_release = -math.inf
        self.bad = False  # Gilbert-Elliott state

    def lost(self) -> bool:
        """Random loss, then burst loss; always three draws per frame."""
        d = self.settings
        u_random, u_switch, u_burst = self.rng.random(), self.rng.random(), self.rng.random()
        lost = u_random * 100.0 < d.loss_pct
        if d.burst is not None:
            ge = d.burst
            self.bad = u_switch >= ge.p_bad_to_good if self.bad else u_switch < ge.p_good_to_bad
            lost = lost or u_burst * 100.0 < (ge.loss_bad_pct if self.bad else ge.loss_good_pct)
        return lost

    def jitter_s(self) -> float:
        sample = self.rng.gauss(0.0, 1.0) * self.settings.jitter_ms
        return sample / 1000.0


class LinkModel:
    """Both directions of one emulated uplink."""

    def __init__(self, profile: Profile, seed: int = 1, now: float = 0.0) -> None:
        self.profile = profile
        self.directions = {
            DOWN: DirectionState(profile.down, random.Random(f"{seed}/down")),
            UP: DirectionState(profile.up, random.Random(f"{seed}/up")),
        }
        self.last_activity = now  # the radio starts awake
        self.counts = {"passed": 0, "dropped": 0, "idle_penalties": 0}

    def reconfigure(self, profile: Profile) -> None:
        """New settings, same RNG streams and ordering state: no frame reorders across a change."""
        self.profile = profile
        self.directions[DOWN].settings = profile.down
        self.directions[UP].settings = profile.up

    def decide(self, direction: str, arrival: float, lossy: bool = True) -> Optional[float]:
        """Release time for a frame that arrived at `arrival`, or None to drop it.

        `lossy=False` exempts a frame from random, burst and handover loss (the emulator passes
        ARP that way); a dead uplink drops everything.
        """
        state = self.directions[direction]
        d = state.settings
        jitter = state.jitter_s()
        lost = state.lost()
        idle = self.profile.idle_penalty
        extra = 0.0
        if idle is not None and arrival - self.last_activity >= idle.after_s:
            extra = idle.extra_ms / 1000.0
            self.counts["idle_penalties"] += 1
        self.last_activity = max(self.last_activity, arrival)
        if self.profile.handover is not None:
            offset_ms, blackout = handover_state(self.profile.handover, arrival)
            extra += offset_ms / 1000.0
            lost = lost or blackout
        if self.profile.uplink_dead or (lossy and lost):
            self.counts["dropped"] += 1
            return None
        release = arrival + max(0.0, d.delay_ms / 1000.0 + jitter) + extra
        if not d.reorder:
            release = max(release, state.last_release)
        state.last_release = max(state.last_release, release)
        self.counts["passed"] += 1
        return release
