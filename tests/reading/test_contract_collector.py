"""The collector's side of the Reading contract: hostile values are rejected with a reason, never raised.

Issue 12, findings 2 and 10: every number bounded to what the stores hold and what is
plausible, no NaN/Infinity, no NUL, and no Reading from the future.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from agent.reading.validate import Record, Rejected, Status, check_message
from tests.fixtures.collector import reading, topic_for

NODE = "muba-sekayu-balai-agung-01"
# The rejection kinds, as the collector counts them (literals: a test of the contract, not of its names).
BAD_TOPIC, FUTURE, INVALID, MALFORMED = "bad_topic", "future", "invalid", "malformed"


def payload_with(**changes: Any) -> dict[str, Any]:
    """A valid Reading with `changes`: `f_x` sets fields.x, `s_x` sets site.x, others the top-level key."""
    data = reading(NODE, 1)
    for key, value in changes.items():
        if key.startswith("f_"):
            data["fields"][key[2:]] = value
        elif key.startswith("s_"):
            data["site"][key[2:]] = value
        else:
            data[key] = value
    return data


def verdict(data: dict[str, Any], raw: bytes = b"") -> Any:
    return check_message(topic_for(data), raw or json.dumps(data).encode())


HOSTILE = {
    "duration_ms with 400 digits": {"duration_ms": 10**400},
    "site.lat of 1e30": {"s_lat": 1e30},
    "site.lon of -1e30": {"s_lon": -1e30},
    "bytes_used of 1e19": {"f_bytes_used": 10**19},
    "bytes_used of Infinity": {"f_bytes_used": float("inf")},
    "rtt of -Infinity": {"f_rtt_p50_ms": float("-inf")},
    "a field of 400 digits": {"f_count": 10**400},
    "a negative RTT": {"f_rtt_p50_ms": -5.0},
    "a loss of 150 %": {"f_loss_pct": 150.0},
    "mono_s of Infinity": {"mono_s": float("inf")},
    "duration_ms of a year": {"duration_ms": 365 * 86400 * 1000.0},
    "a seq of 2^63": {"seq": 2**63},
    "a site tag of 1e400": {"s_operator": float("inf")},
}


@pytest.mark.parametrize("changes", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_number_no_store_can_hold_or_no_probe_can_measure_is_rejected_not_raised(changes: dict[str, Any]) -> None:
    out = verdict(payload_with(**changes))  # json.dumps writes inf as the literal Infinity: malformed
    assert isinstance(out, Rejected) and out.kind in (INVALID, MALFORMED) and out.why, out


def test_mono_s_of_infinity_is_rejected_as_the_issue_suspected() -> None:
    data = payload_with()
    raw = json.dumps(data).replace('"mono_s": 1000.0', '"mono_s": 1e400').encode()
    assert b"1e400" in raw
    out = verdict(data, raw)
    assert isinstance(out, Rejected) and out.kind == INVALID and "out of range" in out.why


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_not_json(literal: str) -> None:
    data = payload_with()
    raw = json.dumps(data).replace('"loss_pct": 0.0', f'"loss_pct": {literal}').encode()
    out = verdict(data, raw)
    assert isinstance(out, Rejected) and out.kind == MALFORMED, out


@pytest.mark.parametrize(
    "changes",
    [
        {"target": "1.1.1.1\x00"},
        {"ok": False, "error": {"code": "timeout", "message": "no\x00reply"}},
        {"f_note": "a\x00b"},
        {"s_desa": "Balai\x00Agung"},
        {"f_note": "\ud800 lone surrogate"},
    ],
    ids=["target", "error message", "field text", "site text", "lone surrogate"],
)
def test_text_a_database_cannot_hold_is_rejected(changes: dict[str, Any]) -> None:
    out = verdict(payload_with(**changes))
    assert isinstance(out, Rejected) and out.kind == INVALID, out


def test_the_bounds_keep_every_plausible_reading() -> None:
    edge = payload_with(
        s_lat=-90.0, s_lon=180.0, f_bytes_used=9_000_000_000, f_loss_pct=100.0, f_rtt_p50_ms=0.0,
        f_offset=-(2**63), f_big=2**63 - 1, f_delta_ms=-3.5, f_note="x" * 512, duration_ms=0.0, mono_s=0.0,
    )  # fmt: skip
    assert isinstance(verdict(edge), Record)


def stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_a_synced_reading_from_the_future_is_rejected() -> None:
    for ts in ("9999-12-31T23:59:59.000Z", stamp(time.time() + 3600)):
        out = verdict(payload_with(ts=ts, clock_synced=True))
        assert isinstance(out, Rejected) and out.kind == FUTURE, out
    assert isinstance(verdict(payload_with(ts=stamp(time.time() + 60), clock_synced=True)), Record)  # clock skew


def test_an_unsynced_reading_from_the_future_is_dated_as_received() -> None:
    before = time.time()
    out = verdict(payload_with(ts="9999-12-31T23:59:59.000Z", clock_synced=False))
    assert isinstance(out, Record) and before <= out.ts <= time.time()
    past = payload_with(ts="2001-01-01T00:00:00Z", clock_synced=False)  # a Pi's saved clock: kept, re-dated later
    out = verdict(past)
    assert isinstance(out, Record) and out.ts == 978307200.0


def test_a_status_from_the_future_carries_no_time() -> None:
    topic = f"netprobe/sekayu/balai-agung/{NODE}/status"
    out = check_message(topic, json.dumps({"state": "online", "ts": "9999-01-01T00:00:00Z"}).encode())
    assert isinstance(out, Status) and out.ts is None


def test_a_rejection_reason_holds_no_control_characters() -> None:
    data = payload_with(schema="\x1b[2J\x1b]0;pwned\x07")
    out = verdict(data)
    assert isinstance(out, Rejected)
    assert out.why.isprintable() and "\\x1b" in out.why


def test_a_topic_whose_node_is_not_a_node_id_is_rejected() -> None:
    out = check_message("netprobe/sekayu/balai-agung/\x1b[2J/status", json.dumps({"state": "online"}).encode())
    assert isinstance(out, Rejected) and out.kind == BAD_TOPIC and out.node.isprintable()


def test_a_nodes_delivery_health_in_its_status_reaches_the_store() -> None:
    """The office must see a node whose Readings are never confirmed (issue 15): keep those keys."""
    import json as _json

    from agent.reading.validate import Status, check_message

    body = {"state": "online", "node": "muba-sekayu-balai-agung-01", "sent": 12, "unconfirmed_s": 650,
            "delivery": "not_confirmed", "data_mb": 3.5, "data_level": "full", "evil": "x" * 10}  # fmt: skip
    out = check_message("netprobe/sekayu/balai-agung/muba-sekayu-balai-agung-01/status", _json.dumps(body).encode())
    assert isinstance(out, Status)
    assert {k: out.info[k] for k in ("sent", "unconfirmed_s", "delivery", "data_mb")} == {
        "sent": 12, "unconfirmed_s": 650, "delivery": "not_confirmed", "data_mb": 3.5}  # fmt: skip
    assert "evil" not in out.info
