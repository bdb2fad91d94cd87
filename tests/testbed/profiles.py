"""Named link profiles for the testbed: one place that says what each emulated uplink is.

Every figure is one-way unless its name says otherwise: a Direction's `delay_ms`
is added to each frame crossing the emulator in that direction, so the injected
round trip is `down.delay_ms + up.delay_ms` (plus the handover offset, both ways,
on LEO). `down` is towards the node (server -> node), `up` is away from it.
Loss is per direction too: a ping is lost when its request or its reply is.

The physics each class must show (what the link-type classifier looks for):

- fiber: a few ms, sub-ms jitter, no loss, 100 Mbit both ways.
- leo: Starlink-like. 20-40 ms RTT that steps every 15 s at :12/:27/:42/:57 UTC
  (satellite handover) with a short loss burst at each step, 50/10 Mbit.
- geo: VSAT. One-way >= 290 ms so RTT >= 580 ms, about 1 % loss, a deep modem
  queue (bufferbloat), 10/2 Mbit.
- cellular: LTE-like. 25-60 ms RTT with several ms of jitter, and an idle
  penalty: the first packet after 10 s of silence waits +80 ms while the
  radio returns from RRC idle. 20/5 Mbit.
- dead-uplink: the gateway answers, nothing beyond it does (every frame crossing
  the emulated uplink is dropped: a dish or ONT that lost its signal).
- dns-broken: ICMP, TCP and HTTP fine; the resolver in the server namespace
  receives queries and never answers, so lookups time out.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

# The LEO handover schedule of the issue: every 15 s at :12, :27, :42 and :57 UTC.
HANDOVER_PERIOD_S = 15.0
HANDOVER_PHASE_S = 12.0


@dataclasses.dataclass(frozen=True)
class GilbertElliott:
    """Two-state burst loss: a Good and a Bad state, switched before each frame.

    Mean burst length is 1 / p_bad_to_good frames; the long-run loss rate is
    pi_bad * loss_bad + pi_good * loss_good with pi_bad = p / (p + r).
    """

    p_good_to_bad: float
    p_bad_to_good: float
    loss_good_pct: float = 0.0
    loss_bad_pct: float = 100.0

    def mean_loss_pct(self) -> float:
        p, r = self.p_good_to_bad, self.p_bad_to_good
        bad = p / (p + r) if p + r else 0.0
        return bad * self.loss_bad_pct + (1.0 - bad) * self.loss_good_pct


@dataclasses.dataclass(frozen=True)
class Handover:
    """LEO handover: the one-way delay steps at every boundary, frames are lost just after it.

    Boundaries fall at wall-clock (UTC) seconds `phase_s + k * period_s`, i.e. :12/:27/:42/:57.
    Slot k (the time after boundary k) adds offsets_ms[k % len(offsets_ms)] one way, in both
    directions, so the RTT steps by twice that. Tests may shorten the period to see steps fast.
    """

    offsets_ms: tuple[float, ...] = (0.0, 5.0, 2.0, 8.0)
    loss_ms: float = 60.0  # everything is lost for this long after each boundary
    period_s: float = HANDOVER_PERIOD_S
    phase_s: float = HANDOVER_PHASE_S


@dataclasses.dataclass(frozen=True)
class IdlePenalty:
    """Cellular radio wake-up: the first frame after `after_s` of silence (both ways) gets +extra_ms."""

    after_s: float = 10.0
    extra_ms: float = 80.0


@dataclasses.dataclass(frozen=True)
class Direction:
    """One direction of the emulated uplink."""

    delay_ms: float  # fixed one-way delay
    jitter_ms: float = 0.0  # standard deviation of a normal jitter sample (no reordering unless reorder)
    loss_pct: float = 0.0  # random (Bernoulli) loss
    burst: Optional[GilbertElliott] = None  # burst loss model, on top of loss_pct
    rate_mbit: Optional[float] = None  # tbf shaping on the router's egress in this direction
    queue_ms: float = 50.0  # tbf queue depth in ms at rate (deep queue = bufferbloat)
    reorder: bool = False  # let jitter reorder frames (off: a frame never overtakes the one before)


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    doc: str
    down: Direction
    up: Direction
    handover: Optional[Handover] = None
    idle_penalty: Optional[IdlePenalty] = None
    uplink_dead: bool = False
    dns_broken: bool = False

    def base_rtt_ms(self) -> float:
        """The injected round trip without handover offsets or idle penalty."""
        return self.down.delay_ms + self.up.delay_ms


FIBER_DOWN = Direction(delay_ms=2.5, jitter_ms=0.1, rate_mbit=100)
FIBER_UP = Direction(delay_ms=2.5, jitter_ms=0.1, rate_mbit=100)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "fiber",
            "FTTH/GPON to a nearby exchange: 5 ms RTT, 0.1 ms jitter, no loss, 100/100 Mbit",
            down=FIBER_DOWN,
            up=FIBER_UP,
        ),
        Profile(
            "leo",
            "Starlink-like LEO: 24-40 ms RTT stepping at :12/:27/:42/:57 UTC with a 60 ms loss burst, 50/10 Mbit",
            down=Direction(delay_ms=12.0, jitter_ms=1.0, loss_pct=0.2, rate_mbit=50),
            up=Direction(delay_ms=12.0, jitter_ms=1.0, loss_pct=0.2, rate_mbit=10),
            handover=Handover(),
        ),
        Profile(
            "geo",
            "GEO VSAT: 300 ms each way (RTT 600 ms), 3 ms jitter, ~1 % loss, deep modem queue, 10/2 Mbit",
            down=Direction(delay_ms=300.0, jitter_ms=3.0, loss_pct=0.5, rate_mbit=10, queue_ms=300.0),
            up=Direction(delay_ms=300.0, jitter_ms=3.0, loss_pct=0.5, rate_mbit=2, queue_ms=300.0),
        ),
        Profile(
            "cellular",
            "LTE-like: 40 ms RTT, 5 ms jitter, +80 ms on the first packet after 10 s idle, 20/5 Mbit",
            down=Direction(delay_ms=20.0, jitter_ms=5.0, loss_pct=0.1, rate_mbit=20, queue_ms=100.0),
            up=Direction(delay_ms=20.0, jitter_ms=5.0, loss_pct=0.1, rate_mbit=5, queue_ms=100.0),
            idle_penalty=IdlePenalty(after_s=10.0, extra_ms=80.0),
        ),
        Profile(
            "dead-uplink",
            "The gateway answers but the uplink carries nothing (dish, ONT or modem without signal)",
            down=FIBER_DOWN,
            up=FIBER_UP,
            uplink_dead=True,
        ),
        Profile(
            "dns-broken",
            "A healthy fiber link whose resolver receives queries and never answers",
            down=FIBER_DOWN,
            up=FIBER_UP,
            dns_broken=True,
        ),
    )
}


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    return dataclasses.asdict(profile)


def profile_from_dict(data: dict[str, Any]) -> Profile:
    """The inverse of profile_to_dict: how the emulator process receives its settings."""

    def direction(d: dict[str, Any]) -> Direction:
        burst = d.get("burst")
        return Direction(**{**d, "burst": GilbertElliott(**burst) if burst else None})

    handover = data.get("handover")
    idle = data.get("idle_penalty")
    return Profile(
        **{
            **data,
            "down": direction(data["down"]),
            "up": direction(data["up"]),
            "handover": Handover(**{**handover, "offsets_ms": tuple(handover["offsets_ms"])}) if handover else None,
            "idle_penalty": IdlePenalty(**idle) if idle else None,
        }
    )
