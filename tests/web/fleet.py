"""A realistic fleet in a collector database: 45 nodes in the 15 kecamatan of Musi Banyuasin, 30 days.

Fiber, GEO, LEO and cellular links; dark ones (gateway only now), offline and
silent ones; a gap without evidence, a power cut (new boot after a silent
gap), a link change from GEO to LEO, throughput tests against the contract.
Written through the store's own `write`, as the collector writes it. Readings
every 10 minutes in the last day and hourly before (enough for every chart,
quick to make).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Optional

from agent.collector.store import Store
from agent.reading.validate import Record, Status

KECAMATAN = {  # kecamatan: (lat, lon, [desa])
    "Babat Supat": (-2.78, 104.05, ["Babat Banyuasin", "Sugi Raya", "Letang"]),
    "Babat Toman": (-2.60, 103.95, ["Babat", "Mangun Jaya", "Toman"]),
    "Batanghari Leko": (-2.85, 103.55, ["Sungai Angit", "Lubuk Bintialo", "Pangkalan Bulian"]),
    "Bayung Lencir": (-2.05, 103.65, ["Muara Merang", "Bayat Ilir", "Simpang Bayat"]),
    "Jirak Jaya": (-2.70, 103.35, ["Jirak", "Talang Simpang", "Bukit Sejahtera"]),
    "Keluang": (-2.50, 104.10, ["Keluang", "Sukajaya", "Dawas"]),
    "Lais": (-2.62, 104.02, ["Tanjung Agung", "Teluk", "Petaling"]),
    "Lalan": (-2.30, 104.35, ["Bumi Agung", "Sumber Agung", "Karang Agung"]),
    "Lawang Wetan": (-2.95, 103.95, ["Ulak Paceh", "Karang Ringin", "Kasmaran"]),
    "Plakat Tinggi": (-2.90, 104.20, ["Pinggap", "Lubuk Lancang", "Purwosari"]),
    "Sanga Desa": (-2.98, 103.80, ["Ngulak", "Keban", "Terusan"]),
    "Sekayu": (-2.89, 103.85, ["Balai Agung", "Kayuara", "Soak Baru"]),
    "Sungai Keruh": (-2.75, 103.70, ["Tebing Bulang", "Gajah Mati", "Jirak"]),
    "Sungai Lilin": (-2.45, 104.15, ["Sungai Lilin", "Bumi Kencana", "Linggosari"]),
    "Tungkal Jaya": (-2.20, 103.90, ["Peninggalan", "Sinar Tungkal", "Suka Makmur"]),
}
LINKS = {  # link type: (operator, contract Mbit/s, p50 ms, download Mbit/s)
    "fiber": ("telkom", 20, 18.0, 19.0),
    "geo": ("bakti-vsat", 10, 620.0, 7.5),
    "leo": ("starlink", 50, 45.0, 62.0),
    "cellular": ("telkomsel", 10, 70.0, 8.0),
}
ORDER = ("fiber", "geo", "leo", "cellular")
DAYS = 30


@dataclass(frozen=True)
class Spec:
    node: str
    kecamatan: str
    desa: str
    lat: float
    lon: float
    link: str
    kind: str = "ok"  # ok | gateway_only | offline | silent | gap | power_cut | link_change


def slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def specs() -> list[Spec]:
    out = []
    for i, (kec, (lat, lon, desas)) in enumerate(sorted(KECAMATAN.items())):
        for j, desa in enumerate(desas):
            link = ORDER[(i + j) % 4]
            node = f"muba-{slug(kec)}-{slug(desa)}-01"
            out.append(
                Spec(node, kec, desa, round(lat + 0.07 * j - 0.05, 4), round(lon + 0.06 * (j % 2) - 0.03 * j, 4), link)
            )
    special = {  # index into the list: what happens to that node
        2: "gateway_only", 17: "gateway_only", 31: "gateway_only",
        5: "offline", 40: "offline",
        9: "silent", 26: "silent",
        12: "gap", 20: "power_cut", 35: "link_change",
    }  # fmt: skip
    return [Spec(**{**s.__dict__, "kind": special.get(k, "ok")}) for k, s in enumerate(out)]


def _site(s: Spec) -> dict[str, Any]:
    operator, contract, _, _ = LINKS[s.link]
    return {"kabupaten": "Musi Banyuasin", "kecamatan": s.kecamatan, "desa": s.desa, "lat": s.lat, "lon": s.lon,
            "operator": operator, "contract_mbps": str(contract)}  # fmt: skip


def times(now: float) -> list[float]:
    """Hourly for 29 days, every 10 minutes in the last day."""
    start = now - DAYS * 86400
    hourly = [start + k * 3600 for k in range(int((DAYS - 1) * 24))]
    recent = [now - 86400 + k * 600 for k in range(144)]
    return hourly + recent


def fill(store: Store, now: float, seed: int = 7) -> list[Spec]:
    rng = random.Random(seed)
    all_specs = specs()
    ts_list = times(now)
    for s in all_specs:
        site = _site(s)
        records: list[Record] = []
        seq = 0
        boot = "boot-1"
        mono0 = now - DAYS * 86400 - 1000
        for idx, ts in enumerate(ts_list):
            age = now - ts
            hourly = idx < len(ts_list) - 144
            if s.kind == "silent" and age < 3 * 3600:
                continue
            if s.kind == "gap" and 5 * 86400 < age < 5 * 86400 + 6 * 3600:
                continue
            if s.kind == "power_cut" and 3 * 86400 < age < 3 * 86400 + 4 * 3600:
                continue
            if s.kind == "power_cut" and age <= 3 * 86400:
                boot, mono0 = "boot-2", now - 3 * 86400 - 120
            link = s.link
            if s.kind == "link_change":
                link = "geo" if age > 10 * 86400 else "leo"
            lat_ms = LINKS[link][2]
            public_ok = not (s.kind == "gateway_only" and age < 6 * 3600) and not (
                s.kind == "ok" and 12 * 86400 < age < 12 * 86400 + 2 * 3600 and s.link == "geo"  # a rain fade
            )
            diurnal = 1.0 + 0.25 * math.sin((ts % 86400) / 86400 * 2 * math.pi)
            for target in ("gateway", "1.1.1.1", "8.8.8.8"):
                seq += 1
                ok = True if target == "gateway" else public_ok
                if target == "gateway":
                    fields: dict[str, Any] = {
                        "sent": 5,
                        "received": 5,
                        "loss_pct": 0.0,
                        "rtt_p50_ms": 1.2,
                        "rtt_p90_ms": 2.0,
                    }
                elif ok:
                    v = lat_ms * diurnal * (1 + rng.uniform(-0.05, 0.05))
                    loss = rng.choice([0.0, 0.0, 0.0, 20.0]) if link in ("geo", "cellular") else 0.0
                    fields = {"sent": 5, "received": 5 - int(loss / 20), "loss_pct": loss, "rtt_p50_ms": round(v, 2),
                              "rtt_p90_ms": round(v * 1.3, 2)}  # fmt: skip
                else:
                    fields = {"sent": 5, "received": 0, "loss_pct": 100.0}
                records.append(
                    Record(f"{s.node}-{seq}", s.node, site, seq, "icmp", target, ts + (0 if target == "gateway" else 2),
                           True, ts - mono0, boot, 900.0, ok, None if ok else "timeout", None if ok else "no reply",
                           fields)
                )  # fmt: skip
            if (idx % 6 == 3 if hourly else idx % 36 == 3) and public_ok:  # a speed test every 6 hours
                seq += 1
                d = LINKS[link][3] * (0.8 + 0.3 * rng.random())
                records.append(
                    Record(f"{s.node}-{seq}", s.node, site, seq, "throughput", "http://speed.muba.example:8989", ts + 30,
                           True, ts - mono0 + 30, boot, 20000.0, True, None, None,
                           {"download_mbps": round(d, 2), "upload_mbps": round(d / 4, 2), "bytes_used": 40_000_000,
                            "budget_month_mb": 400.0})
                )  # fmt: skip
            if idx % 4 == 0 if hourly else idx % 6 == 0:  # the link look: 4-hourly, hourly in the last day
                seq += 1
                records.append(
                    Record(f"{s.node}-{seq}", s.node, site, seq, "link", "uplink", ts + 60, True, ts - mono0 + 60, boot,
                           5000.0, True, None, None, {"link_type": link, "confidence": 0.9})
                )  # fmt: skip
        for k in range(0, len(records), 2000):  # received as it was taken: a silent node's last_seen is old
            batch = records[k : k + 2000]
            store.write(batch, now=min(now, max(r.ts for r in batch) + 5))
        if s.kind == "offline":
            store.write([], [(Status(s.node, "offline", now - 600, {}), {})], now=now)
    return all_specs


def by_kind(all_specs: list[Spec], kind: str) -> list[Spec]:
    return [s for s in all_specs if s.kind == kind]


def find(all_specs: list[Spec], node: str) -> Optional[Spec]:
    return next((s for s in all_specs if s.node == node), None)
