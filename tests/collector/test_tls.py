"""The collector over mqtts://: it verifies the broker's certificate, and says why when it cannot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.collector import Publisher, reading, topic_for, wait_until

pytestmark = pytest.mark.broker


def test_collector_over_tls_stores_with_the_right_ca_and_names_the_failure_with_a_wrong_one(
    mosquitto: Any, collector_proc: Any, test_ca: Any, tmp_path: Path
) -> None:
    broker = mosquitto(tls=True)
    url = f"mqtts://localhost:{broker.port}"
    wrong = collector_proc(url, {"path": str(tmp_path / "w.db")}, broker={"ca_file": test_ca.other_ca_file})
    right = collector_proc(url, {"path": str(tmp_path / "r.db")}, broker={"ca_file": test_ca.ca_file})
    assert right.wait_log("subscribed to"), right.log()
    pub = Publisher(url, ca_file=test_ca.ca_file)
    r = reading("muba-sanga-desa-01", 1)
    pub.publish_all([(topic_for(r), json.dumps(r).encode())])
    pub.close()
    store = open_store(path=str(tmp_path / "r.db"))
    assert wait_until(lambda: store.count() == 1, 10)
    store.close()
    assert wrong.wait_log("certificate verify failed"), wrong.log()
    assert "subscribed to" not in wrong.log() and wrong.running()
