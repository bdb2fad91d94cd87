"""Batches (docs/data-cost.md): the wire format both ends share, packing on the node, judging at the collector.

Pure: no broker, no processes (tests/publish/test_batch_e2e.py runs real ones).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from typing import Any

import pytest

from agent.publish import batch as packing
from agent.reading import batch
from agent.reading.validate import INVALID, MALFORMED, OVERSIZED, SPOOFED, UNKNOWN_SCHEMA, Record, Rejected, check_batch
from tests.fixtures.collector import reading

NODE = "muba-sekayu-balai-agung-01"
TOPIC = f"netprobe/sekayu/balai-agung/{NODE}/batch"


def readings(n: int, node: str = NODE, **overrides: Any) -> list[dict[str, Any]]:
    return [reading(node, 100 + i, **overrides) for i in range(n)]


@dataclasses.dataclass
class Row:
    id: int
    payload: bytes
    topic: str = ""


def rows_of(items: list[dict[str, Any]]) -> list[Row]:
    return [Row(i + 1, json.dumps(r, separators=(",", ":")).encode()) for i, r in enumerate(items)]


# -- the wire format ----------------------------------------------------------------


def test_a_batch_round_trips_and_starts_with_its_marker_and_version():
    items = readings(40)
    payload = batch.encode(items)
    assert payload[:4] == b"NPB\x01"
    assert batch.decode(payload) == items


def test_forty_readings_cost_under_100_bytes_each_and_three_under_150():
    """The point of batching: ~550 bytes of JSON per Reading alone, a fraction of that together."""
    single = len(json.dumps(readings(1)[0], separators=(",", ":")))
    assert single > 400
    assert len(batch.encode(readings(40))) / 40 < 100
    assert len(batch.encode(readings(3))) / 3 < 150  # the preset dictionary: small batches compress too


def test_the_keys_every_reading_shares_are_written_once():
    items = readings(5)
    body = json.loads(batch.body(items))
    assert set(body["c"]) == {"schema", "node", "site", "boot", "clock_synced"}
    assert all("site" not in item and "node" not in item for item in body["r"])
    items[2]["site"] = {**items[2]["site"], "desa": "Other"}  # not shared any more: stays per reading
    body = json.loads(batch.body(items))
    assert "site" not in body["c"] and all("site" in item for item in body["r"])
    assert batch.decode(batch.encode(items)) == items


def test_the_dictionary_of_version_1_never_changes():
    """Batches written by older agents must stay readable: a new dictionary is a new version."""
    assert hashlib.sha256(batch.DICTIONARY).hexdigest()[:16] == DICTIONARY_V1_SHA256_16


DICTIONARY_V1_SHA256_16 = "2322d22a680bf4f1"


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b'{"schema":1}', MALFORMED),  # a single Reading's JSON on the batch topic
        (b"NPB\x02" + zlib.compress(b"{}"), UNKNOWN_SCHEMA),
        (b"NPB\x01not zlib at all", MALFORMED),
        (batch.encode([])[:-3], MALFORMED),  # cut short
        (batch.encode([]) + b"tail", MALFORMED),
        (batch.compress(b"[1,2]"), MALFORMED),
        (batch.compress(b'{"c":[],"r":[]}'), MALFORMED),
        (batch.compress(b"not json"), MALFORMED),
        (b"NPB\x01" + b"x" * (64 * 1024), OVERSIZED),
    ],
)
def test_a_message_that_is_not_a_readable_batch_is_one_rejection(payload, kind):
    with pytest.raises(batch.BatchError) as exc:
        batch.decode(payload)
    assert exc.value.kind == kind


def test_a_zip_bomb_stops_at_the_decompression_cap():
    """A few kB that inflate to gigabytes: decoding reads at most MAX_RAW_BYTES + 1 of it."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, batch.DICTIONARY)
    bomb = b"NPB\x01" + packer.compress(b'{"c":{},"r":["' + b"a" * (50 * 1024 * 1024)) + packer.flush()
    assert len(bomb) < 64 * 1024
    with pytest.raises(batch.BatchError) as exc:
        batch.decode(bomb)
    assert exc.value.kind == OVERSIZED and "decompresses to more than" in exc.value.why


def test_too_many_readings_is_oversized():
    with pytest.raises(batch.BatchError) as exc:
        batch.decode(batch.compress(json.dumps({"c": {}, "r": [{}] * 1001}).encode()))
    assert exc.value.kind == OVERSIZED


# -- the collector's verdicts ----------------------------------------------------------


