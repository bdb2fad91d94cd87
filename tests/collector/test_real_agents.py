"""`netprobe run` agents (the real daemon, loopback targets) -> Mosquitto -> `netprobe collect` -> `netprobe fleet`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.agentd import agent_toml
from tests.fixtures.collector import ROOT, wait_until
from tests.helpers import free_port

pytestmark = pytest.mark.broker
AGENTS = {  # node: (kecamatan, desa, target answers?)
    "muba-sekayu-balai-agung-01": ("Sekayu", "Balai Agung", True),
    "muba-lais-tanjung-agung-01": ("Lais", "Tanjung Agung", False),
    "muba-lalan-sumber-agung-01": ("Lalan", "Sumber Agung", True),
}


def test_real_agents_are_stored_without_loss_and_fleet_shows_offline_silent_and_dark(
    mosquitto: Any, collector_proc: Any, agentd: Any, tcp_listener: Any, tmp_path: Path
) -> None:
    broker = mosquitto()
    db = str(tmp_path / "c.db")
    col = collector_proc(broker.url, {"path": db}, fleet={"interval_s": 0.5, "silent_intervals": 4.0})
    assert col.wait_log("subscribed to"), col.log()
    dead_port = free_port()  # nothing listens: connection refused
    agents = {}
    for node, (kec, desa, works) in AGENTS.items():
        target = tcp_listener.address if works else f"127.0.0.1:{dead_port}"
        text = agent_toml(tmp_path / node, tcp=target, broker=broker.url, node=node, interval=0.3)
        text = text.replace('kecamatan = "Sekayu"', f'kecamatan = "{kec}"').replace(
            'desa = "Balai Agung"', f'desa = "{desa}"'
        )
        agents[node] = agentd(text)
    store = open_store(path=db)

    def counts() -> dict[str, int]:
        return {n: int(c) for n, c in store.query("SELECT node, COUNT(*) FROM readings GROUP BY node")}

    assert wait_until(lambda: all(counts().get(n, 0) >= 5 for n in AGENTS), 20), (counts(), col.log())
    assert wait_until(lambda: {n["status"] for n in store.nodes()} == {"online"}, 10)
    killed, dark, quiet = AGENTS
    agents[killed].kill9()  # its last will turns it offline
    agents[quiet].signal(signal.SIGSTOP)  # still connected, says nothing: silent
    time.sleep(2.5)
    out = subprocess.run(
        [sys.executable, "-m", "agent", "fleet", "-c", str(col.conf), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    agents[quiet].signal(signal.SIGCONT)
    assert out.returncode == 0, out.stderr
    views = {n["node"]: n for n in json.loads(out.stdout)["nodes"]}
    assert views[killed]["state"] == "offline"
    assert views[quiet]["state"] == "silent"
    assert views[dark]["state"] == "online" and views[dark]["dark"] is True
    assert views[killed]["dark"] is True and views[quiet]["dark"] is True
    assert views[dark]["dropped"] == 0 and isinstance(views[dark]["spool_depth"], int)  # from the status
    for node in AGENTS:
        assert views[node]["seq_gaps"] == 0
        lo, hi, n = store.query("SELECT MIN(seq), MAX(seq), COUNT(*) FROM readings WHERE node = ?", (node,))[0]
        assert n == hi - lo + 1  # every reading the agent published was stored, once
    assert col.stop() == 0
    store.close()
