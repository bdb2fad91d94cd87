"""The collector on Debian 12's paho-mqtt 1.6.1 (/usr/bin/python3), which cannot defer a PUBACK:
there the message callback waits for the commit, so the promise is the same: not acked until stored."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.collector import Publisher, reading, topic_for, wait_until

pytestmark = pytest.mark.broker
DEBIAN_PYTHON = "/usr/bin/python3"


def debian_paho() -> str:
    try:
        out = subprocess.run([DEBIAN_PYTHON, "-c", "import paho.mqtt; print(paho.mqtt.__version__)"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@pytest.mark.skipif(not debian_paho().startswith("1."), reason="needs Debian's python3-paho-mqtt 1.6 in /usr/bin/python3")
def test_on_paho_1_6_readings_held_during_a_database_outage_survive_a_stop_and_a_crash(
    mosquitto: Any, collector_proc: Any, tmp_path: Path
) -> None:
    broker = mosquitto()
    settings = {"path": str(tmp_path / "c.db"), "busy_timeout_s": 0.2}
    client = {"client_id": "collector-deb"}
    col = collector_proc(broker.url, settings, python=DEBIAN_PYTHON, broker=client)
    assert col.wait_log("subscribed to"), col.log()
    pub = Publisher(broker.url)

    def send(seqs: range) -> None:
        pub.publish_all([(topic_for(r), json.dumps(r).encode()) for r in (reading("muba-jirak-jaya-01", s) for s in seqs)])

    send(range(1, 31))
    store = open_store(path=settings["path"])
    assert wait_until(lambda: store.count() == 30, 10), col.log()

    lock = sqlite3.connect(settings["path"], isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    send(range(31, 51))
    assert col.wait_log("cannot store readings"), col.log()
    assert col.stop() == 0  # graceful while the database is down: it must not ack what it could not store
    assert "Traceback" not in col.log()
    again = collector_proc(broker.url, settings, python=DEBIAN_PYTHON, broker=client)
    assert again.wait_log("cannot store readings"), again.log()
    again.kill()  # and a crash, for good measure
    lock.execute("ROLLBACK")
    lock.close()

    last = collector_proc(broker.url, settings, python=DEBIAN_PYTHON, broker=client)
    assert wait_until(lambda: store.count() == 50, 15), (store.count(), last.log())
    assert store.query("SELECT COUNT(DISTINCT seq) FROM readings")[0][0] == 50
    pub.close()
    assert last.stop() == 0
    store.close()
