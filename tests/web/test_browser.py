"""`netprobe web` as a person sees it: a real server process, headless Chromium, both languages.

Every page of the realistic fleet (tests/web/fleet.py) is loaded; the DOM is checked for
states and figures; screenshots are kept under the test's tmp dir (with
NETPROBE_DOCS_IMG=1 the overview and a node page are copied to docs/img/). That the
browser fetched nothing outside `netprobe web` is proved twice: Chromium's own
net log lists every URL it requested, and the Content-Security-Policy's reports
(sent to the server's /csp-report) must stay at zero. The month report prints to A4.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.collector import ROOT
from tests.web import fleet

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs 'chromium' (tools/install-system-deps)"),
]
BOUNDARY = {
    "type": "FeatureCollection",
    "features": [{"type": "Feature", "properties": {"name": "Musi Banyuasin"}, "geometry": {"type": "Polygon",
        "coordinates": [[[103.2, -1.9], [104.6, -1.9], [104.6, -3.1], [103.2, -3.1], [103.2, -1.9]]]}}],
}  # fmt: skip


class WebProc:
    def __init__(self, conf: Path, log: Path) -> None:
        self.log = log
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "web", "-c", str(conf), "--listen", "127.0.0.1:0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=open(log, "wb"), env=env, text=True,  # noqa: SIM115
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, f"no listening line: {line!r}\n{log.read_text()}"
        self.base = f"http://127.0.0.1:{found.group(1)}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=30) as resp:
            return json.loads(resp.read())

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(20)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebProc, list[fleet.Spec], Path]]:
    tmp = tmp_path_factory.mktemp("browser")
    store = open_store(path=str(tmp / "c.db"))
    specs = fleet.fill(store, time.time())
    store.close()
    (tmp / "muba.geojson").write_text(json.dumps(BOUNDARY))
    conf = tmp / "collector.toml"
    conf.write_text(
        f'[store]\npath = "{tmp / "c.db"}"\n[fleet]\ninterval_s = 600.0\n[sla]\nevidence_s = 3900.0\n'
        f'[web]\nboundary_file = "{tmp / "muba.geojson"}"\nrefresh_s = 5.0\n'
        "[sla.providers.telkom]\navailability_pct = 99.5\n"
    )
    proc = WebProc(conf, tmp / "web.log")
    deadline = time.monotonic() + 120
    while not proc.get("/healthz")["history_ready"]:
        assert time.monotonic() < deadline, "history never became ready"
        time.sleep(0.5)
    yield proc, specs, conf
    assert proc.stop() == 0, (tmp / "web.log").read_text()


def chromium(*args: str, user_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-features=AutofillServerCommunication",  # the browser asking Google about a form is not the page
         f"--user-data-dir={user_dir}", *args],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def requested_urls(netlog: Path, site: str = "http://127.0.0.1") -> set[str]:
    """Every URL requested on behalf of the page, from Chromium's net log.

    A request the page causes, to any host, carries the page's site in its network
    isolation key; the browser's own chatter (updates, time, sign-in) does not, and is
    not the page's doing.
    """
    log = json.loads(netlog.read_text(errors="replace"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = set()
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start and str(params.get("network_isolation_key", "")).startswith(site + " "):
            urls.add(params["url"])
    return urls


def dom(web: WebProc, path: str, tmp: Path, name: str) -> str:
    log = tmp / f"{name}.netlog.json"
    done = chromium(f"--log-net-log={log}", "--dump-dom", web.base + path, user_dir=tmp / f"chrome-{name}")
    assert done.returncode == 0, done.stderr[-2000:]
    urls = requested_urls(log)
    assert {web.base + path, web.base + "/static/web.css"} <= urls, (
        f"the net log misses the page's own requests: {urls}"
    )
    outside = {u for u in urls if not u.startswith(web.base + "/")}
    assert not outside, f"{path} made the browser request {outside}"
    return done.stdout


@pytest.mark.parametrize("lang", ["en", "id"])
def test_every_page_renders_in_chromium_with_states_and_figures(
    web: tuple[WebProc, list[fleet.Spec], Path], tmp_path: Path, lang: str
) -> None:
    proc, specs, _ = web
    words = {"en": ("Bebas blankspot: 84% of desa", "dark: gateway only", "Availability this month", "Last diagnosis"),
             "id": ("Bebas blankspot: 84% desa", "gelap: hanya gateway", "Ketersediaan bulan ini", "Diagnosis terakhir")}[lang]  # fmt: skip

    html = dom(proc, f"/?lang={lang}", tmp_path, f"overview-{lang}")
    assert words[0] in html and words[1] in html and words[2] in html
    assert len(re.findall(r'<tr data-kecamatan="', html)) == 15
    assert len(re.findall(r'<circle class="node st-', html)) == 45
    assert len(re.findall(r'class="node st-gateway_only"', html)) == 3 and 'class="boundary"' in html
    assert len(re.findall(r'<tr class="dark" data-node=', html)) == 7  # 3 gateway only, 2 offline, 2 silent
    for s in fleet.by_kind(specs, "gateway_only"):
        assert re.search(rf'data-node="{s.node}">.*?state-gateway_only', html), s.node
    assert re.findall(r'<td class="num">(\d+\.\d\d)%</td></tr>', html), "no month availability per kecamatan"

    kec = dom(proc, f"/kecamatan/Babat%20Supat?lang={lang}", tmp_path, f"kec-{lang}")
    assert len(re.findall(r'<tr class="(dark|reachable)" data-node=', kec)) == 3
    dark = fleet.by_kind(specs, "gateway_only")[0]
    node_html = dom(proc, f"/node/{dark.node}?lang={lang}", tmp_path, f"node-{lang}")
    assert words[3] in node_html and 'data-verdict="down"' in node_html
    assert 'class="chart latency-chart"' in node_html and 'class="shade-down"' in node_html
    for range_name in ("7d", "30d"):
        page = dom(
            proc, f"/node/muba-lalan-bumi-agung-01?range={range_name}&lang={lang}", tmp_path, f"{range_name}-{lang}"
        )
        assert 'class="band"' in page and 'class="contract"' in page and 'class="seg-up"' in page
    sla_html = dom(proc, f"/sla?lang={lang}", tmp_path, f"sla-{lang}")
    assert 'id="sla-total"' in sla_html and len(re.findall(r"<tr data-node=", sla_html)) == 45
    assert re.search(r'<tr data-provider="telkom">.*?</tr>', sla_html)
    assert proc.get("/healthz")["csp_violations"] == 0

    for name, path in (
        ("overview", f"/?lang={lang}"),
        ("node", f"/node/muba-lalan-bumi-agung-01?range=7d&lang={lang}"),
    ):
        shot = tmp_path / f"web-{name}-{lang}.png"
        done = chromium(f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars", proc.base + path,
                        user_dir=tmp_path / f"chrome-shot-{name}")  # fmt: skip
        assert done.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 30_000
        if os.environ.get("NETPROBE_DOCS_IMG") and lang == "en":
            shutil.copy(shot, ROOT / "docs" / "img" / f"web-{name}.png")


def test_the_month_report_prints_to_a4(web: tuple[WebProc, list[fleet.Spec], Path], tmp_path: Path) -> None:
    _, _, conf = web
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 7 * 3600))
    page = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "agent", "report", "-c", str(conf), "--month", month, "--format", "html", "--lang", "id",
         "-o", str(page)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Ketersediaan internet" in page.read_text() and "<script" not in page.read_text()
    pdf = tmp_path / "report.pdf"
    done = chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri(), user_dir=tmp_path / "chrome-pdf")
    assert done.returncode == 0, done.stderr[-2000:]
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and 10_000 < len(data) < 2_000_000
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
        size = re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info)
        assert size and abs(float(size.group(1)) - 595.3) < 2 and abs(float(size.group(2)) - 841.9) < 2, info
    else:
        pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
        boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
        assert boxes and all(abs(float(w) - 595.3) < 2 and abs(float(h) - 841.9) < 2 for w, h in boxes), boxes[:3]
    assert 2 <= pages <= 8, pages  # 45 nodes, 15 kecamatan, 4 providers: a few A4 pages, not one per row
