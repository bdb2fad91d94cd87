"""The incident tables on SQLite and on the real PostgreSQL: survive restarts, one message per key, one engine."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from agent.collector.incidents import store as istore
from agent.collector.incidents.engine import Incident
from agent.collector.store import Store, open_store
from agent.reading.validate import Record, check_message
from tests.fixtures.collector import reading, split_pg, topic_for

T = 1_780_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    made: list[Store] = []
    if request.param == "sqlite":

        def make() -> Store:
            made.append(open_store(path=str(tmp_path / "c.db")))
            return made[-1]
    else:
        dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))

        def make() -> Store:
            made.append(open_store(dsn=dsn, pg_schema=schema))
            return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def store(opener: Callable[[], Store]) -> Store:
    s = opener()
    istore.ensure_schema(s)
    return s


def incident(n: int = 1, **kw: Any) -> Incident:
    base = dict(
        id=f"n{n}/dark/{int(T)}", kind="dark", cause="uplink", severity="critical", node=f"n{n}",
        kecamatan="Sekayu", desa=f"Desa {n}", members=[{"node": f"n{n}", "kecamatan": "Sekayu", "desa": f"Desa {n}",
        "cause": "uplink"}], start=T, detected=T + 60, updated=T + 60, cause_since=T + 60,
        evidence=[["uplink", {"intervals": 12}]], told=True, told_cause="unknown", notices=1,
    )  # fmt: skip
    base.update(kw)
    return Incident(**base)  # type: ignore[arg-type]


def outgoing(key: str, event: str = "open") -> istore.Outgoing:
    return istore.Outgoing(key, "n1/dark/1", event, "webhook", "", "id", "subject", "body", {"k": key})


def test_incidents_and_what_was_told_survive_a_reopen(opener: Callable[[], Store], store: Store) -> None:
    a, b = incident(1), incident(2, end=T + 600, told_resolved=True)
    istore.save(store, [a, b], [], T + 700)
    store.close()
    again = opener()
    istore.ensure_schema(again)  # harmless the second time
    loaded = {i.id: i for i in istore.load_recent(again, T)}
    assert loaded[a.id] == a and loaded[b.id] == b
    assert [i.id for i in istore.load_recent(again, T + 10_000)] == [a.id]  # the closed one is too old now


def test_a_later_save_revises_an_incident_in_place(store: Store) -> None:
    a = incident(1)
    istore.save(store, [a], [], T)
    istore.save(store, [dataclasses.replace(a, cause="power", end=T + 300)], [], T + 300)
    (got,) = istore.listing(store)
    assert (got.cause, got.end) == ("power", T + 300)


def test_a_message_is_queued_once_per_key_and_a_sent_one_stays_sent_after_a_reopen(
    opener: Callable[[], Store], store: Store
) -> None:
    istore.save(store, [], [outgoing("k1"), outgoing("k2", "resolved")], T)
    istore.save(store, [], [outgoing("k1")], T + 1)  # decided again after a crash: still one
    first, second = istore.pending(store)
    assert (first.key, second.key) == ("k1", "k2")
    istore.record_attempt(store, first.id, T + 2, sent=True)
    istore.record_attempt(store, second.id, T + 2, sent=False, error="refused", retry_at=T + 60)
    store.close()
    again = opener()
    (left,) = istore.pending(again)
    assert (left.key, left.attempts, left.next_attempt) == ("k2", 1, T + 60)
    assert istore.outbox_counts(again) == {"sent": 1, "waiting": 1, "failed": 0}


def test_one_engine_holds_the_lease_until_it_lapses(store: Store) -> None:
    assert istore.take_lease(store, "a", T, 60)
    assert not istore.take_lease(store, "b", T + 30, 60)
    assert istore.take_lease(store, "a", T + 50, 60)  # renewed
    assert not istore.take_lease(store, "b", T + 100, 60)
    assert istore.take_lease(store, "b", T + 111, 60)  # a stopped renewing
    istore.drop_lease(store, "b")
    assert istore.take_lease(store, "c", T + 112, 60)


def test_listing_filters_open_since_kecamatan_and_upstream_members(store: Store) -> None:
    group = incident(9, id="group/hub/1", node="", group="hub", kecamatan="Lais", start=T + 10, members=[
        {"node": "n3", "kecamatan": "Lais", "desa": "Tanjung Agung", "cause": "uplink"}])  # fmt: skip
    member = incident(3, kecamatan="Lais", parent="group/hub/1")
    old = incident(4, start=T - 86400, end=T - 80000)
    istore.save(store, [incident(1), group, member, old], [], T)
    assert {i.id for i in istore.listing(store)} == {incident(1).id, group.id, member.id, old.id}
    assert {i.id for i in istore.listing(store, members=False)} == {incident(1).id, group.id, old.id}
    assert {i.id for i in istore.listing(store, since=T - 3600)} == {incident(1).id, group.id, member.id}
    assert [i.id for i in istore.listing(store, kecamatan="lais", members=False)] == [group.id]
    opened = istore.open_incidents(store)
    assert [i["id"] for i in opened] == [incident(1).id, group.id]
    assert opened[0]["node"] == "n1" and opened[0]["end"] is None


def record(seq: int, **kw: Any) -> Record:
    data = reading("muba-sekayu-balai-agung-01", seq, **kw)
    out = check_message(topic_for(data), json.dumps(data).encode())
    assert isinstance(out, Record)
    return out


def test_readings_are_read_in_arrival_order_page_by_page(store: Store) -> None:
    store.write([record(1), record(2)], now=T)
    store.write([record(3, epoch=T - 7200)], now=T + 5)  # replayed: taken long ago, arrived last
    got = list(istore.readings_after(store, T - 1, limit=2))
    assert [round(r) for _, r, _ in got] == [round(T), round(T), round(T + 5)]
    assert got[-1][0].ts == pytest.approx(T - 7200, abs=1)
    assert list(istore.readings_after(store, T + 5, got[-1][2])) == []


def test_node_rows_carry_the_site_tags(store: Store) -> None:
    site = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung", "contract_mbps": "20"}
    store.write([record(1, site=site)], now=T)
    (row,) = istore.node_rows(store)
    assert row["site"]["contract_mbps"] == "20" and row["last_ts"] is not None
