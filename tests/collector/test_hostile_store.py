"""One hostile message never stops `netprobe collect`: it is quarantined, acknowledged, and the rest stored.

Issue 12, findings 2 and 10, against the real collector process, a real Mosquitto and each store
(SQLite, and the PostgreSQL at 127.0.0.1:5432 when there is one).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from agent.collector.store import Store, open_store
from agent.reading.validate import Record, check_message
from tests.fixtures.collector import Publisher, reading, split_pg, topic_for, wait_until

NODE = "muba-sekayu-balai-agung-01"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"path": str(tmp_path / "collector.db"), "busy_timeout_s": 0.5}
    dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
    return {"dsn": dsn, "pg_schema": schema}


def open_for_test(settings: dict[str, Any]) -> Store:
    return open_store(settings.get("dsn", ""), settings.get("path", ""), settings.get("pg_schema", "netprobe"))


def good(n: int, node: str = NODE) -> list[tuple[str, bytes]]:
    out = []
    for seq in range(1, n + 1):
        r = reading(node, seq)
        out.append((topic_for(r), json.dumps(r).encode()))
    return out


def hostile(node: str = NODE) -> dict[str, bytes]:
    """What made the collector exit 70 on every restart, one message each."""

    def raw(**changes: Any) -> dict[str, Any]:
        data = reading(node, None, **{k: v for k, v in changes.items() if "." not in k})
        for key, value in changes.items():
            if "." in key:
                part, name = key.split(".")
                data[part][name] = value
        return data

    def text(data: dict[str, Any], old: str, new: str) -> bytes:
        out = json.dumps(data)
        assert old in out
        return out.replace(old, new, 1).encode()

    return {
        "duration_ms of 400 digits": text(raw(duration_ms=12345), "12345", "9" * 400),
        "site.lat of 1e30": json.dumps(raw(**{"site.lat": 1e30, "site.lon": 104.0})).encode(),
        "bytes_used of 1e19": json.dumps(raw(**{"fields.bytes_used": 10**19})).encode(),
        "bytes_used of Infinity": json.dumps(raw(**{"fields.bytes_used": float("inf")})).encode(),
        "Infinity in fields": text(raw(**{"fields.rtt_p50_ms": 12345}), "12345", "1e999"),
        "mono_s of 1e400": text(raw(mono_s=12345), "12345", "1e400"),
        "NUL in the target": json.dumps(raw(target="1.1.1.1\x00")).encode(),
        "NUL in an error message": json.dumps(raw(ok=False, fields={"sent": 1}))
        .replace("no reply", "no\\u0000reply")
        .encode(),
        "a lone surrogate": json.dumps(raw(**{"fields.note": "\ud800"})).encode(),
        "a field of 30 digits": text(raw(**{"fields.count": 12345}), "12345", "1" * 30),
        "NaN": text(raw(**{"fields.loss_pct": 12345}), "12345", "NaN"),
        "a schema with NUL": json.dumps(raw(schema="\x00")).encode(),
        "a status with NUL": json.dumps({"state": "online", "version": "\x00"}).encode(),
    }


def test_hostile_messages_are_quarantined_and_good_ones_after_them_stored(
    mosquitto: Any, collector_proc: Any, store_settings: dict[str, Any]
) -> None:
    broker = mosquitto()
    col = collector_proc(broker.url, store_settings)
    assert col.wait_log("subscribed to"), col.log()
    pub = Publisher(broker.url)
    bad = hostile()
    topic = topic_for(reading(NODE, 1))
    status_topic = topic.rsplit("/", 1)[0] + "/status"
    pub.publish_all([(status_topic if "status" in name else topic, p) for name, p in bad.items()])
    time.sleep(0.5)  # they arrive first, in one batch or several
    pub.publish_all(good(20))
    pub.close()
    store = open_for_test(store_settings)
    assert wait_until(lambda: store.count() >= 20, 15), (store.count(), col.log())
    assert col.running(), col.log()
    assert store.count() == 20
    rejects = store.rejects()
    assert sum(rejects.values()) == len(bad), rejects
    samples = store.reject_samples(limit=100)
    assert len(samples) == len(bad) and all(s["why"] and s["topic"] for s in samples), samples
    assert any("9" * 100 in s["sample"] for s in samples)  # what was sent, bounded
    assert all(len(s["sample"]) <= 513 for s in samples)
    log = col.log()
    assert "Traceback" not in log and "internal error" not in log
    assert col.stop() == 0
    store.close()


def refuse_target(settings: dict[str, Any], store: Store, target: str) -> None:
    """A constraint the collector does not know of: the database itself refuses one row."""
    if settings.get("dsn"):
        import psycopg

        with psycopg.connect(settings["dsn"], autocommit=True) as conn:
            conn.execute(
                f'ALTER TABLE "{settings["pg_schema"]}".readings ADD CONSTRAINT refuse CHECK (target <> %s)'.replace(
                    "%s", f"'{target}'"
                )
            )
    else:
        import sqlite3

        conn = sqlite3.connect(settings["path"], isolation_level=None)
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON readings WHEN NEW.target = '{target}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
        )
        conn.close()


def test_a_row_the_database_refuses_is_quarantined_and_the_rest_of_its_batch_stored(
    mosquitto: Any, collector_proc: Any, store_settings: dict[str, Any]
) -> None:
    broker = mosquitto()
    col = collector_proc(broker.url, store_settings)
    assert col.wait_log("subscribed to"), col.log()
    store = open_for_test(store_settings)
    refuse_target(store_settings, store, "refuse-me")
    messages = good(10)
    doomed = reading(NODE, 11, target="refuse-me")
    messages.insert(5, (topic_for(doomed), json.dumps(doomed).encode()))
    pub = Publisher(broker.url)
    pub.publish_all(messages)
    pub.publish_all(good(5, node="muba-lais-tanjung-agung-01"))  # and the collector goes on
    pub.close()
    assert wait_until(lambda: store.count() >= 15, 15), (store.count(), col.log())
    assert wait_until(lambda: store.rejects().get("unstorable") == 1, 5), (store.rejects(), col.log())
    assert col.running() and store.count() == 15
    (sample,) = store.reject_samples()
    assert sample["kind"] == "unstorable" and sample["node"] == NODE and "refuse-me" in sample["sample"]
    assert "refused" in sample["why"]
    assert "Traceback" not in col.log()
    assert col.stop() == 0
    store.close()


def test_a_reading_from_the_future_does_not_hold_the_latest_row(store_settings: dict[str, Any]) -> None:
    store = open_for_test(store_settings)
    future = reading(NODE, 1, ts="9999-12-31T23:59:59.000Z", clock_synced=False)
    later = time.time() + 5  # the future one is dated as received: the next reading is later than that
    now = reading(NODE, 2, fields={"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_p50_ms": 30.0}, epoch=later)
    for data in (future, now):
        out = check_message(topic_for(data), json.dumps(data).encode())
        assert isinstance(out, Record), out
        store.write([out])
    (latest,) = store.latest()
    assert latest["fields"]["rtt_p50_ms"] == 30.0 and abs(latest["ts"] - later) < 0.01
    synced = reading(NODE, 3, ts="9999-12-31T23:59:59.000Z", clock_synced=True, id=uuid.uuid4().hex)
    assert not isinstance(check_message(topic_for(synced), json.dumps(synced).encode()), Record)
    store.close()
