"""The agent's side of the Reading contract: what leaves the runner is what the collector stores.

Issue 12, finding 4. Each Reading goes through the runner (`agent.runner.run_target`) with a
stand-in probe returning the Outcome under test, then through the collector's own check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any, Optional
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import probes
from agent.config import TargetConfig
from agent.probes.base import Probe
from agent.probes.path import outcome_of
from agent.reading.model import Identity, Outcome, ProbeError, ProbeFailure, Reading
from agent.reading.topics import DEFAULT_TOPIC, topic
from agent.reading.validate import Record, check_message
from agent.runner import run_target

NODE = "muba-sekayu-balai-agung-01"
SITE = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung"}
KINDS = sorted(probes.registry())


@contextlib.contextmanager
def probe_returning(result: Any) -> Iterator[None]:
    """Every probe kind answers with `result` (an Outcome, or an exception to raise)."""

    async def run(target: str, options: Any, timeout: float, ctx: Any) -> Outcome:
        if isinstance(result, BaseException):
            raise result
        return result

    real = probes.get

    def fake(kind: str) -> Probe:
        return Probe(kind=kind, summary="stand-in", options=real(kind).options, run=run, interval_s=60, timeout_s=5)

    with mock.patch.object(probes, "get", fake):
        yield


def run_once(result: Any, kind: str = "icmp", target: str = "1.1.1.1", site: Optional[dict] = None) -> Reading:
    with probe_returning(result):
        t = TargetConfig(kind=kind, target=target, interval=60.0, timeout=5.0, options=None)
        return asyncio.run(run_target(t, Identity(NODE, site if site is not None else SITE), seq=lambda: 7))


def collector_view(r: Reading) -> Any:
    """The collector's verdict on the Reading as the daemon would publish it."""
    return check_message(topic(DEFAULT_TOPIC, r.node, r.site, r.measurement), r.to_json().encode("utf-8"))


def test_a_path_reading_of_many_named_hops_reaches_the_collector_cut_to_the_limit() -> None:
    hops = [
        {"ttl": i, "address": f"10.{i}.{i}.{i}", "name": f"ae-{i}.core{i}.jakarta.example.net", "rtt_min_ms": 12.5 + i}
        for i in range(1, 31)
    ]
    out = outcome_of({"hops": hops, "reached": True, "pmtu": 1500}, "icmp", "10.1.1.1")
    assert len(str(out.fields["hops"])) > 512  # what the path probe writes today
    r = run_once(out, kind="path")
    assert isinstance(collector_view(r), Record)
    assert r.ok and len(r.fields["hops"]) == 512 and r.fields["hops"].endswith("…")
    assert r.fields["hops"].startswith("1:10.1.1.1(ae-1.core1.jakarta.example.net):13.5 2:")


def test_an_uncapped_error_message_is_cut_to_the_collectors_limit() -> None:
    r = run_once(ProbeFailure("unreachable", "no route: " + "x" * 3000))
    assert isinstance(collector_view(r), Record)
    assert r.error is not None and r.error["code"] == "unreachable"
    assert len(r.error["message"]) == 512 and r.error["message"].startswith("no route: xxx")


def test_a_crashing_probe_with_a_huge_message_still_leaves_a_storable_reading() -> None:
    r = run_once(RuntimeError("\x00" + "boom " * 2000))
    assert isinstance(collector_view(r), Record) and r.error is not None and r.error["code"] == "internal"


def test_numbers_no_store_holds_become_null_and_text_is_cut() -> None:
    fields = {"rtt_p50_ms": float("nan"), "loss_pct": float("inf"), "bytes_used": 10**19, "jitter_ms": -1.0,
              "count": 10**30, "sent": 5, "note": "é" * 600, "when": object()}  # fmt: skip
    r = run_once(Outcome(ok=True, fields=fields))
    assert isinstance(collector_view(r), Record)
    assert r.fields["sent"] == 5 and len(r.fields["note"]) == 512
    assert [r.fields[k] for k in ("rtt_p50_ms", "loss_pct", "bytes_used", "jitter_ms", "count")] == [None] * 5
    assert r.fields["when"].startswith("<object object at")


