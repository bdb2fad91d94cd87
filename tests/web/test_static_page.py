"""Issue 16's bugs in what `netprobe web` shares with the static page (`netprobe fleet --html`).

A desa that reaches only its gateway is dark: its badge and its dot on the map are red,
never the green of online. A node's link type comes from its link look, which runs every
4 hours: an hour-old window must not hide it.
"""

from __future__ import annotations

import re
import time

from agent.collector import fleet
from agent.collector.htmlview import render_html


def row(node: str, measurement: str, target: str, ok: bool, ago: float, now: float, **fields: object) -> dict:
    return {"node": node, "measurement": measurement, "target": target, "ts": now - ago, "ok": ok, "fields": fields}


def test_a_gateway_only_desa_wears_red_on_the_static_page_too() -> None:
    now = time.time()
    nodes = [{"node": n, "kecamatan": "Lais", "desa": n, "lat": -2.6, "lon": 104.0 + k / 10, "last_seen": now - 30}
             for k, n in enumerate(("gw-only", "fine"))]  # fmt: skip
    latest = [
        row("gw-only", "icmp", "gateway", True, 30, now, loss_pct=0.0, rtt_p50_ms=1.0),
        row("gw-only", "icmp", "1.1.1.1", False, 30, now, loss_pct=100.0),
        row("fine", "icmp", "1.1.1.1", True, 30, now, loss_pct=0.0, rtt_p50_ms=20.0),
    ]
    views = fleet.node_views(nodes, latest, {}, now)
    kecs = fleet.kecamatan_views(views)
    for lang, words in (("en", "dark: gateway only"), ("id", "gelap: hanya gateway")):
        html = render_html(views, kecs, fleet.totals(kecs), {}, now, lang)
        badge = re.search(r'data-node="gw-only".*?<span class="state (state-[a-z_]+)">([^<]+)</span>', html)
        assert badge and badge.group(1) == "state-gateway_only" and badge.group(2) == words, badge
        assert ".state-gateway_only{background:#b71c1c}" in html
        dot = re.search(r'<circle class="map-node state-online" data-node="gw-only"[^>]*fill="(#[0-9a-f]+)"', html)
        assert dot and dot.group(1) == "#b71c1c"
        fine = re.search(r'data-node="fine"[^>]*fill="(#[0-9a-f]+)"', html)
        assert fine and fine.group(1) == "#2e7d32"


def test_the_link_type_of_a_four_hourly_link_look_is_not_lost_after_an_hour() -> None:
    now = time.time()
    node = {"node": "n1", "kecamatan": "Lais", "desa": "Teluk", "last_seen": now - 30}
    latest = [
        row("n1", "icmp", "1.1.1.1", True, 30, now, loss_pct=0.0, rtt_p50_ms=600.0),
        row("n1", "link", "uplink", True, 3 * 3600, now, link_type="geo", confidence=0.9),
        row("n1", "throughput", "http://speed", True, 5 * 3600, now, download_mbps=7.5, upload_mbps=1.0),
    ]
    view = fleet.node_view(node, latest, 0, now, fleet.Policy(300.0, 3.0))
    assert view.link_type == "geo" and view.download_mbps == 7.5
