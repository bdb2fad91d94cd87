"""Synthetic access links for the classifier's unit tests and benchmark.

Each generator draws its parameters from the ranges in
shared/notes/linktype-research.md (sections 1.3, 3.2-3.5), deliberately a bit
wider than the classifier's thresholds, and adds the nuisances a real node
meets: Wi-Fi between the agent and the router, bufferbloat episodes (flagged
as not idle, with the first second of each slipping through as idle, as a
1-s counter poll would let it), random loss, unsynced clocks.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any, Optional

from agent.linktype.classify import CELLULAR, FIBER, GEO, LEO, OTHER, InterfaceFacts, Observation
from agent.linktype.features import PromoTrial, Sample

T0 = 1_795_000_000.0  # an epoch with second-of-minute 0 (1795000000 % 60 == 40: corrected below)
T0 -= T0 % 60  # start on a whole minute, so UTC :12/:27/:42/:57 are at t0 + 12, 27, 42, 57


@dataclasses.dataclass
class Link:
    """A drawn link: access(t) gives the idle access RTT at time t (ms)."""

    kind: str
    base_ms: float
    params: dict[str, Any]


def _lan(rng: random.Random, wifi: bool) -> tuple[float, float]:
    """(shared, independent) LAN delay of one probe pair."""
    base = rng.uniform(0.2, 0.6)
    if not wifi:
        return base + abs(rng.gauss(0, 0.05)), abs(rng.gauss(0, 0.03))
    shared = base + rng.expovariate(1 / rng.uniform(1.0, 4.0))
    if rng.random() < 0.02:
        shared += rng.uniform(10, 40)
    return shared, abs(rng.gauss(0, 0.3))


def make_access(kind: str, rng: random.Random, variant: str = ""):
    """A stateful access-delay function for `kind` and a description of its draw."""
    if kind == FIBER:
        base = rng.uniform(0.4, 7.0)
        sd = rng.uniform(0.03, 0.3)
        spike_p = rng.uniform(0, 0.01)

        def f(t: float) -> float:
            v = base + abs(rng.gauss(0, sd))
            if rng.random() < spike_p:
                v += rng.uniform(3, 30)
            return v

        return f, {"base": base, "sd": sd}
    if kind == GEO:
        base = rng.uniform(480, 680)
        width = rng.uniform(5, 50)
        return (lambda t: base + rng.uniform(0, width) + abs(rng.gauss(0, 2))), {"base": base, "width": width}
    if kind == LEO:
        base = rng.uniform(20, 60)
        slot_sd = rng.uniform(3, 10)
        in_sd = rng.uniform(1, 4)
        spike = rng.uniform(0, 60)
        slots: dict[int, float] = {}

        def f(t: float) -> float:
            k = math.floor((t - 12) / 15)
            if k not in slots:
                slots[k] = abs(rng.gauss(0, slot_sd)) + rng.uniform(0, slot_sd)
            since = (t - 12) - k * 15
            v = base + slots[k] + abs(rng.gauss(0, in_sd))
            if since < 0.4 and spike:
                v += rng.uniform(0, spike)
            return v

        return f, {"base": base, "slot_sd": slot_sd, "in_sd": in_sd}
    if kind == CELLULAR:
        base = rng.uniform(12, 60)
        sd = rng.uniform(2, 8)
        state = {"x": 0.0}

        def f(t: float) -> float:
            state["x"] = 0.7 * state["x"] + rng.gauss(0, sd)
            v = base + abs(state["x"]) + rng.uniform(0, 4)
            if rng.random() < 0.05:
                v += rng.uniform(8, 30)
            return v

        return f, {"base": base, "sd": sd}
    if kind == OTHER:
        variant = variant or rng.choice(("dsl", "cable", "wisp"))
        if variant == "dsl":  # fast path from 9 ms, interleaved up to 40 ms: flat either way
            base, sd = rng.uniform(9, 40), rng.uniform(0.05, 0.4)
            return (lambda t: base + abs(rng.gauss(0, sd))), {"base": base, "sd": sd, "variant": variant}
        if variant == "cable":  # DOCSIS request-grant scheduling: a few ms of uniform jitter
            base, width = rng.uniform(5, 10), rng.uniform(2, 6)
            return (lambda t: base + rng.uniform(0, width)), {"base": base, "width": width, "variant": variant}
        base, sd = rng.uniform(3, 15), rng.uniform(1.2, 2.5)  # WISP
        return (lambda t: base + abs(rng.gauss(0, sd))), {"base": base, "sd": sd, "variant": variant}
    raise ValueError(kind)


def simulate(
    kind: str,
    seed: int,
    duration_s: float = 300.0,
    rate_hz: float = 5.0,
    synced: Optional[bool] = None,
    load: Optional[bool] = None,
    wifi: Optional[bool] = None,
    wwan: Optional[bool] = None,
    loss_pct: Optional[float] = None,
    variant: str = "",
) -> tuple[Observation, dict[str, Any]]:
    """One observation of a random link of `kind`, and the parameters drawn."""
    rng = random.Random(seed)
    access, drawn = make_access(kind, rng, variant)
    synced = rng.random() < 0.8 if synced is None else synced
    wifi = rng.random() < 0.3 if wifi is None else wifi
    load = rng.random() < 0.3 if load is None else load
    loss = rng.uniform(0, 1.0) if loss_pct is None else loss_pct
    clock_error = 0.0 if synced else rng.uniform(-3600, 3600)
    episodes = []
    if load:
        for _ in range(rng.randint(1, 3)):
            start = rng.uniform(0, max(1.0, duration_s - 20))
            episodes.append((start, start + rng.uniform(10, 60), rng.uniform(150, 1500)))
    gateway, isp = [], []
    n = int(duration_s * rate_hz)
    for i in range(n):
        rel = i / rate_hz
        t_true = T0 + rel
        shared, indep = _lan(rng, wifi)
        loaded = next((e for e in episodes if e[0] <= rel < e[1]), None)
        flagged = loaded is not None and rel >= loaded[0] + 1.0
        bloat = rng.uniform(0.5, 1.0) * loaded[2] if loaded else 0.0
        t = t_true + clock_error
        gateway.append(Sample(t, shared if rng.random() > 0.001 else None, not flagged))
        lost = rng.random() < loss / 100
        if kind == LEO and ((t_true - 12) % 15 < 0.6 or (t_true - 12) % 15 > 14.8):
            lost = lost or rng.random() < drawn.get("boundary_loss", 0.15)
        if kind == GEO and bloat:
            bloat *= 1.5  # GEO modems buffer deeply
        rtt = None if lost else shared + indep + access(t_true) + bloat
        isp.append(Sample(t, rtt, not flagged))
    promo: list[PromoTrial] = []
    trials = min(3, int(duration_s // 60))
    for _ in range(trials):
        if kind == CELLULAR and rng.random() < 0.8:
            penalty = rng.uniform(45, 400)
        else:
            penalty = rng.uniform(-2, 8) if kind != GEO else rng.uniform(-20, 30)
        following = tuple(access(T0) + _lan(rng, wifi)[0] for _ in range(10))
        promo.append(PromoTrial(following[0] + penalty, following))
    wwan = (kind == CELLULAR and rng.random() < 0.4) if wwan is None else wwan
    iface = InterfaceFacts("wwan0", "wwan", "qmi_wwan", 519) if wwan else InterfaceFacts("eth0", "", "bcmgenet", 1)
    obs = Observation(
        gateway=tuple(gateway),
        isp=tuple(isp),
        clock_synced=synced,
        promo=tuple(promo),
        interface=iface,
    )
    drawn.update(synced=synced, wifi=wifi, load=load, loss_pct=loss, duration_s=duration_s)
    return obs, drawn


def prefix(obs: Observation, seconds: float) -> Observation:
    """The same observation cut after `seconds` (promotion trials run once per minute)."""
    if not obs.isp:
        return obs
    end = obs.isp[0].t + seconds
    return dataclasses.replace(
        obs,
        gateway=tuple(s for s in obs.gateway if s.t < end),
        isp=tuple(s for s in obs.isp if s.t < end),
        promo=obs.promo[: int(seconds // 60)],
    )
