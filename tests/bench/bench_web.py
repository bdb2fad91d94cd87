"""`netprobe web` against 10,000 nodes with 30 days of readings, on SQLite and PostgreSQL.

The fleet: 10,000 nodes in the 15 kecamatan, each with a public-target and a gateway
reading every 2 hours for 30 days (7.2 million rows), a throughput test a day and a
link reading a day; one node ("the bench node") reads every minute, three targets,
like a real one (130,000 rows), so its node page reads what a real node page reads.
Rows go in with bulk SQL (executemany / COPY); the aggregates the collector keeps
(nodes, latest, usage) are written the same way, as the collector would have left them.

Measured: the rollup's first build (the web does it once, in the background), one
background refresh, then each page's server time (App.handle, median of 5) and its
size, raw and gzipped. Targets: the overview under 500 kB and under 1 s.
Run: make bench, or .venv/bin/python -m pytest tests/bench/bench_web.py -s -o python_files='bench_*.py'
"""

from __future__ import annotations

import gzip
import io
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from agent.collector.settings import parse_collector_config
from agent.collector.store import open_store
from agent.collector.store.base import READING_COLUMNS, month_of
from agent.collector.web import rollup
from agent.collector.web.server import App, Request
from tests.fixtures.collector import split_pg
from tests.web.fleet import KECAMATAN, LINKS, ORDER

N_NODES = 10_000
DAYS = 30
STEP = 7200.0
BENCH_NODE = "muba-sekayu-bench-01"


def node_ids() -> list[tuple[str, str, str, float, float, str]]:
    rng = random.Random(1)
    kecs = sorted(KECAMATAN)
    out = []
    for i in range(N_NODES):
        kec = kecs[i % len(kecs)]
        lat, lon, desas = KECAMATAN[kec]
        desa = f"{desas[i % 3]} {i // 45}"
        out.append(
            (f"muba-n{i:05d}", kec, desa, lat + rng.uniform(-0.2, 0.2), lon + rng.uniform(-0.2, 0.2), ORDER[i % 4])
        )
    return out


def rows(now: float) -> Any:
    """Readings as READING_COLUMNS tuples, generated lazily."""
    start = now - DAYS * 86400
    fields_ok = json.dumps({"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_p50_ms": 41.0, "rtt_p90_ms": 55.0})
    fields_gw = json.dumps({"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_p50_ms": 1.1})
    fields_down = json.dumps({"sent": 5, "received": 0, "loss_pct": 100.0})
    for i, (node, _, _, _, _, link) in enumerate(node_ids()):
        dark_from = now - 8 * 3600 if i % 20 == 0 else None  # 5 % of nodes reach only their gateway now
        seq = 0
        t = start + (i % 60) * 60.0
        while t < now:
            ok = dark_from is None or t < dark_from
            for target, f, good in (("gateway", fields_gw, True), ("1.1.1.1", fields_ok if ok else fields_down, ok)):
                seq += 1
                yield (f"{node}-{seq}", node, seq, "icmp", target, t, t, True, False, t - start, "b1", 900.0, good,
                       None if good else "timeout", None, f, t + 5)  # fmt: skip
            if seq % 24 == 2:
                seq += 1
                tput = json.dumps(
                    {"download_mbps": LINKS[link][3], "upload_mbps": LINKS[link][3] / 4, "bytes_used": 4e7}
                )
                yield (f"{node}-{seq}", node, seq, "throughput", "http://speed", t + 60, t + 60, True, False, 0.0, "b1",
                       9000.0, True, None, None, tput, t + 65)  # fmt: skip
                seq += 1
                yield (f"{node}-{seq}", node, seq, "link", "uplink", t + 90, t + 90, True, False, 0.0, "b1", 9000.0,
                       True, None, None, json.dumps({"link_type": link, "confidence": 0.9}), t + 95)  # fmt: skip
            t += STEP
    seq = 0
    t = start
    while t < now:  # the bench node: three targets a minute
        for target in ("gateway", "1.1.1.1", "8.8.8.8"):
            seq += 1
            yield (f"{BENCH_NODE}-{seq}", BENCH_NODE, seq, "icmp", target, t, t, True, False, t - start, "b1", 900.0,
                   True, None, None, fields_gw if target == "gateway" else fields_ok, t + 5)  # fmt: skip
        t += 60.0


