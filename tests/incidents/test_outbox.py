"""Routing by kecamatan, severity and cause; durable delivery: backoff, order per recipient, nothing twice."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from agent.collector.incidents import store as istore
from agent.collector.incidents.channels import Channels, DeliveryError
from agent.collector.incidents.engine import Incident, Notice
from agent.collector.incidents.outbox import Sender, outgoing, route
from agent.collector.incidents.settings import NotifySettings, RuleSettings, WebhookSettings, load_zone
from agent.collector.store import Store, open_store
from tests.helpers import free_port
from tests.incidents.receivers import HttpRecorder

T = 1_780_000_000.0
TZ = load_zone("Asia/Jakarta")


def notice(event: str = "open", seq: int = 1, kecamatan: str = "Sekayu", cause: str = "power", **kw: Any) -> Notice:
    inc = Incident(
        id="n1/dark/1", kind="dark", cause=cause, severity=kw.pop("severity", "critical"), node="n1",
        kecamatan=kecamatan, desa="Balai Agung", start=T, end=T + 600 if event == "resolved" else None,
        members=[{"node": "n1", "kecamatan": kecamatan, "desa": "Balai Agung", "cause": cause}],
        evidence=[["power", {"minutes": 10, "before": "b1", "after": "b2"}]],
    )  # fmt: skip
    return Notice(event, inc, seq, T + 700)


RULES = [
    RuleSettings(name="sekayu", kecamatan=["Sekayu"], to=["telegram:-100", "email:camat@muba.go.id"], lang="id"),
    RuleSettings(
        name="pln", causes=["power"], severity=["critical"], to=["whatsapp:+628111", "telegram:-100"], lang="en"
    ),
    RuleSettings(name="warnings", severity=["warning"], to=["email:noc@muba.go.id"], lang="en"),
    RuleSettings(name="everything", to=["webhook"]),
]


def test_rules_route_by_kecamatan_severity_and_cause_and_the_first_rule_sets_the_language() -> None:
    got = sorted(route(notice(), RULES))
    assert got == [
        ("email", "camat@muba.go.id", "id"),
        ("telegram", "-100", "id"),  # named twice, told once, in the first rule's language
        ("webhook", "", "id"),
        ("whatsapp", "+628111", "en"),
    ]
    assert sorted(route(notice(kecamatan="Lais", cause="uplink"), RULES)) == [("webhook", "", "id")]
    assert ("email", "noc@muba.go.id", "en") in route(notice(kecamatan="Lais", cause="loss", severity="warning"), RULES)


def test_each_message_has_its_own_key_and_is_rendered_in_its_recipients_language() -> None:
    msgs = outgoing([notice(), notice("resolved", seq=2)], RULES, TZ)
    assert len({m.key for m in msgs}) == len(msgs) == 8
    tg = next(m for m in msgs if m.channel == "telegram" and m.event == "open")
    wa = next(m for m in msgs if m.channel == "whatsapp" and m.event == "open")
    assert "Penyebab" in tg.body and "Cause" in wa.body
    assert outgoing([notice()], RULES, TZ)[0].key == msgs[0].key  # the same notice decided again: the same key


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(path=str(tmp_path / "c.db"))
    istore.ensure_schema(s)
    return s


def queue(store: Store, *events: str) -> None:
    notices = [notice(e, seq=i + 1) for i, e in enumerate(events)]
    istore.save(store, [], outgoing(notices, [RuleSettings(to=["webhook"])], TZ), T)


class Flaky:
    def __init__(self) -> None:
        self.down = True
        self.got: list[str] = []

    def __call__(self, q: istore.Queued) -> None:
        if self.down:
            raise DeliveryError("refused")
        self.got.append(q.event)


def test_a_receiver_that_is_down_gets_every_message_once_and_in_order_when_it_returns(
    store: Store, tmp_path: Path
) -> None:
    queue(store, "open", "resolved")
    notify = NotifySettings(retry_min_s=10.0, retry_max_s=40.0)
    send = Flaky()
    sender = Sender(store, notify, send, random.Random(1))
    waits = []
    for minute in range(5):
        sender.once(T + 60 * minute)
        waits.append(istore.pending(store)[0].next_attempt - (T + 60 * minute))
    assert send.got == [] and waits[0] == pytest.approx(10, rel=0.25) and waits[-1] == pytest.approx(40, rel=0.25)
    assert istore.pending(store)[1].attempts == 0  # the resolution waited behind its opening
    send.down = False
    assert Sender(store, notify, send).once(T + 3600) == 2  # a new sender, as after a restart
    assert send.got == ["open", "resolved"]
    store.close()
    again = open_store(path=str(tmp_path / "c.db"))
    assert Sender(again, notify, send).once(T + 7200) == 0 and istore.pending(again) == []
    again.close()


def test_a_permanent_failure_is_not_retried_and_does_not_hold_the_next_message(store: Store) -> None:
    queue(store, "open", "resolved")
    calls: list[str] = []

    def send(q: istore.Queued) -> None:
        calls.append(q.event)
        if q.event == "open":
            raise DeliveryError("HTTP 400", permanent=True)

    Sender(store, NotifySettings(), send).once(T)
    Sender(store, NotifySettings(), send).once(T + 60)
    assert calls == ["open", "resolved"]
    assert istore.outbox_counts(store) == {"sent": 1, "waiting": 0, "failed": 1}


def test_a_message_undelivered_past_give_up_s_is_dropped(store: Store) -> None:
    queue(store, "open")
    Sender(store, NotifySettings(give_up_s=3600.0), Flaky()).once(T + 7200)
    assert istore.outbox_counts(store)["failed"] == 1


def test_the_webhook_receiver_down_then_up_gets_each_message_once(store: Store) -> None:
    port = free_port()
    queue(store, "open", "resolved")
    notify = NotifySettings(webhook=WebhookSettings(url=f"http://127.0.0.1:{port}/hook"), retry_min_s=1.0, timeout_s=2)
    sender = Sender(store, notify, Channels(notify).send)
    sender.once(T)
    assert istore.pending(store)[0].attempts == 1
    receiver = HttpRecorder(port=port)
    try:
        for step in range(1, 5):
            sender.once(T + 60 * step)
        keys = [g["headers"]["idempotency-key"] for g in receiver.got]
        assert [g["headers"]["x-netprobe-event"] for g in receiver.got] == ["open", "resolved"]
        assert len(set(keys)) == 2
    finally:
        receiver.close()
