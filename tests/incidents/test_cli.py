"""`netprobe incidents`: the list in text and JSON, open only, per kecamatan, since a date, in both languages."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.collector.incidents import store as istore
from agent.collector.incidents.engine import Incident
from agent.collector.store import open_store
from tests.fixtures.collector import ROOT

NOW = time.time()


def inc(node: str, kec: str, desa: str, cause: str, start: float, end: Any = None, **kw: Any) -> Incident:
    member = {"node": node, "kecamatan": kec, "desa": desa, "cause": cause}
    return Incident(
        id=f"{node or kw.get('group')}/dark/{int(start)}", kind=kw.pop("kind", "dark"), cause=cause,
        severity=kw.pop("severity", "critical"), node=node, kecamatan=kec, desa=desa, start=start, end=end,
        detected=start, updated=start, members=kw.pop("members", [member]), **kw,
    )  # fmt: skip


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    db = tmp_path / "c.db"
    store = open_store(path=str(db))
    istore.ensure_schema(store)
    group_members = [
        {"node": "n3", "kecamatan": "Lais", "desa": "Tanjung Agung", "cause": "uplink"},
        {"node": "n4", "kecamatan": "Lais", "desa": "Petaling", "cause": "uplink"},
    ]
    istore.save(
        store,
        [
            inc(
                "n1",
                "Sekayu",
                "Balai Agung",
                "power",
                NOW - 3 * 86400,
                NOW - 3 * 86400 + 1800,
                evidence=[["power", {"minutes": 30, "before": "b1", "after": "b2"}]],
            ),
            inc(
                "n2",
                "Sekayu",
                "Soak Baru",
                "loss",
                NOW - 1200,
                kind="degraded",
                severity="warning",
                evidence=[["loss", {"loss": 18.5, "limit": 10.0, "intervals": 4}]],
            ),
            inc("", "Lais", "Tanjung Agung, Petaling", "upstream", NOW - 600, group="hub-lais", members=group_members),
            inc("n3", "Lais", "Tanjung Agung", "uplink", NOW - 600, parent="group/hub-lais"),
        ],
        [],
        NOW,
    )
    store.close()
    path = tmp_path / "collector.toml"
    path.write_text(f'[store]\npath = "{db}"\n')
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "incidents", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_the_text_lists_newest_first_and_an_upstream_incident_once_with_its_desa(conf: Path) -> None:
    out = run("-c", str(conf))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:2] == ["State", "Since"]
    assert "hub-lais: Tanjung Agung, Petaling" in lines[1] and "upstream failure" in lines[1]
    assert "Sekayu / Soak Baru / n2" in lines[2] and "mean loss 18.5% (limit 10.0%)" in lines[2]
    assert "resolved" in lines[3] and "30 min" in lines[3] and "new boot (b1 -> b2)" in lines[3]
    assert len(lines) == 6 and lines[-1].startswith("2 open of 3 listed")


def test_open_kecamatan_and_json(conf: Path) -> None:
    out = run("-c", str(conf), "--open", "--kecamatan", "lais", "--json")
    data = json.loads(out.stdout)
    assert [i["group"] for i in data["incidents"]] == ["hub-lais"]
    assert [m["desa"] for m in data["incidents"][0]["members"]] == ["Tanjung Agung", "Petaling"]


def test_since_a_date_or_hours_back(conf: Path) -> None:
    assert len(json.loads(run("-c", str(conf), "--since", "24h", "--json").stdout)["incidents"]) == 2
    old = time.strftime("%Y-%m-%d", time.localtime(NOW - 5 * 86400))
    assert len(json.loads(run("-c", str(conf), "--since", old, "--json").stdout)["incidents"]) == 3


def test_indonesian_text(conf: Path) -> None:
    out = run("-c", str(conf), "--lang", "id", "--open")
    assert "Penyebab" in out.stdout and "terbuka" in out.stdout and "banyak paket hilang" in out.stdout


def test_a_bad_since_is_a_usage_error_and_a_bad_config_a_config_error(conf: Path, tmp_path: Path) -> None:
    assert run("-c", str(conf), "--since", "yesterday").returncode == 64
    bad = tmp_path / "bad.toml"
    bad.write_text("[incidents]\nwindow = 0\n")
    out = run("-c", str(bad))
    assert out.returncode == 78 and "incidents.window" in out.stderr


def test_a_database_without_incident_tables_lists_none(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    open_store(path=str(db)).close()
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\npath = "{db}"\n')
    out = run("-c", str(path))
    assert out.returncode == 0 and out.stdout.strip() == "No incidents.", out.stderr


def test_the_fleet_page_shows_the_open_incidents_once_each(conf: Path, tmp_path: Path) -> None:
    page = tmp_path / "fleet.html"
    out = subprocess.run(
        [sys.executable, "-m", "agent", "fleet", "-c", str(conf), "--html", str(page), "--lang", "id"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    section = page.read_text().split('<section id="incidents">', 1)[1].split("</section>", 1)[0]
    assert "Insiden terbuka" in section and section.count("<tr") == 3  # heading, the group, the degraded one
    assert "hub-lais: Tanjung Agung (Lais), Petaling (Lais)" in section and "banyak paket hilang" in section
    assert "Balai Agung" not in section  # resolved three days ago
