"""End to end: agent processes -> real Mosquitto -> `netprobe collect` -> store -> `netprobe fleet`.

Run on SQLite and on the PostgreSQL at 127.0.0.1:5432 (skipped with a reason when absent).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.collector import ROOT, SITES, Publisher, reading, split_pg, topic_for, wait_until

pytestmark = pytest.mark.broker


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"path": str(tmp_path / "collector.db"), "busy_timeout_s": 0.5}
    dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
    return {"dsn": dsn, "pg_schema": schema}


def open_for_test(settings: dict[str, Any]) -> Any:
    return open_store(settings.get("dsn", ""), settings.get("path", ""), settings.get("pg_schema", "netprobe"))


def count_by_node(store: Any) -> dict[str, int]:
    return {n: int(c) for n, c in store.query("SELECT node, COUNT(*) FROM readings GROUP BY node")}


def fleet(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "fleet", "-c", str(conf), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_fleet_shows_online_offline_silent_and_dark_nodes_with_gaps_duplicates_and_hostile_payloads(
    mosquitto: Any, collector_proc: Any, agent_proc: Any, store_settings: dict[str, Any]
) -> None:
    broker = mosquitto()
    col = collector_proc(broker.url, store_settings, fleet={"interval_s": 0.5, "silent_intervals": 4.0})
    assert col.wait_log("subscribed to netprobe/+/+/+/+"), col.log()  # plain and persistent by default
    killed = agent_proc(broker.url, "muba-sekayu-balai-agung-01", SITES["sekayu"], 0.2, "--lat", "-2.88", "--lon", "103.85")
    dark = agent_proc(broker.url, "muba-lais-tanjung-agung-01", SITES["lais"], 0.2, "--gateway-only", "--link", "geo")
    quiet = agent_proc(broker.url, "muba-bayung-muara-merang-01", SITES["bayung"], 0.2, "--skip", "5")
    store = open_for_test(store_settings)
    nodes = (killed.node, dark.node, quiet.node)
    assert wait_until(lambda: all(count_by_node(store).get(n, 0) >= 8 for n in nodes), 15), count_by_node(store)

    # Replayed duplicates are stored once.
    pub = Publisher(broker.url)
    dup = [reading("muba-lalan-sumber-agung-01", seq, site={"kabupaten": "Musi Banyuasin", "kecamatan": "Lalan",
                                                              "desa": "Sumber Agung"}) for seq in range(1, 11)]  # fmt: skip
    msgs = [(topic_for(r), json.dumps(r).encode()) for r in dup]
    pub.publish_all(msgs)
    pub.publish_all(msgs)  # the same ids again, as a re-delivering spool would

    # Hostile payloads: counted, never fatal.
    good = reading("muba-lalan-sumber-agung-01", 99)
    t = topic_for(good)
    hostile = [
        (t, b"{not json"),
        (t, json.dumps({**good, "seq": "eleven", "id": "f" * 32}).encode()),
        (t, json.dumps({**good, "id": "e" * 32, "fields": {"pad": "x" * 70_000}}).encode()),
        (t, json.dumps({**good, "schema": 99, "id": "d" * 32}).encode()),
        (topic_for(good, node=killed.node), json.dumps({**good, "id": "c" * 32}).encode()),  # spoofed
        (t, b"[1, 2, 3]"),
    ]
    pub.publish_all(hostile)
    pub.close()
    assert wait_until(lambda: count_by_node(store).get("muba-lalan-sumber-agung-01", 0) >= 10, 10)

    killed.kill()  # SIGKILL: the broker sends its last will
    quiet.go_quiet()
    time.sleep(2.6)  # > interval_s * silent_intervals = 2 s
    assert col.running(), col.log()

    result = fleet(col.conf, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    views = {n["node"]: n for n in data["nodes"]}
    assert views[killed.node]["state"] == "offline"
    assert views[dark.node]["state"] == "online"
    assert views[dark.node]["uplink"] == "gateway_only" and views[dark.node]["dark"] is True
    assert views[quiet.node]["state"] == "silent"
    assert views[quiet.node]["seq_gaps"] == 1 and views[quiet.node]["gap_ranges"] == [[5, 5]]
    assert views[killed.node]["seq_gaps"] == 0
    assert views[dark.node]["link_type"] == "geo" and views[dark.node]["link_confidence"] == 0.9
    assert views[killed.node]["download_mbps"] == 48.5 and views[killed.node]["bytes_month"] == 1_000_000
    assert views[killed.node]["latency_p50_ms"] == 25.0 and views[killed.node]["loss_pct"] == 0.0
    assert views[killed.node]["lat"] == -2.88
    assert count_by_node(store)["muba-lalan-sumber-agung-01"] == 10
    rows = store.query("SELECT COUNT(*), COUNT(DISTINCT id) FROM readings")[0]
    assert rows[0] == rows[1]
    assert data["rejected"] == {"malformed": 2, "invalid": 1, "oversized": 1, "unknown_schema": 1, "spoofed": 1}
    kec = {k["kecamatan"]: k for k in data["kecamatan"]}
    assert kec["Lais"]["desa_dark"] == 1 and kec["Lais"]["link_types"] == {"geo": 1}
    assert kec["Sekayu"]["states"]["offline"] == 1
    assert data["totals"]["desa_total"] == 4 and data["totals"]["desa_reachable"] == 0
    log = col.log()
    assert log.count("rejected a malformed message") == 1 and "rejected a spoofed message" in log

    # Every reading the agents published and the broker acked reached the store: no sequence gaps but the skipped one.
    for node in (killed.node, dark.node):
        assert views[node]["seq_gaps"] == 0

    text = fleet(col.conf, "--lang", "id", "--kecamatan", "sekayu")
    assert text.returncode == 0 and "luring" in text.stdout and "Bebas blankspot: 0%" in text.stdout
    assert "muba-lais" not in text.stdout
    unknown = fleet(col.conf, "--kecamatan", "Atlantis")
    assert unknown.returncode == 64 and "known: " in unknown.stderr and "Traceback" not in unknown.stderr
    assert col.stop() == 0
    store.close()


def test_two_collectors_on_one_shared_subscription_store_each_reading_once(
    mosquitto: Any, collector_proc: Any, store_settings: dict[str, Any]
) -> None:
    broker = mosquitto()
    settings = store_settings
    cols = [collector_proc(broker.url, settings, broker={"share_group": "muba"}) for _ in range(2)]
    for c in cols:
        assert c.wait_log("subscribed to $share/muba/"), c.log()
    pub = Publisher(broker.url)
    sent = [reading(f"muba-sekayu-node-{n:02d}", seq) for n in range(4) for seq in range(1, 101)]
    pub.publish_all([(topic_for(r), json.dumps(r).encode()) for r in sent])
    pub.close()
    store = open_for_test(settings)
    assert wait_until(lambda: store.count() >= 400, 15), store.count()
    for c in cols:
        assert c.stop() == 0
    stored = [int(c.log().rsplit("stored ", 1)[1].split(",")[0]) for c in cols]
    assert all(n > 0 for n in stored), stored  # the broker split the load
    assert sum(stored) == 400  # and no reading was stored twice
    assert store.count() == 400 and store.query("SELECT COUNT(DISTINCT id) FROM readings")[0][0] == 400
    store.close()


def test_readings_arriving_while_the_database_is_down_are_not_acked_and_are_stored_after_a_crash(
    mosquitto: Any, collector_proc: Any, tmp_path: Path
) -> None:
    """SQLite held locked by another writer = database down. The collector keeps the messages unacked;
    killed meanwhile and restarted with the same client id, it gets them again from the broker."""
    broker = mosquitto()
    settings = {"path": str(tmp_path / "c.db"), "busy_timeout_s": 0.2}
    col = collector_proc(broker.url, settings, broker={"client_id": "collector-crashy"})
    assert col.wait_log("subscribed to"), col.log()
    pub = Publisher(broker.url)
    first = [reading("muba-keluang-desa-01", seq) for seq in range(1, 21)]
    pub.publish_all([(topic_for(r), json.dumps(r).encode()) for r in first])
    store = open_store(path=settings["path"])
    assert wait_until(lambda: store.count() == 20, 10)

    lock = sqlite3.connect(settings["path"], isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # the database is now unavailable to the collector
    later = [reading("muba-keluang-desa-01", seq) for seq in range(21, 71)]
    pub.publish_all([(topic_for(r), json.dumps(r).encode()) for r in later])
    assert col.wait_log("cannot store readings"), col.log()
    assert "holding them unacknowledged" in col.log()
    assert lock.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == 20
    col.kill()  # a crash while the database is down
    lock.execute("ROLLBACK")
    lock.close()

    again = collector_proc(broker.url, settings, broker={"client_id": "collector-crashy"})
    assert wait_until(lambda: store.count() == 70, 15), store.count()
    pub.close()
    assert again.stop() == 0
    assert store.query("SELECT MIN(seq), MAX(seq), COUNT(DISTINCT seq) FROM readings")[0] == (1, 70, 70)
    store.close()


def test_database_outage_is_survived_by_a_running_collector(
    mosquitto: Any, collector_proc: Any, tmp_path: Path
) -> None:
    broker = mosquitto()
    settings = {"path": str(tmp_path / "c.db"), "busy_timeout_s": 0.2}
    col = collector_proc(broker.url, settings)
    assert col.wait_log("subscribed to"), col.log()
    store = open_store(path=settings["path"])
    lock = sqlite3.connect(settings["path"], isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    pub = Publisher(broker.url)
    sent = [reading("muba-lawang-wetan-01", seq) for seq in range(1, 31)]
    pub.publish_all([(topic_for(r), json.dumps(r).encode()) for r in sent])
    assert col.wait_log("cannot store readings"), col.log()
    lock.execute("ROLLBACK")
    lock.close()
    assert wait_until(lambda: store.count() == 30, 40), store.count()
    assert col.wait_log("database back after")
    pub.close()
    assert col.stop() == 0
    store.close()


def test_broker_down_at_start_and_in_between_is_reported_and_retried(
    mosquitto: Any, collector_proc: Any, tmp_path: Path
) -> None:
    from tests.helpers import free_port

    nowhere = collector_proc(f"mqtt://127.0.0.1:{free_port()}", {"path": str(tmp_path / "n.db")})
    broker = mosquitto()
    col = collector_proc(broker.url, {"path": str(tmp_path / "c.db")})
    assert col.wait_log("subscribed to"), col.log()
    assert nowhere.wait_log("cannot connect to the broker"), nowhere.log()
    assert "Connection refused; retrying with backoff" in nowhere.log()
    assert nowhere.running() and nowhere.stop() == 0  # and it stops cleanly while still trying

    broker.stop()
    assert col.wait_log("lost the broker"), col.log()
    broker.start()
    assert wait_until(lambda: col.log().count("subscribed to") == 2, 35), col.log()
    pub = Publisher(broker.url)
    r = reading("muba-plakat-tinggi-01", 1)
    pub.publish_all([(topic_for(r), json.dumps(r).encode())])
    pub.close()
    store = open_store(path=str(tmp_path / "c.db"))
    assert wait_until(lambda: store.count() == 1, 10)
    assert col.stop() == 0
    store.close()