def test_each_reading_of_a_batch_is_judged_alone_and_a_bad_one_costs_the_others_nothing():
    good = readings(4)
    bad_number = dict(good[1], fields={"rtt_p50_ms": 1e400})  # json.dumps writes Infinity
    spoofed = reading("another-node", 7)
    bad_schema = dict(good[3], schema=2)
    no_id = {k: v for k, v in good[0].items() if k != "id"}
    items = [good[0], bad_number, good[2], spoofed, bad_schema, no_id, "not an object"]
    raw = json.dumps({"c": {}, "r": items}, separators=(",", ":")).encode()
    verdicts = check_batch(TOPIC, batch.compress(raw))
    kinds = [v.kind if isinstance(v, Rejected) else "ok" for v, _ in verdicts]
    assert kinds == ["ok", INVALID, "ok", SPOOFED, UNKNOWN_SCHEMA, INVALID, MALFORMED]
    stored = [v for v, _ in verdicts if isinstance(v, Record)]
    assert [r.id for r in stored] == [good[0]["id"], good[2]["id"]]
    sample = verdicts[1][1]  # what the quarantine keeps of the bad one: that Reading, as JSON text
    assert good[1]["id"].encode() in sample and len(sample) < 2000


def test_a_huge_integer_or_nul_text_rejects_only_its_reading():
    good = readings(3)
    items = [good[0], dict(good[1], seq=2**70), dict(good[2], target="a\x00b")]
    raw = json.dumps({"c": {}, "r": items}).encode()
    kinds = [v.kind if isinstance(v, Rejected) else "ok" for v, _ in check_batch(TOPIC, batch.compress(raw))]
    assert kinds == ["ok", INVALID, INVALID]


def test_a_batch_on_the_wrong_topic_or_unreadable_is_one_rejection():
    verdicts = check_batch("netprobe/x/batch", batch.encode(readings(2)))
    assert len(verdicts) == 1 and verdicts[0][0].kind == "bad_topic"
    verdicts = check_batch(TOPIC, b"NPB\x01garbage")
    assert len(verdicts) == 1 and verdicts[0][0].kind == MALFORMED


# -- packing on the node ------------------------------------------------------------------


def test_packing_keeps_order_and_splits_at_the_count_and_a_change_of_site():
    items = readings(7)
    for r in items[5:]:
        r["site"] = {**r["site"], "desa": "Pindah"}  # a config reload moved the node
    batches = packing.pack(rows_of(items), max_readings=3)
    assert [b.ids for b in batches] == [(1, 2, 3), (4, 5), (6, 7)]
    assert [b.topic for b in batches][-1] == f"netprobe/sekayu/pindah/{NODE}/batch"
    decoded = [r for b in batches for r in batch.decode(b.payload)]
    assert decoded == items


def test_a_batch_stays_under_the_wire_and_raw_limits_whatever_it_holds():
    """Readings that compress badly (random text) are split until each batch fits."""
    import os

    items = readings(60)
    for r in items:
        r["fields"] = {f"f{i}": os.urandom(180).hex()[:300] for i in range(4)}
    batches = packing.pack(rows_of(items), wire_target=16 * 1024, raw_target=64 * 1024)
    assert len(batches) > 2
    assert all(len(b.payload) <= 16 * 1024 and b.raw_bytes <= 64 * 1024 for b in batches)
    assert [i for b in batches for i in b.ids] == list(range(1, 61))


def test_a_full_default_batch_fits_the_collector_and_the_broker():
    batches = packing.pack(rows_of(readings(1200)))
    assert len(batches) == 3 and sum(b.count for b in batches) == 1200  # ~190 kB of JSON each
    for b in batches:
        assert len(b.payload) < batch.MAX_WIRE_BYTES and b.raw_bytes < batch.MAX_RAW_BYTES
        assert len(batch.decode(b.payload)) == b.count


def test_a_row_that_is_not_a_reading_is_left_for_the_caller():
    rows = rows_of(readings(2))
    rows.insert(1, Row(99, b"\xff not json"))
    assert [b.ids for b in packing.pack(rows)] == [(1, 2)]


def test_a_state_change_is_urgent_and_steady_readings_are_not():
    c = packing.Changes()
    assert not c.urgent("icmp", "1.1.1.1", True, {"loss_pct": 0.0})  # the first says nothing new
    assert not c.urgent("icmp", "1.1.1.1", True, {"loss_pct": 20.0})
    assert c.urgent("icmp", "1.1.1.1", False, {"loss_pct": 100.0})  # the uplink went down
    assert not c.urgent("icmp", "1.1.1.1", False, {"loss_pct": 100.0})
    assert c.urgent("icmp", "1.1.1.1", True, {"loss_pct": 0.0})  # and came back
    assert not c.urgent("icmp", "8.8.8.8", False, {})  # another target's first
    assert c.urgent("link", "1.1.1.1", True, {"changed": True})
    assert not c.urgent("link", "1.1.1.1", True, {"changed": False})
    assert not c.urgent("dns", "google.com", False, {})
