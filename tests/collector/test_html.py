"""`netprobe fleet --html`: one self-contained page, loaded in a real headless Chromium.

The screenshots are kept under artifacts/ (gitignored) as the test's artifact.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.collector.store import open_store
from agent.reading.validate import Record, Status
from tests.fixtures.collector import ROOT, collector_toml

ARTIFACTS = ROOT / "artifacts"
NODES = [  # node, kecamatan, desa, lat, lon, public target answers?
    ("muba-sekayu-balai-agung-01", "Sekayu", "Balai Agung", -2.887, 103.846, True),
    ("muba-sekayu-kayuara-01", "Sekayu", "Kayuara", -2.905, 103.880, True),
    ("muba-lais-tanjung-agung-01", "Lais", "Tanjung Agung", -2.620, 104.020, False),
    ("muba-bayung-lencir-muara-merang-01", "Bayung Lencir", "Muara Merang", -2.050, 103.650, True),
]


def fill(path: str) -> None:
    store = open_store(path=path)
    now = time.time()
    records = []
    for i, (node, kec, desa, lat, lon, works) in enumerate(NODES):
        site = {"kabupaten": "Musi Banyuasin", "kecamatan": kec, "desa": desa, "lat": lat, "lon": lon}
        for k in range(48):  # every 30 min over the last 24 h
            ts = now - 86400 + k * 1800 + 60
            for target, ok, fields in (
                ("gateway", True, {"rtt_p50_ms": 1.0, "loss_pct": 0.0}),
                ("1.1.1.1", works, {"rtt_p50_ms": 20.0 + 10 * i + (k % 6), "loss_pct": float(k % 4)} if works
                 else {"loss_pct": 100.0}),
            ):  # fmt: skip
                records.append(
                    Record(f"{node}-{k}-{target}", node, site, k * 2 + (target != "gateway"), "icmp", target, ts,
                           True, 1000.0 + k, "b1", 5.0, ok, None if ok else "timeout", None if ok else "x", fields)
                )  # fmt: skip
        records.append(
            Record(f"{node}-link", node, site, 96, "linktype", "uplink", now - 30, True, 5000.0, "b1", 1.0, True,
                   None, None, {"link_type": "geo" if i == 2 else "fiber", "confidence": 0.85})
        )  # fmt: skip
    store.write(records)
    store.write([], [(Status(NODES[1][0], "offline", None, {}), {})])
    store.close()


def chromium(*args: str, user_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={user_dir}", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.chromium
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs 'chromium' (tools/install-system-deps installs it)")
@pytest.mark.parametrize("lang", ["en", "id"])
def test_fleet_page_renders_in_chromium_with_summary_table_charts_and_map(tmp_path: Path, lang: str) -> None:
    db = tmp_path / "c.db"
    fill(str(db))
    conf = tmp_path / "collector.toml"
    conf.write_text(collector_toml("mqtt://127.0.0.1:1883", {"path": str(db)}, fleet={"interval_s": 600.0}))
    page = tmp_path / f"fleet-{lang}.html"
    done = subprocess.run(
        [sys.executable, "-m", "agent", "fleet", "-c", str(conf), "--html", str(page), "--lang", lang],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    source = page.read_text()
    assert "<script" not in source and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", source)
    assert "@import" not in source and "url(" not in source  # nothing fetched from anywhere

    dom = chromium("--dump-dom", page.as_uri(), user_dir=tmp_path / "chrome-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert len(re.findall(r'<tr data-kecamatan="', html)) == 3
    assert len(re.findall(r'<tr class="(dark|reachable)" data-node="', html)) == 4
    assert re.search(r'data-node="muba-sekayu-kayuara-01" data-state="offline"', html)
    assert re.search(r'<tr class="dark" data-node="muba-lais-tanjung-agung-01" data-state="online"', html)
    assert len(re.findall(r'class="bar-reachable"', html)) == 3 and len(re.findall(r'class="bar-dark"', html)) == 3
    assert len(re.findall(r'<figure class="node-chart"', html)) == 4
    assert html.count('class="latency"') >= 3 and 'class="loss"' in html
    assert len(re.findall(r'<circle class="map-node state-', html)) == 4
    words = {"en": ("Bebas blankspot: 50% of desa", "offline", "Reachable"),
             "id": ("Bebas blankspot: 50% desa", "luring", "Terjangkau")}[lang]  # fmt: skip
    for word in words:
        assert word in html

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"collector-fleet-{lang}.png"
    shot.unlink(missing_ok=True)
    done = chromium(f"--screenshot={shot}", "--window-size=1280,1800", "--hide-scrollbars", page.as_uri(),
                    user_dir=tmp_path / "chrome-shot")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
