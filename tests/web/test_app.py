"""`netprobe web`'s policy without a socket: pages, auth, bounded input, escaping, /metrics against /api.

The App is the real one over a real SQLite database holding the realistic fleet
of tests/web/fleet.py; only the HTTP server around it is left out (the browser
tests run that).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

import pytest

from agent.collector.settings import parse_collector_config
from agent.collector.store import open_store
from agent.collector.web import rollup
from agent.collector.web.html import visible
from agent.collector.web.server import CSP, App, Auth, Request, Response
from agent.reading.validate import Record
from tests.web import fleet

EVIL = "muba-sekayu-evil-01"
EVIL_DESA = '<script>alert("x")</script>\x1b[31mRED\x1b[0m & "quoted"'
EVIL_KEC = "Sekayu"


def config(path: Path, maintenance: Sequence[dict[str, Any]] = (), **web: Any) -> Any:
    return parse_collector_config(
        {"store": {"path": str(path)}, "fleet": {"interval_s": 600.0}, "sla": {"evidence_s": 3900.0},
         "web": {"lang": "en", **web}, "maintenance": list(maintenance)}
    )  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, float, list[fleet.Spec]]]:
    path = tmp_path_factory.mktemp("web") / "c.db"
    now = time.time()
    store = open_store(path=str(path))
    specs = fleet.fill(store, now)
    site = {"kecamatan": EVIL_KEC, "desa": EVIL_DESA, "lat": -2.9, "lon": 103.9, "operator": "<b>op</b>"}
    store.write(
        [Record("evil-1", EVIL, site, 1, "icmp", "1.1.1.1", now - 60, True, 10.0, "b", 1.0, True, None, None,
                {"rtt_p50_ms": 30.0, "loss_pct": 0.0}),
         Record("evil-2", EVIL, site, 2, "link", "uplink", now - 50, True, 11.0, "b", 1.0, True, None, None,
                {"link_type": "<i>fiber</i>\x1b]0;title\x07", "confidence": 0.5})],
        now=now,
    )  # fmt: skip
    store.close()
    yield path, now, specs


def make_app(
    path: Path, now: float, auth: Optional[Auth] = None, maintenance: Sequence[dict[str, Any]] = (), **web: Any
) -> App:
    cfg = config(path, maintenance, **web)
    app = App(cfg, lambda: open_store(path=str(path), readonly=True), auth, clock=lambda: now)
    store = open_store(path=str(path), readonly=True)
    app.rollup = rollup.Rollup(store, cfg.sla.evidence_s, cfg.web.history_days)
    app.refresh(store)
    return app


@pytest.fixture(scope="module")
def app(db: tuple[Path, float, list[fleet.Spec]]) -> App:
    path, now, _ = db
    return make_app(path, now)


def get(app: App, target: str, **headers: str) -> Response:
    return app.handle(Request("GET", target, {k.lower(): v for k, v in headers.items()}))


PAGES = ["/", "/kecamatan/Bayung%20Lencir", "/node/muba-sekayu-balai-agung-01", "/node/muba-sekayu-balai-agung-01?range=7d",
         "/node/muba-lalan-bumi-agung-01?range=30d", "/sla", "/sla?month=2026-10"]  # fmt: skip
OTHERS = ["/metrics", "/api/overview", "/api/kecamatan/Sekayu", "/api/node/muba-sekayu-balai-agung-01?range=30d",
          "/api/sla", "/api/sla?format=csv", "/api/sla?format=html", "/healthz", "/static/web.css", "/static/icon.svg"]  # fmt: skip


@pytest.mark.parametrize("lang", ["en", "id"])
def test_every_page_answers_with_the_policy_headers_and_no_inline_script_or_style(app: App, lang: str) -> None:
    for page in PAGES:
        resp = get(app, page + ("&" if "?" in page else "?") + f"lang={lang}")
        assert resp.status == 200, (page, resp.body[:300])
        html = resp.body.decode()
        assert f'<html lang="{lang}"' in html
        assert "<script" not in html and "<style" not in html and " style=" not in html, page
        assert not re.search(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", html), page
    for other in OTHERS:
        assert get(app, other).status == 200, other


def test_the_policy_is_strict() -> None:
    assert "default-src 'self'" in CSP and "script-src 'none'" in CSP and "report-uri /csp-report" in CSP
    assert "unsafe-inline" not in CSP


def test_a_dark_desa_never_wears_green(app: App, db: tuple[Path, float, list[fleet.Spec]]) -> None:
    _, _, specs = db
    html = get(app, "/").body.decode()
    css = get(app, "/static/web.css").body.decode()
    for s in fleet.by_kind(specs, "gateway_only"):
        row = re.search(rf'<tr class="dark" data-node="{s.node}">.*?</tr>', html)
        assert row and 'data-state="gateway_only"' in row.group(), s.node
        assert re.search(rf'class="node st-gateway_only" data-node="{s.node}"', html), s.node
    for state in ("gateway_only", "offline", "silent"):
        colour = re.search(rf"\.state-{state}{{background:(#[0-9a-f]+)}}", css)
        assert colour and colour.group(1) in ("#b71c1c", "#c62828", "#ef6c00"), state  # red or amber
    assert "dark: gateway only" in html and "online · gateway only" not in html
    counts = {
        s: int(re.search(rf'id="count-{s}">.*?<b>(\d+)</b>', html).group(1))
        for s in ("gateway_only", "offline", "silent")
    }  # type: ignore[union-attr]
    assert counts == {"gateway_only": 3, "offline": 2, "silent": 2}


def test_node_page_shows_history_dark_periods_link_changes_contract_and_verdict(app: App, db: Any) -> None:
    _, _, specs = db
    cut = fleet.by_kind(specs, "power_cut")[0].node
    html = get(app, f"/node/{cut}?range=7d").body.decode()
    assert 'class="shade-off"' in html and 'class="seg-off"' in html  # the power cut, shaded
    gap = fleet.by_kind(specs, "gap")[0].node
    assert 'class="shade-unknown"' in get(app, f"/node/{gap}?range=7d").body.decode()
    changed = fleet.by_kind(specs, "link_change")[0].node
    page = get(app, f"/node/{changed}?range=30d").body.decode()
    assert re.search(r"<li>[^<]*: geo → leo</li>", page) and 'class="link-change"' in page
    dark = fleet.by_kind(specs, "gateway_only")[0].node
    page = get(app, f"/node/{dark}").body.decode()
    assert 'data-verdict="down"' in page and 'data-check="internet"' in page and "check-FAIL" in page
    assert 'class="contract"' in page and 'class="band"' in page and 'class="p50"' in page
    data = json.loads(get(app, f"/api/node/{dark}?range=24h").body)
    assert data["verdict"] == "down" and data["availability"]["down_s"] > 5 * 3600


def test_a_node_page_leaves_the_maintenance_windows_covering_it_out_of_availability(db: Any) -> None:
    path, now, specs = db
    dark = fleet.by_kind(specs, "gateway_only")[0].node  # down for hours: two of them were announced
    stamp = "%Y-%m-%dT%H:%M:%S+00:00"
    window = {"name": "ISP works", "nodes": [dark], "start": time.strftime(stamp, time.gmtime(now - 3 * 3600)),
              "end": time.strftime(stamp, time.gmtime(now - 3600))}  # fmt: skip
    before = json.loads(get(make_app(path, now), f"/api/node/{dark}?range=24h").body)["availability"]
    after = json.loads(get(make_app(path, now, maintenance=[window]), f"/api/node/{dark}?range=24h").body)
    assert after["availability"]["maintenance_s"] == pytest.approx(7200, abs=1)
    assert after["availability"]["down_s"] == pytest.approx(before["down_s"] - 7200, abs=1)
    assert "maintenance 120 min" in get(make_app(path, now, maintenance=[window]), f"/node/{dark}").body.decode()


def test_without_credentials_every_page_is_401_with_them_200(db: tuple[Path, float, list[fleet.Spec]]) -> None:
    path, now, _ = db
    secured = make_app(path, now, Auth("regency", "s3cret pass", "tok-123"))
    basic = "Basic " + base64.b64encode(b"regency:s3cret pass").decode()
    wrong = "Basic " + base64.b64encode(b"regency:nope").decode()
    for target in [*PAGES, *OTHERS, "/no/such/page"]:
        resp = get(secured, target)
        assert resp.status == 401 and resp.headers.get("WWW-Authenticate", "").startswith("Basic"), target
        assert get(secured, target, Authorization=wrong).status == 401, target
        assert get(secured, target, Authorization="Bearer tok-12").status == 401, target
        want = 404 if target == "/no/such/page" else 200
        assert get(secured, target, Authorization=basic).status == want, target
        assert get(secured, target, Authorization="Bearer tok-123").status == want, target


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/?lang=fr", 400), ("/node/muba-sekayu-balai-agung-01?range=1y", 400), ("/sla?month=2026-13", 400),
        ("/sla?month=x", 400), ("/?lang=en&lang=id", 400), ("/" + "a" * 600, 414), ("/?" + "x=1&" * 400, 414),
        ("/node/NOT_A_NODE", 404), ("/node/muba-unknown-01", 404), ("/kecamatan/Atlantis", 404),
        ("/kecamatan/%ff%fe", 400), ("/api/node/muba-unknown-01", 404), ("/api/nothing", 404), ("/etc/passwd", 404),
        ("/static/../../etc/passwd", 404), ("/api/sla?month=2099-01", 400), ("/?utm_source=x", 200),
        ("/node/muba-sekayu-balai-agung-01?range=", 400), ("relative", 400),
    ],
)  # fmt: skip
def test_bad_requests_get_4xx_never_a_traceback(app: App, target: str, status: int) -> None:
    resp = get(app, target)
    assert resp.status == status, resp.body[:300]
    assert b"Traceback" not in resp.body and b'File "' not in resp.body


def test_other_methods_are_405_and_a_csp_report_is_counted(app: App) -> None:
    resp = app.handle(Request("POST", "/", {}, b"x=1"))
    assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD"
    before = app.csp_count
    report = {"csp-report": {"blocked-uri": "https://tiles.example/1.png", "violated-directive": "img-src"}}
    assert app.handle(Request("POST", "/csp-report", {}, json.dumps(report).encode())).status == 204
    assert app.handle(Request("POST", "/csp-report", {}, b"\xff not json")).status == 204
    assert app.csp_count == before + 2 and app.csp_reports[-2]["blocked-uri"] == "https://tiles.example/1.png"


def test_node_strings_with_markup_or_terminal_escapes_show_as_text(app: App) -> None:
    for target in ("/", f"/kecamatan/{EVIL_KEC}", f"/node/{EVIL}"):
        html = get(app, target).body.decode()
        assert "<script>alert" not in html and "\x1b" not in html and "<i>fiber" not in html, target
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;\\x1b[31mRED" in html, target
    assert "&lt;i&gt;fiber&lt;/i&gt;\\x1b]0;title\\x07" in get(app, f"/node/{EVIL}").body.decode()
    data = json.loads(get(app, f"/api/node/{EVIL}").body)
    assert data["node"]["desa"] == EVIL_DESA and data["site"]["operator"] == "<b>op</b>"
    metrics = get(app, "/metrics").body.decode()
    line = next(x for x in metrics.splitlines() if x.startswith("netprobe_node_up{") and EVIL in x)
    assert '\\"x\\"' in line and "\x1b" not in line


def test_metrics_parse_and_equal_the_api(app: App) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    text = get(app, "/metrics").body.decode()
    api = json.loads(get(app, "/api/overview").body)
    samples: dict[str, dict[str, Any]] = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[s.labels.get("node", "") + "|" + s.labels.get("state", "")] = (
                s.labels,
                s.value,
            )
    nodes = api["nodes"]
    assert len(nodes) == 46
    for n in nodes:
        labels, up = samples["netprobe_node_up"][n["node"] + "|"]
        assert up == (0.0 if n["dark"] else 1.0) and labels["link_type"] == visible(n["link_type"], 256), n["node"]
        assert samples["netprobe_node_dark"][n["node"] + "|"][1] == (1.0 if n["dark"] else 0.0)
        assert samples["netprobe_node_state"][n["node"] + "|" + n["shown_state"]][1] == 1.0
        for metric, key, scale in (("netprobe_node_latency_p50_seconds", "latency_p50_ms", 1e-3),
                                   ("netprobe_node_loss_ratio", "loss_pct", 1e-2),
                                   ("netprobe_node_download_bits_per_second", "download_mbps", 1e6)):  # fmt: skip
            got = samples.get(metric, {}).get(n["node"] + "|")
            if n[key] is None:
                assert got is None, (metric, n["node"])
            else:
                assert got is not None and got[1] == pytest.approx(n[key] * scale), (metric, n["node"])
        assert samples["netprobe_node_last_seen_timestamp_seconds"][n["node"] + "|"][1] == pytest.approx(n["last_seen"])
        assert samples["netprobe_node_readings_stored"][n["node"] + "|"][1] > 0
    assert samples["netprobe_bebas_blankspot_ratio"]["|"][1] == pytest.approx(api["totals"]["share_reachable"])


def test_odd_stored_values_do_not_break_a_page(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    store = open_store(path=str(path))
    now = time.time()
    site = {"kecamatan": "Lais", "desa": "Petaling", "lat": "north", "lon": 1e400, "contract_mbps": "fast"}
    store.write([Record("odd-1", "muba-lais-odd-01", site, 1, "icmp", "1.1.1.1", now - 30, True, 1.0, "b", 1.0, True,
                        None, None, {"rtt_p50_ms": "slow", "loss_pct": 10**400, "rtt_p90_ms": float("nan")}),
                 Record("odd-2", "muba-lais-odd-01", site, 2, "throughput", "x", now - 20, True, 2.0, "b", 1.0, True,
                        None, None, {"download_mbps": -1e308, "upload_mbps": True, "budget_month_mb": "lots"})],
                now=now)  # fmt: skip
    store.query("SELECT 1")
    store.close()
    odd = make_app(path, now)
    for target in ("/", "/kecamatan/Lais", "/node/muba-lais-odd-01", "/node/muba-lais-odd-01?range=30d", "/metrics",
                   "/api/overview", "/api/node/muba-lais-odd-01", "/sla"):  # fmt: skip
        assert get(odd, target).status == 200, target


def test_the_rollup_built_bit_by_bit_with_late_readings_equals_one_built_at_once(tmp_path: Path) -> None:
    now = 1_790_000_000.0
    rows = [Record(f"r{k}", "muba-lais-late-01", {"kecamatan": "Lais", "desa": "Teluk"}, k, "icmp", "1.1.1.1",
                   now - 5 * 86400 + k * 300, True, k * 300.0, "b1" if k < 700 else "b2", 1.0, k % 50 != 7, None, None,
                   {"rtt_p50_ms": 40.0 + k % 9, "loss_pct": 0.0 if k % 50 != 7 else 100.0})
            for k in range(1440) if not 600 <= k < 650 and not 690 <= k < 720]  # fmt: skip
    late = [r for r in rows if 400 <= r.seq <= 450]  # type: ignore[operator]
    first = [r for r in rows if r not in late]

    def built(path: Path, batches: list[list[Record]]) -> tuple[list[Any], list[Any]]:
        store = open_store(path=str(path))
        roll = rollup.Rollup(store, 600.0)
        for k, batch in enumerate(batches):
            store.write(batch, now=now + k * 200)
            roll.catch_up(now + k * 200 + 100)
        segs = store.query("SELECT start, stop, status, boot FROM web_segments ORDER BY start")
        hours = store.query("SELECT hour, n, n_up, p50, loss FROM web_hours ORDER BY hour")
        store.close()
        return segs, hours

    at_once = built(tmp_path / "a.db", [rows])
    bit_by_bit = built(tmp_path / "b.db", [first[:500], first[500:900], first[900:], late])
    assert at_once == bit_by_bit
    assert any(s[2] == "down" for s in at_once[0]) and len(at_once[1]) >= 100


@pytest.mark.postgres
@pytest.mark.slow
def test_postgresql_serves_the_same_views_as_sqlite(pg_dsn: str, tmp_path: Path) -> None:
    from tests.fixtures.collector import split_pg

    dsn, schema = split_pg(pg_dsn)
    now = time.time()
    lite, pg = open_store(path=str(tmp_path / "c.db")), open_store(dsn=dsn, pg_schema=schema)
    fleet.fill(lite, now)
    fleet.fill(pg, now)
    lite.close()
    pg.close()
    apps = {}
    for name, store_cfg, factory in (
        ("sqlite", {"path": str(tmp_path / "c.db")}, lambda: open_store(path=str(tmp_path / "c.db"), readonly=True)),
        ("postgresql", {"dsn": dsn, "pg_schema": schema}, lambda: open_store(dsn=dsn, pg_schema=schema)),
    ):
        cfg = parse_collector_config(
            {"store": store_cfg, "fleet": {"interval_s": 600.0}, "sla": {"evidence_s": 3900.0}}
        )
        app = App(cfg, factory, clock=lambda: now)
        store = factory()
        app.rollup = rollup.Rollup(store, cfg.sla.evidence_s, cfg.web.history_days)
        app.refresh(store)
        apps[name] = app
    node = fleet.by_kind(fleet.specs(), "power_cut")[0].node
    for target in ("/api/overview", f"/api/node/{node}?range=30d", "/api/sla?format=csv"):
        got = {name: get(app, target) for name, app in apps.items()}
        assert got["sqlite"].status == got["postgresql"].status == 200, target
        if target.endswith("csv"):
            assert got["sqlite"].body == got["postgresql"].body
            continue
        a, b = (json.loads(got[n].body) for n in ("sqlite", "postgresql"))
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True), target
    for target in PAGES:
        assert get(apps["postgresql"], target).status == 200, target
