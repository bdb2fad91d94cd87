"""The regency sees each node's own traffic against its plan: fleet view, `netprobe fleet`, the HTML page, the web."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent.collector import fleet
from agent.collector.htmlview import node_table
from agent.collector.settings import parse_collector_config
from agent.collector.store import open_store
from agent.collector.web import rollup
from agent.collector.web.server import App, Request
from agent.reading.validate import Record

NODE = "muba-sekayu-balai-agung-01"
SITE = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung", "plan_mb": "1000"}


def record(rid: str, seq: int, measurement: str, fields: dict[str, Any], ts: float) -> Record:
    return Record(rid, NODE, SITE, seq, measurement, "self", ts, True, 10.0, "b", 1.0, True, None, None, fields)


def store_with_usage(path: Path, now: float) -> None:
    store = open_store(path=str(path))
    usage = {"month_mb": 3.25, "day_mb": 0.1, "budget_mb": 10.0, "plan_mb": 1000.0, "level": "lean", "mb_report": 1.2}
    store.write(
        [record("u-1", 1, "usage", {**usage, "month_mb": 1.0, "level": "full"}, now - 2 * 86400),
         record("u-2", 2, "usage", usage, now - 7200),  # a day's Reading: older than the path window
         record("i-1", 3, "icmp", {"rtt_p50_ms": 600.0, "loss_pct": 0.0}, now - 60)],
        now=now,
    )  # fmt: skip
    store.close()


def test_the_fleet_view_takes_the_latest_usage_reading_against_the_plan(tmp_path: Path) -> None:
    now = time.time()
    store_with_usage(tmp_path / "c.db", now)
    store = open_store(path=str(tmp_path / "c.db"))
    (view,) = fleet.node_views(store.nodes(), store.latest(), {}, now)
    store.close()
    assert (view.data_mb, view.data_plan_mb, view.data_level) == (3.25, 1000.0, "lean")
    assert fleet.usage_text(view) == "3.2 / 1000 MB (0.3 %), lean"
    assert view.to_dict()["data_mb"] == 3.25  # in `netprobe fleet --json` and the web API
    assert "3.2 / 1000 MB (0.3 %), lean" in node_table([view], "en")


def test_without_a_plan_the_budget_is_the_yardstick_and_without_usage_nothing_is_made_up() -> None:
    row = {"node": NODE, "measurement": "usage", "target": "self", "ts": 1.0, "ok": True,
           "fields": {"month_mb": 2.0, "budget_mb": 10.0, "level": "full"}}  # fmt: skip
    view = fleet.node_view({"node": NODE}, [row], 0, 2.0, fleet.Policy())
    assert fleet.usage_text(view) == "2.0 / 10 MB (20.0 %)"
    bare = fleet.node_view({"node": NODE}, [], 0, 2.0, fleet.Policy())
    assert bare.data_mb is None and fleet.usage_text(bare) is None
    hostile = dict(row, fields={"month_mb": "lots", "plan_mb": float("inf"), "level": "\x1b[31mred"})
    odd = fleet.node_view({"node": NODE}, [hostile], 0, 2.0, fleet.Policy())
    assert odd.data_mb is None and odd.data_plan_mb is None and "\x1b" not in odd.data_level


def test_the_text_fleet_and_the_node_page_show_it(tmp_path: Path) -> None:
    from agent.cli.fleet import as_text, fleet_data

    now = time.time()
    path = tmp_path / "c.db"
    store_with_usage(path, now)
    cfg = parse_collector_config({"store": {"path": str(path)}, "web": {"lang": "en"}})
    store = open_store(path=str(path))
    assert "3.2 / 1000 MB (0.3 %), lean" in as_text(fleet_data(store, cfg, None, now), "en")
    store.close()
    app = App(cfg, lambda: open_store(path=str(path), readonly=True), None, clock=lambda: now)
    ro = open_store(path=str(path), readonly=True)
    app.rollup = rollup.Rollup(ro, cfg.sla.evidence_s, cfg.web.history_days)
    app.refresh(ro)
    page = app.handle(Request("GET", f"/node/{NODE}", {})).body.decode()
    assert 'id="agent-data"' in page and "3.2 / 1000 MB (0.3 %), lean" in page
    page_id = app.handle(Request("GET", f"/node/{NODE}?lang=id", {})).body.decode()
    assert "Lalu lintas node ini sendiri" in page_id
