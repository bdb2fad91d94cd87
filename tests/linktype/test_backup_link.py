"""A desa on fiber with a GEO backup: the daemon reports the failover, and the return, at once.

The node (a Pi on two links, policy routing: tests/testbed/backup.py) runs `netprobe run` with
one `link` target and short settings (5-s looks, the watcher reading the route every second).
Cutting the fiber moves the default route to the VSAT; within a minute a `link` Reading says
`changed`, what changed, and that this is a backup; restoring the fiber is reported the same way.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.testbed import PROFILES
from tests.testbed.backup import ISP2_IP, Backup

pytestmark = [pytest.mark.testbed]

CONFIG = """
[node]
id = "muba-sekayu-balai-agung-01"
state_dir = "{state}"
[site]
kecamatan = "Sekayu"
desa = "Balai Agung"
[daemon]
splay = 0
host_interval = 0
[linktype]
observe_s = 5
promo_trials = 0
dish = ""
watch_s = 1
[[targets]]
kind = "link"
target = "{target}"
"""


def link_readings(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            reading = json.loads(line)
        except ValueError:
            continue
        if reading.get("measurement") == "link":
            out.append(reading["fields"])
    return out


def wait_for(path: Path, count: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readings = link_readings(path)
        if len(readings) >= count:
            return readings
        time.sleep(0.2)
    raise AssertionError(f"{count} link readings expected within {timeout:g} s, got {link_readings(path)}")


def test_a_failover_to_the_backup_link_and_back_is_reported_within_a_minute(testbed, tmp_path):
    tb = testbed("fiber")
    backup = Backup(tb, PROFILES["geo"]).build()
    cfg = tmp_path / "agent.toml"
    cfg.write_text(CONFIG.format(state=tmp_path, target=tb.server_ip))
    out = tmp_path / "stdout"
    with out.open("w") as f:
        tb.popen(tb.node_ns, [sys.executable, "-m", "agent", "run", "-c", str(cfg)], stdout=f, stderr=f)
    first = wait_for(out, 1, 30)[0]
    assert (first["link_type"], first["iface"], first["changed"], first["backup"]) == ("fiber", "eth0", False, False)

    cut = time.monotonic()
    backup.cut_primary()
    failover = wait_for(out, 2, 60)[1]
    took = time.monotonic() - cut
    print(f"failover reported in {took:.1f} s: {failover}")
    assert failover["changed"] is True and failover["backup"] is True, failover
    assert failover["iface"] == "eth1" and failover["isp_hop"] == ISP2_IP and failover["link_type"] == "satellite-geo"
    assert set(failover["change"].split("+")) == {"route", "isp_hop", "link_type"}
    assert failover["previous_uplink"] == first["uplink"] and failover["previous"] == "fiber"

    back = time.monotonic()
    backup.restore_primary()
    restored = wait_for(out, 3, 60)[2]
    print(f"return reported in {time.monotonic() - back:.1f} s: {restored}")
    assert restored["changed"] is True and restored["backup"] is False, restored
    assert restored["iface"] == "eth0" and restored["link_type"] == "fiber"
    assert restored["uplink"] == first["uplink"] and restored["previous_uplink"] == failover["uplink"]