def aggregates(store: Any, now: float) -> None:
    """nodes, latest and usage as the collector's write path leaves them."""
    site = {i[0]: {"kabupaten": "Musi Banyuasin", "kecamatan": i[1], "desa": i[2], "lat": i[3], "lon": i[4],
                   "operator": LINKS[i[5]][0], "contract_mbps": str(LINKS[i[5]][1])} for i in node_ids()}  # fmt: skip
    site[BENCH_NODE] = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Bench", "lat": -2.9, "lon": 103.85,
                        "operator": "telkom", "contract_mbps": "20"}  # fmt: skip
    with store._transaction() as cur:
        store._many(
            cur,
            "INSERT INTO nodes (node, kabupaten, kecamatan, desa, lat, lon, site, first_seen, last_seen, last_ts, "
            "seq_min, seq_max, seq_count) SELECT node, '', '', '', NULL, NULL, NULL, MIN(ts), MAX(received), MAX(ts), "
            "MIN(seq), MAX(seq), COUNT(seq) FROM readings WHERE node = ? GROUP BY node",
            [(n,) for n in site],
        )
        store._many(
            cur,
            "UPDATE nodes SET kabupaten = ?, kecamatan = ?, desa = ?, lat = ?, lon = ?, site = ? WHERE node = ?",
            [
                ("Musi Banyuasin", s["kecamatan"], s["desa"], s["lat"], s["lon"], json.dumps(s), n)
                for n, s in site.items()
            ],
        )
        cur.execute(
            "INSERT INTO latest SELECT r.node, r.measurement, r.target, r.ts, r.ok, r.error_code, r.fields FROM readings r "
            "JOIN (SELECT node, measurement, target, MAX(ts) AS ts FROM readings WHERE ts > "
            f"{now - 2 * 86400} GROUP BY node, measurement, target) m ON m.node = r.node AND m.measurement = "
            "r.measurement AND m.target = r.target AND m.ts = r.ts"
        )
        store._many(cur, "INSERT INTO usage VALUES (?, ?, ?)", [(n, month_of(now), 120_000_000) for n in site])


def fill_sqlite(path: Path, now: float) -> None:
    store = open_store(path=str(path))
    store.conn.execute("DROP INDEX IF EXISTS readings_unsynced")
    with store._transaction() as cur:
        cur.executemany(f"INSERT INTO readings ({READING_COLUMNS}) VALUES ({', '.join('?' * 17)})", rows(now))
    aggregates(store, now)
    store.close()


def fill_pg(dsn: str, schema: str, now: float) -> None:
    store = open_store(dsn=dsn, pg_schema=schema)
    conn = store._connect()  # type: ignore[attr-defined]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS readings_unsynced")
        with cur.copy(f"COPY readings ({READING_COLUMNS}) FROM STDIN") as copy:
            for row in rows(now):
                copy.write_row(row)
        cur.execute("ANALYZE readings")
    aggregates(store, now)
    store.close()


def measure(app: App, target: str) -> tuple[float, int, int]:
    times, body = [], b""
    for _ in range(5):
        t0 = time.perf_counter()
        resp = app.handle(Request("GET", target, {}))
        times.append(time.perf_counter() - t0)
        assert resp.status == 200, (target, resp.body[:300])
        body = resp.body
    return statistics.median(times), len(body), len(gzip.compress(body, 6))


@pytest.mark.slow
@pytest.mark.timeout(3600)  # making 7 million rows and the first rollup take minutes
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_web(backend: str, tmp_path: Path, request: Any) -> None:
    now = time.time()
    t0 = time.perf_counter()
    if backend == "sqlite":
        db = tmp_path / "c.db"
        fill_sqlite(db, now)
        store_cfg: dict[str, Any] = {"path": str(db)}
    else:
        dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
        fill_pg(dsn, schema, now)
        store_cfg = {"dsn": dsn, "pg_schema": schema}
    made = time.perf_counter() - t0
    cfg = parse_collector_config({"store": store_cfg, "fleet": {"interval_s": 7200.0}, "sla": {"evidence_s": 7500.0}})

    def factory() -> Any:
        return open_store(cfg.store.dsn, cfg.store.path, cfg.store.pg_schema, readonly=True)

    app = App(cfg, factory, clock=lambda: now)
    store = factory()
    app.rollup = rollup.Rollup(store, cfg.sla.evidence_s, cfg.web.history_days)
    t0 = time.perf_counter()
    app.rollup.catch_up(now)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    app.refresh(store)
    refresh = time.perf_counter() - t0
    count = store.count()
    out = io.StringIO()
    out.write(f"\n{backend}: {count:,} readings, {N_NODES + 1:,} nodes; made in {made:.0f} s; first rollup {built:.0f} s; "
              f"a background refresh {refresh:.2f} s\n")  # fmt: skip
    results = {}
    for name, target in (("overview", "/"), ("kecamatan", "/kecamatan/Sekayu"), ("node 24 h", f"/node/{BENCH_NODE}"),
                         ("node 7 d", f"/node/{BENCH_NODE}?range=7d"), ("node 30 d", f"/node/{BENCH_NODE}?range=30d"),
                         ("sla", "/sla"), ("metrics", "/metrics")):  # fmt: skip
        median, raw, gz = measure(app, target)
        results[name] = (median, raw, gz)
        out.write(f"  {name:<10} {median * 1000:7.0f} ms  {raw / 1000:7.0f} kB  ({gz / 1000:.0f} kB gzip)\n")
    print(out.getvalue())
    store.close()
    app.pool.close()
    assert results["overview"][1] < 500_000, "the overview must weigh under 500 kB"
    assert results["overview"][0] < 1.0, "the overview must render in under 1 s"
    assert results["node 30 d"][0] < 1.0, "a node page must render in under 1 s"
