"""Incoming payloads against the Reading contract: pure, so hostile input is tried exhaustively."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.reading.validate import (
    INVALID,
    MALFORMED,
    OVERSIZED,
    SPOOFED,
    UNKNOWN_SCHEMA,
    Record,
    Rejected,
    Status,
    check_message,
)
from tests.fixtures.collector import reading, topic_for

NODE = "muba-sekayu-balai-agung-01"
TOPIC = "netprobe/sekayu/balai-agung/muba-sekayu-balai-agung-01/icmp"


def kind_of(topic: str, payload: bytes) -> str:
    out = check_message(topic, payload)
    return out.kind if isinstance(out, Rejected) else type(out).__name__


def test_a_reading_from_the_agent_contract_is_accepted_with_its_values() -> None:
    data = reading(NODE, 7, ts="2026-11-28T10:00:00.500Z")
    out = check_message(topic_for(data), json.dumps(data).encode())
    assert isinstance(out, Record)
    assert (out.node, out.seq, out.measurement, out.target, out.ok) == (NODE, 7, "icmp", "1.1.1.1", True)
    assert out.ts == 1795860000.5 and out.fields["rtt_p50_ms"] == 24.5


def test_each_kind_of_bad_message_is_named() -> None:
    good = reading(NODE, 1)
    cases = {
        b"{oops": MALFORMED,
        b'"just a string"': MALFORMED,
        json.dumps({**good, "schema": 2}).encode(): UNKNOWN_SCHEMA,
        json.dumps({k: v for k, v in good.items() if k != "schema"}).encode(): UNKNOWN_SCHEMA,
        json.dumps({**good, "seq": "7"}).encode(): INVALID,
        json.dumps({**good, "ok": "yes"}).encode(): INVALID,
        json.dumps({**good, "ts": "yesterday"}).encode(): INVALID,
        json.dumps({**good, "fields": {"x": [1, 2]}}).encode(): INVALID,
        json.dumps({**good, "ok": False, "error": None}).encode(): INVALID,
        json.dumps({**good, "site": {"kecamatan": 5, "desa": "x"}}).encode(): INVALID,
        json.dumps({**good, "node": "muba-lais-other-01"}).encode(): SPOOFED,
        json.dumps({**good, "fields": {"pad": "x" * 70_000}}).encode(): OVERSIZED,
    }
    for payload, kind in cases.items():
        assert kind_of(TOPIC, payload) == kind, payload[:80]


def test_status_messages_carry_state_and_reject_a_forged_node() -> None:
    topic = TOPIC.rsplit("/", 1)[0] + "/status"
    out = check_message(topic, json.dumps({"state": "offline", "node": NODE}).encode())
    assert isinstance(out, Status) and out.state == "offline"
    assert kind_of(topic, json.dumps({"state": "offline", "node": "muba-lais-x-01"}).encode()) == SPOOFED
    assert kind_of(topic, json.dumps({"state": "asleep"}).encode()) == INVALID
    assert kind_of(topic, b"") == INVALID  # a cleared retained message


def test_topics_outside_the_layout_are_rejected() -> None:
    assert kind_of("netprobe/sekayu/" + NODE + "/icmp", b"{}") == "bad_topic"
    assert kind_of("other/a/b/c/d", b"{}") == "bad_topic"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(payload: bytes) -> None:
    assert isinstance(check_message(TOPIC, payload), (Record, Status, Rejected))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(reading(NODE, 1))), json_values, max_size=8))
def test_a_reading_with_arbitrary_values_in_its_keys_never_raises(overrides: dict) -> None:
    data = {**reading(NODE, 1), **overrides}
    out = check_message(TOPIC, json.dumps(data).encode())
    assert isinstance(out, (Record, Rejected))