def test_fields_beyond_the_limit_are_dropped_and_counted() -> None:
    many = {f"if_veth{i:03d}_rx_bytes": i for i in range(90)}  # a host reading on a box with many interfaces
    r = run_once(Outcome(ok=True, fields={**many, "x" * 65: 1}))
    assert isinstance(collector_view(r), Record)
    assert len(r.fields) == 64 and r.fields["fields_dropped"] == 90 + 1 - 63
    assert r.fields["if_veth000_rx_bytes"] == 0


def test_a_reading_that_cannot_be_made_valid_becomes_a_failed_internal_reading() -> None:
    wide = {f"f{i}": "😀" * 512 for i in range(64)}  # 64 fields of 2 KiB each: over 64 KiB of JSON
    r = run_once(Outcome(ok=True, fields=wide))
    assert isinstance(collector_view(r), Record)
    assert not r.ok and r.error is not None and r.error["code"] == "internal"
    assert "broke the contract" in r.error["message"] and "65536" in r.error["message"]
    assert r.seq == 7 and r.measurement == "icmp"  # the gap-free sequence holds


def test_a_site_the_config_would_refuse_is_made_storable() -> None:
    site = {"kabupaten": "K" * 300, "kecamatan": "Sekayu\x00", "desa": "D" * 200, "lat": 1e30, "lon": 104.0,
            **{f"tag{i}": "v" for i in range(80)}}  # fmt: skip
    r = run_once(Outcome(ok=True, fields={"sent": 1}), site=site)
    assert isinstance(collector_view(r), Record)
    assert "lat" not in r.site and "lon" not in r.site and len(r.site) == 64


def test_a_valid_reading_passes_unchanged() -> None:
    out = Outcome(ok=True, fields={"sent": 5, "received": 5, "loss_pct": 0.0, "rtt_p50_ms": 24.5, "socket": "dgram"})
    r = run_once(out)
    assert r.fields == out.fields and r.site == SITE and r.target == "1.1.1.1"
    assert json.loads(r.to_json())["fields"] == out.fields


# -- every Reading any probe can produce -------------------------------------------

PROBE_FIELDS = [
    "sent", "received", "loss_pct", "rtt_p50_ms", "rtt_min_ms", "connect_p50_ms", "jitter_ms", "bytes_used",
    "download_mbps", "upload_mbps", "confidence", "link_type", "hops", "evidence", "delta_ms", "temp_c",
    "bufferbloat_ms", "if_eth0_speed_mbps", "status", "rcode", "duration_s", "fields_dropped",
]  # fmt: skip
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=700)  # NUL and lone surrogates too
numbers = st.integers() | st.floats() | st.integers(min_value=-(2**70), max_value=2**70)
values = st.none() | st.booleans() | numbers | any_text | st.lists(st.integers(), max_size=3)
names = st.sampled_from(PROBE_FIELDS) | st.text(max_size=80) | any_text


def outcome(ok: bool, fields: dict, code: Optional[str], message: str) -> Outcome:
    return Outcome(ok=ok, fields=fields, error=None if code is None else ProbeError(code, message))


outcomes = st.builds(
    outcome,
    st.booleans(),
    st.dictionaries(names, values, max_size=90),
    st.none() | st.sampled_from(["timeout", "internal", "unreachable"]) | any_text,
    any_text,
)
sites = st.fixed_dictionaries(
    {"kabupaten": any_text, "kecamatan": any_text, "desa": any_text},
    optional={"lat": numbers, "lon": numbers, "operator": values},
) | st.dictionaries(any_text, values, max_size=70)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(outcome=outcomes, kind=st.sampled_from(KINDS), target=any_text, site=st.just(SITE) | sites)
def test_every_reading_a_probe_can_produce_is_accepted_by_the_collector(
    outcome: Outcome, kind: str, target: str, site: dict
) -> None:
    r = run_once(outcome, kind=kind, target=target, site=site)
    verdict = collector_view(r)
    assert isinstance(verdict, Record), (verdict, r)
    assert r.seq == 7 and r.measurement == kind
