"""The incident engine over 10,000 nodes and a day of Readings at the default schedule, generated in memory.

Run with `make bench` (or NETPROBE_BENCH_NODES / NETPROBE_BENCH_HOURS for a smaller run). Per node,
the default schedule: icmp to the gateway, 1.1.1.1 and 8.8.8.8 and tcp to 1.1.1.1:443 every 60 s;
two dns, one http and the host reading every 300 s; a link look every 6 h. Over the day: 3 % of the
nodes lose power for 20-120 min (back with a new boot), 3 % lose their uplink for 20-120 min
(their Readings spooled and replayed on return), 1 % flap for an hour, 2 % lose 20 % of their
packets for an hour, and one kecamatan's hub dies for 45 min. 15 configured groups (one per
kecamatan). The engine is evaluated every `PASS_S` (60 s) of simulated time, as the collector
would every `evaluate_every_s`; what is timed is `Engine.evaluate` (the pass), and separately the
feeding of Readings (`Engine.reading`). Memory: the process's RSS growth over the run, and the
engine's own count of intervals held.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import time
from typing import Any

import pytest

from agent.collector import fleet
from agent.collector.incidents.engine import Engine, Obs
from agent.collector.incidents.settings import GroupSettings, IncidentSettings

NODES = int(os.environ.get("NETPROBE_BENCH_NODES", "10000"))
HOURS = float(os.environ.get("NETPROBE_BENCH_HOURS", "24"))
KECAMATAN = (
    "Sekayu", "Lais", "Sungai Keruh", "Lawang Wetan", "Babat Toman", "Batanghari Leko", "Plakat Tinggi",
    "Sanga Desa", "Keluang", "Tungkal Jaya", "Bayung Lencir", "Lalan", "Babat Supat", "Sungai Lilin", "Jirak Jaya",
)  # fmt: skip
STEP_S = 60.0
PASS_S = 60.0
T0 = 1_780_000_000.0


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Plan:
    """Who is in trouble when, drawn once."""

    def __init__(self, rng: random.Random, span: float) -> None:
        nodes = list(range(NODES))
        rng.shuffle(nodes)
        n = NODES // 100

        def windows(ids: list[int], low: float, high: float) -> dict[int, tuple[float, float]]:
            out = {}
            for i in ids:
                start = T0 + rng.uniform(0.05, 0.8) * span
                out[i] = (start, start + rng.uniform(low, high))
            return out

        self.power = windows(nodes[: 3 * n], 1200, 7200)
        self.uplink = windows(nodes[3 * n : 6 * n], 1200, 7200)
        self.flap = windows(nodes[6 * n : 7 * n], 3600, 3600)
        self.lossy = windows(nodes[7 * n : 9 * n], 3600, 3600)
        self.hub_kecamatan = 3
        start = T0 + 0.5 * span
        self.hub = (start, start + 2700)

    @staticmethod
    def inside(w: Any, t: float) -> bool:
        return w is not None and w[0] <= t < w[1]


def feed_only(nodes: int = 400, minutes: int = 60) -> float:
    """Microseconds per `Engine.reading` for Readings made beforehand (the pass's other half)."""
    engine = Engine(IncidentSettings())
    fields = {"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_p50_ms": 24.0}
    made = [
        Obs(f"n{i}", T0 + 60.0 * m + j, kind, target, True, fields, "b1", 100.0 + 60.0 * m, True, None, None, T0)
        for m in range(minutes)
        for i in range(nodes)
        for j, (kind, target) in enumerate((("icmp", "gateway"), ("icmp", "1.1.1.1"), ("icmp", "8.8.8.8"),
                                           ("tcp", "1.1.1.1:443")))
    ]  # fmt: skip
    start = time.perf_counter()
    for o in made:
        engine.reading(o)
    return 1e6 * (time.perf_counter() - start) / len(made)


@pytest.mark.timeout(7200)
def test_bench_incident_engine_over_a_day_of_a_10000_node_fleet() -> None:
    rng = random.Random(13)
    span = HOURS * 3600.0
    plan = Plan(rng, span)
    cfg = IncidentSettings(groups=[GroupSettings(name=f"hub-{k}", kecamatan=[k]) for k in KECAMATAN])
    gc.collect()
    rss0 = rss_mib()
    engine = Engine(cfg, fleet.Policy())
    names = [f"muba-{i:05d}" for i in range(NODES)]
    kec = [KECAMATAN[i % len(KECAMATAN)] for i in range(NODES)]
    boots = [f"b{i:07x}" for i in range(NODES)]
    booted = [T0 - 86400.0] * NODES
    for i, name in enumerate(names):
        site = {"kabupaten": "Musi Banyuasin", "kecamatan": kec[i], "desa": f"Desa {i}", "contract_mbps": "20"}
        engine.node({"node": name, "kecamatan": kec[i], "desa": f"Desa {i}", "site": site, "status": "online",
                     "last_seen": T0, "status_received": T0})  # fmt: skip
    ok_fields = {"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_p50_ms": 24.0}
    lossy_fields = {"sent": 5, "received": 4, "loss_pct": 20.0, "rtt_p50_ms": 30.0}
    gw_fields = {"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_p50_ms": 1.2}
    fail_fields = {"sent": 5, "received": 0, "loss_pct": 100.0}
    other = {"ms": 30.0}
    spool: dict[int, list[Obs]] = {}
    down: set[int] = set()
    readings = notices = 0
    made: dict[str, str] = {}
    feed_s = 0.0
    passes: list[float] = []
    slowest: list[tuple[float, float, int, int]] = []
    t = T0
    end = T0 + span
    next_pass = T0 + PASS_S
    while t < end:
        t += STEP_S
        t_feed = time.perf_counter()
        minute = int((t - T0) // STEP_S)
        for i in range(NODES):
            name = names[i]
            if Plan.inside(plan.power.get(i), t):
                if i not in down:
                    down.add(i)
                    engine.status(name, "offline", t + 90.0)
                continue
            if i in down and i in plan.power:  # power is back: a new boot
                down.discard(i)
                boots[i], booted[i] = f"r{i:07x}", t
                engine.status(name, "online", t)
            hub_down = kec[i] == KECAMATAN[plan.hub_kecamatan] and Plan.inside(plan.hub, t)
            cut = hub_down or Plan.inside(plan.uplink.get(i), t)
            flapping = Plan.inside(plan.flap.get(i), t) and (minute // 2) % 2 == 0
            public_ok = not (cut or flapping)
            pub = ok_fields if public_ok else fail_fields
            if public_ok and Plan.inside(plan.lossy.get(i), t):
                pub = lossy_fields
            boot, mono = boots[i], t - booted[i]
            batch = [
                Obs(name, t, "icmp", "gateway", True, gw_fields, boot, mono),
                Obs(name, t + 1, "icmp", "1.1.1.1", public_ok, pub, boot, mono),
                Obs(name, t + 2, "icmp", "8.8.8.8", public_ok, pub, boot, mono),
                Obs(name, t + 3, "tcp", "1.1.1.1:443", public_ok, pub, boot, mono),
            ]
            if minute % 5 == i % 5:
                batch += [
                    Obs(name, t + 5, "dns", "google.com", public_ok, other, boot, mono),
                    Obs(name, t + 6, "dns", "google.com@8.8.8.8", public_ok, other, boot, mono),
                    Obs(name, t + 7, "http", "https://www.google.com/generate_204", public_ok, other, boot, mono),
                    Obs(name, t + 8, "host", "self", True, other, boot, mono),
                ]
            if minute % 360 == i % 360:
                batch.append(Obs(name, t + 9, "link", "1.1.1.1", True, {"link_type": "fiber", "isp_hop": f"203.0.113.{i % 200}"}, boot, mono))  # fmt: skip
            if cut:  # spooled until the uplink returns
                spool.setdefault(i, []).extend(batch)
                if i not in down:
                    down.add(i)
                    engine.status(name, "offline", t + 90.0)
                continue
            if i in spool:  # back: the replay first
                engine.status(name, "online", t)
                for o in spool.pop(i):
                    engine.reading(o._replace(received=t))
                    readings += 1
                down.discard(i)
            for o in batch:
                engine.reading(o._replace(received=t + 10))
            readings += len(batch)
        feed_s += time.perf_counter() - t_feed
        if t >= next_pass:
            touched = sum(1 for st in engine.nodes.values() if st.touched)
            t_pass = time.perf_counter()
            result = engine.evaluate(t + 15)
            passes.append(time.perf_counter() - t_pass)
            slowest.append((passes[-1], (t - T0) / 3600.0, touched, len(result.changed)))
            next_pass += PASS_S
            for inc in result.changed:
                made[inc.id] = "upstream" if not inc.node else inc.kind
            notices += len(result.notices)
    gc.collect()
    rss1 = rss_mib()
    foot = engine.footprint()
    stored = len(engine.incidents)
    t_full = time.perf_counter()
    for st in engine.nodes.values():  # the worst case: every node re-evaluated from its oldest interval
        st.dirty_from = st.base
        st.touched = True
    engine.evaluate(end + 30)
    full_s = time.perf_counter() - t_full
    passes.sort()
    per_reading = feed_only()
    kinds = {k: sum(1 for v in made.values() if v == k) for k in ("dark", "upstream", "degraded")}
    print(f"\nincident engine: {NODES} nodes, {HOURS:g} h at the default schedule, a pass every {PASS_S:g} s")
    print(f"readings: {readings:,}, made and fed in {feed_s:.0f} s; Engine.reading alone {per_reading:.2f} us each")
    print(
        f"evaluation pass (all nodes with new data): median {1000 * statistics.median(passes):.0f} ms, "
        f"p95 {1000 * passes[int(0.95 * len(passes))]:.0f} ms, max {1000 * passes[-1]:.0f} ms over {len(passes)} passes"
    )
    for took, hour, touched, changed in sorted(slowest, reverse=True)[:3]:
        print(
            f"  slow pass: {1000 * took:.0f} ms at hour {hour:.2f}, {touched} nodes with new data, {changed} incidents changed"
        )
    print(f"a full re-evaluation of every node from its oldest interval: {1000 * full_s:.0f} ms")
    print(f"memory: RSS +{rss1 - rss0:.0f} MiB; intervals held {foot['intervals']:,}; incidents in memory {stored}")
    print(f"incidents: {kinds['dark']} dark (desa), {kinds['upstream']} upstream, {kinds['degraded']} degraded; "
          f"{notices} notices")  # fmt: skip
    assert statistics.median(passes) < 1.0
