"""`netprobe fleet` survives any stored value and never passes a node's text to the terminal as-is.

Issue 12, findings 3 and 11. Old or hand-edited rows are simulated by writing values straight
into the database (SQLite, and the PostgreSQL at 127.0.0.1:5432 when there is one).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import Store, open_store
from agent.reading.validate import Record, check_message
from tests.fixtures.collector import ROOT, collector_toml, reading, split_pg, topic_for

NODES = {
    "muba-sekayu-balai-agung-01": {"kabupaten": "Evil Regency", "kecamatan": "Babat Toman", "desa": "Balai Agung",
                                   "lat": -2.88, "lon": 103.85},
    "muba-lais-tanjung-agung-01": {"kabupaten": "Musi Banyuasin", "kecamatan": "Lais", "desa": "Tanjung Agung",
                                   "lat": -2.5, "lon": 104.1},
}  # fmt: skip
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"
HUGE = "9" * 400


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"path": str(tmp_path / "collector.db")}
    dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
    return {"dsn": dsn, "pg_schema": schema}


def filled(settings: dict[str, Any]) -> Store:
    """Good readings of two nodes: icmp, a link verdict and a throughput test each."""
    store = open_store(settings.get("dsn", ""), settings.get("path", ""), settings.get("pg_schema", "netprobe"))
    records = []
    for node, site in NODES.items():
        for seq, (measurement, fields) in enumerate(
            [
                ("icmp", {"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_p50_ms": 25.0}),
                ("link", {"link_type": "geo", "confidence": 0.9}),
                ("throughput", {"download_mbps": 20.0, "upload_mbps": 5.0, "bytes_used": 1000}),
            ],
            start=1,
        ):
            data = reading(node, seq, site=site, measurement=measurement, fields=fields)
            out = check_message(topic_for(data), json.dumps(data).encode())
            assert isinstance(out, Record), out
            records.append(out)
    store.write(records)
    return store


def vandalise(settings: dict[str, Any]) -> None:
    """What an old collector let in, or a hand edit left: infinities, 400 digits, text for numbers, escapes."""
    evil = "muba-sekayu-balai-agung-01"
    if settings.get("dsn"):
        import psycopg

        with psycopg.connect(settings["dsn"], autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{settings["pg_schema"]}"')
            conn.execute(
                "UPDATE nodes SET lat = 'Infinity', lon = '-Infinity', last_seen = 'NaN', desa = %s, kecamatan = %s, "
                "status_info = %s::jsonb WHERE node = %s",
                (f"Balai{ESCAPES}", f"Sekayu{ESCAPES}", '{"version": 1e400, "spool_depth": ' + HUGE + "}", evil),
            )
            conn.execute("UPDATE nodes SET lat = 1e30 WHERE node <> %s", (evil,))
            fields = '{"rtt_p50_ms": 1e999, "loss_pct": -1e999, "download_mbps": ' + HUGE + ', "confidence": 1e999}'
            conn.execute("UPDATE latest SET fields = %s::jsonb WHERE node = %s", (fields, evil))
            conn.execute(
                "UPDATE latest SET fields = %s::jsonb WHERE measurement = 'link'", (json.dumps({"link_type": ESCAPES}),)
            )
            conn.execute("UPDATE latest SET ts = 'NaN' WHERE measurement = 'throughput'")
            conn.execute("UPDATE readings SET ts = 'Infinity' WHERE measurement = 'link'")
            conn.execute("UPDATE readings SET fields = %s::jsonb WHERE measurement = 'icmp'", (fields,))
            conn.execute("UPDATE usage SET bytes = 9223372036854775807")
            conn.execute(
                "INSERT INTO rejects VALUES (%s, 9223372036854775807, %s, %s, 'NaN')", (ESCAPES, ESCAPES, ESCAPES)
            )
        return
    import sqlite3

    conn = sqlite3.connect(settings["path"], isolation_level=None)
    conn.execute(
        "UPDATE nodes SET lat = 9e999, lon = -9e999, last_seen = 'soon', seq_min = 'x', desa = ?, kecamatan = ?, "
        "status_info = '{not json' WHERE node = ?",
        (f"Balai{ESCAPES}", f"Sekayu{ESCAPES}", evil),
    )
    conn.execute("UPDATE nodes SET lat = 1e30 WHERE node <> ?", (evil,))
    fields = '{"rtt_p50_ms": 1e999, "loss_pct": -1e999, "download_mbps": ' + HUGE + ', "confidence": 1e999}'
    conn.execute("UPDATE latest SET fields = ? WHERE node = ?", (fields, evil))
    conn.execute("UPDATE latest SET fields = ? WHERE measurement = 'link'", (json.dumps({"link_type": ESCAPES}),))
    conn.execute("UPDATE latest SET ts = 'later' WHERE measurement = 'throughput'")
    conn.execute("UPDATE latest SET ts = 9e999 WHERE measurement = 'icmp' AND node <> ?", (evil,))
    conn.execute("UPDATE readings SET ts = 'abc' WHERE measurement = 'link'")
    conn.execute("UPDATE readings SET fields = ? WHERE measurement = 'icmp'", (fields,))
    conn.execute("UPDATE readings SET fields = '[1, 2]' WHERE measurement = 'throughput'")
    conn.execute("UPDATE usage SET bytes = 9e999")
    conn.execute("INSERT INTO rejects VALUES (?, 'many', ?, ?, 'x')", (ESCAPES, ESCAPES, ESCAPES))
    conn.close()


def escapes_only(settings: dict[str, Any]) -> None:
    """A node that named its desa and link type with terminal escapes (control characters are valid text)."""
    evil = "muba-sekayu-balai-agung-01"
    store = open_store(settings.get("dsn", ""), settings.get("path", ""), settings.get("pg_schema", "netprobe"))
    with store._transaction() as cur:
        cur.execute(
            store.sql("UPDATE nodes SET desa = ?, kecamatan = ? WHERE node = ?"),
            (f"Balai{ESCAPES}", f"Babat{ESCAPES}", evil),
        )
        cur.execute(
            store.sql("UPDATE latest SET fields = ? WHERE measurement = 'link'"), (json.dumps({"link_type": ESCAPES}),)
        )
    store.close()


def fleet(
    tmp_path: Path, settings: dict[str, Any], *args: str, **fleet_settings: Any
) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "collector.toml"
    conf.write_text(collector_toml("mqtt://127.0.0.1:1", settings, fleet=fleet_settings))
    return subprocess.run(
        [sys.executable, "-m", "agent", "fleet", "-c", str(conf), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def no_constants(name: str) -> Any:
    raise ValueError(f"{name} in the JSON output")


def test_the_report_survives_any_stored_value(tmp_path: Path, settings: dict[str, Any]) -> None:
    filled(settings).close()
    vandalise(settings)
    text = fleet(tmp_path, settings)
    assert text.returncode == 0 and "Traceback" not in text.stderr, text.stderr
    assert "muba-lais-tanjung-agung-01" in text.stdout and "muba-sekayu-balai-agung-01" in text.stdout

    out = fleet(tmp_path, settings, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout, parse_constant=no_constants)  # strict JSON: no NaN or Infinity
    views = {n["node"]: n for n in data["nodes"]}
    evil = views["muba-sekayu-balai-agung-01"]
    assert (evil["lat"], evil["lon"], evil["latency_p50_ms"], evil["download_mbps"]) == (None, None, None, None)
    assert views["muba-lais-tanjung-agung-01"]["lat"] is None  # 1e30 is on no globe

    page = tmp_path / "fleet.html"
    html = fleet(tmp_path, settings, "--html", str(page))
    assert html.returncode == 0 and "Traceback" not in html.stderr, html.stderr
    written = page.read_text()
    assert "<svg" in written and "\x1b" not in written and "\x07" not in written


def test_terminal_escapes_from_nodes_never_reach_the_terminal(tmp_path: Path, settings: dict[str, Any]) -> None:
    filled(settings).close()
    escapes_only(settings)
    text = fleet(tmp_path, settings)
    assert text.returncode == 0, text.stderr
    assert "\x1b" not in text.stdout and "\x07" not in text.stdout
    assert "\\x1b]0;pwned\\x07" in text.stdout  # shown, not obeyed
    kecamatan = fleet(tmp_path, settings, "--kecamatan", "nowhere")
    assert kecamatan.returncode == 64 and "\x1b" not in kecamatan.stderr


def test_the_title_names_the_collectors_kabupaten_never_a_nodes(tmp_path: Path, settings: dict[str, Any]) -> None:
    filled(settings).close()  # the first node claims kabupaten "Evil Regency"
    text = fleet(tmp_path, settings)
    assert text.returncode == 0, text.stderr
    assert "Musi Banyuasin" in text.stdout.splitlines()[0] and "Evil" not in text.stdout
    page = tmp_path / "fleet.html"
    assert fleet(tmp_path, settings, "--html", str(page), kabupaten="Kabupaten Uji").returncode == 0
    assert "<title>Kabupaten Uji" in page.read_text() or "Kabupaten Uji" in page.read_text().split("</title>")[0]
    assert "Evil" not in page.read_text()
    out = fleet(tmp_path, settings, "--json", kabupaten="Kabupaten Uji")
    assert json.loads(out.stdout)["kabupaten"] == "Kabupaten Uji"
