"""Fuzz: generated payloads against the real collector process, generated configs against check-config's loader.

Issue 12's acceptance run. Payloads are generated in-process with hypothesis (mutated Readings,
hostile numbers and text, raw edits of the JSON, random bytes, statuses, spoofed and odd topics),
published in bulk through a real Mosquitto to `netprobe collect` on SQLite and on PostgreSQL,
followed by known-good Readings. The run must end with the collector still up, every message
consumed, no traceback, no row the database refused, and every good Reading stored.

Configs are generated as TOML text and loaded with `load_config` (what `check-config` runs),
a few through the real `netprobe check-config` process. A config is either refused with
problems (exit 78) or accepted with values a node can run on.

Sizes: FUZZ_PAYLOADS (default 2000) and FUZZ_CONFIGS (default 2000); FUZZ_SEED repeats a run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from agent import probes
from agent.collector.store import open_store
from agent.config import ConfigError, load_config
from agent.probes.throughput import budget_of
from agent.reading import contract
from tests.fixtures.collector import ROOT, Publisher, reading, split_pg, topic_for, wait_until

PAYLOADS = int(os.environ.get("FUZZ_PAYLOADS", "2000"))
CONFIGS = int(os.environ.get("FUZZ_CONFIGS", "2000"))
SEED = int(os.environ.get("FUZZ_SEED", str(random.randrange(2**32))))
GOOD = 50
NODE = "muba-sekayu-balai-agung-01"
GOOD_NODE = "muba-fuzz-good-01"


def generate(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """`n` values of `strategy`, drawn in-process (hypothesis as a generator, not as a test runner)."""
    out: list[Any] = []

    @seed(SEED)
    @settings(
        max_examples=n, database=None, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


# -- payloads ---------------------------------------------------------------------

any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=80)  # NUL, controls, surrogates
long_text = st.text(max_size=3000)
numbers = (
    st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.sampled_from([2**63 - 1, 2**63, -(2**63) - 1, 10**19, 1e30, -1e30, 1e308, 0.0, -0.0, 5e-324])
)
scalars = st.none() | st.booleans() | numbers | any_text | long_text
json_values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(any_text, c, max_size=4), max_leaves=8
)
FIELD_NAMES = ["sent", "received", "loss_pct", "rtt_p50_ms", "connect_p50_ms", "jitter_ms", "bytes_used",
               "download_mbps", "upload_mbps", "confidence", "link_type", "hops", "delta_ms"]  # fmt: skip
TOP_KEYS = ["schema", "id", "node", "site", "seq", "measurement", "target", "ts", "clock_synced", "mono_s", "boot",
            "duration_ms", "ok", "error", "fields"]  # fmt: skip
SITE_KEYS = ["kabupaten", "kecamatan", "desa", "lat", "lon", "operator"]
TIMES = st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z", "2026-11-28",
                         "2026-11-28T10:00:00.5+07:00", "now", ""])  # fmt: skip

mutation = st.one_of(
    st.tuples(st.just("top"), st.sampled_from(TOP_KEYS) | any_text, json_values | TIMES),
    st.tuples(st.just("field"), st.sampled_from(FIELD_NAMES) | any_text, json_values),
    st.tuples(st.just("site"), st.sampled_from(SITE_KEYS) | any_text, json_values),
    st.tuples(st.just("drop"), st.sampled_from(TOP_KEYS), st.none()),
    st.tuples(st.just("many"), st.integers(min_value=60, max_value=120), st.none()),
)
RAW_EDITS = ["400 digits", "1e999", "-1e999", "NaN", "Infinity", "\\u0000", "\\ud800", "truncate", "nest", "pad"]


@dataclasses.dataclass
class Fuzzed:
    kind: str  # reading, status, bytes
    topic_kind: str  # own, spoofed, odd
    mutations: list[Any]
    raw_edit: str
    odd_levels: list[str]
    blob: bytes


def odd_level() -> st.SearchStrategy[str]:
    return st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="+#/"), max_size=150)


fuzzed = st.builds(
    Fuzzed,
    st.sampled_from(["reading"] * 8 + ["status", "bytes"]),
    st.sampled_from(["own"] * 6 + ["spoofed", "odd"]),
    st.lists(mutation, max_size=4),
    st.sampled_from([""] * 6 + RAW_EDITS),
    st.lists(odd_level(), min_size=4, max_size=4),
    st.binary(max_size=200),
)


def apply(data: dict[str, Any], muts: list[Any], rng: random.Random) -> dict[str, Any]:
    for what, key, value in muts:
        if what == "top":
            data[key] = value
        elif what == "drop":
            data.pop(key, None)
        elif what == "many":
            if isinstance(data.get("fields"), dict):
                data["fields"].update({f"f{i}": i for i in range(key)})
        else:
            part = "fields" if what == "field" else "site"
            if isinstance(data.get(part), dict):
                data[part][key] = value
    return data


def edit(text: str, how: str, rng: random.Random) -> str:
    numbers = [m.span() for m in re.finditer(r"(?<![\w.])-?\d+(\.\d+)?(e[+-]?\d+)?", text)]
    strings = [m.span() for m in re.finditer(r'"[^"\\]*"', text)]
    if how in ("400 digits", "1e999", "-1e999", "NaN", "Infinity") and numbers:
        a, b = rng.choice(numbers)
        return text[:a] + {"400 digits": "9" * 400}.get(how, how) + text[b:]
    if how in ("\\u0000", "\\ud800") and strings:
        a, b = rng.choice(strings)
        return text[: b - 1] + how + text[b - 1 :]
    if how == "truncate":
        return text[: rng.randrange(len(text) + 1)]
    if how == "nest":
        return "[" * 30_000 + "]" * 30_000  # deeper than json can recurse, within the size limit
    if how == "pad":
        return text[:-1] + ',"pad":"' + "x" * 70_000 + '"}'
    return text


def serialize(item: Fuzzed, rng: random.Random) -> tuple[str, bytes]:
    base = reading(NODE, rng.randrange(1, 10**6))
    topic = topic_for(base)
    spoofed = topic_for(base, node="muba-lais-tanjung-agung-01")
    if item.kind == "bytes":
        payload = item.blob
    elif item.kind == "status":
        status: dict[str, Any] = {"state": rng.choice(["online", "offline", "asleep"]), "node": NODE}
        payload = json.dumps(apply(status, [("top", *m[1:]) for m in item.mutations], rng)).encode()
    else:
        text = json.dumps(apply(base, item.mutations, rng))  # NaN and infinities come out as literals
        payload = edit(text, item.raw_edit, rng).encode("utf-8", "surrogatepass")
    if item.kind == "status":
        topic = topic.rsplit("/", 1)[0] + "/status"
    if item.topic_kind == "spoofed":
        topic = spoofed
    elif item.topic_kind == "odd":
        topic = "netprobe/" + "/".join(item.odd_levels)
    return topic, payload


@pytest.fixture(scope="module")
def payloads() -> list[tuple[str, bytes]]:
    rng = random.Random(SEED)
    items = generate(fuzzed, PAYLOADS)
    assert len(items) == PAYLOADS
    return [serialize(item, rng) for item in items]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"path": str(tmp_path / "collector.db"), "busy_timeout_s": 5.0}
    dsn, schema = split_pg(request.getfixturevalue("pg_dsn"))
    return {"dsn": dsn, "pg_schema": schema}


def test_fuzzed_payloads_never_stop_the_collector_nor_cost_a_good_reading(
    mosquitto: Any, collector_proc: Any, store_settings: dict[str, Any], payloads: list[tuple[str, bytes]]
) -> None:
    broker = mosquitto(extra="max_queued_messages 0\n")  # the broker keeps every message for the collector
    col = collector_proc(broker.url, store_settings)
    assert col.wait_log("subscribed to"), col.log()
    pub = Publisher(broker.url)
    for i in range(0, len(payloads), 500):
        pub.publish_all(payloads[i : i + 500], timeout=60)
    good = [reading(GOOD_NODE, seq) for seq in range(1, GOOD + 1)]
    pub.publish_all([(topic_for(r), json.dumps(r).encode()) for r in good])
    pub.close()

    store = open_store(
        store_settings.get("dsn", ""), store_settings.get("path", ""), store_settings.get("pg_schema", "x")
    )
    ids = [r["id"] for r in good]
    marks = ", ".join(["?"] * len(ids))

    def stored() -> int:
        return int(store.query(f"SELECT COUNT(*) FROM readings WHERE id IN ({marks})", ids)[0][0])

    assert wait_until(lambda: stored() == GOOD, 60), (stored(), col.log()[-3000:])
    alive = col.running()
    code = col.stop()
    log = col.log()
    received = int(re.findall(r"received (\d+), stored", log)[-1])
    rejects = store.rejects()
    summary = f"seed {SEED}: {len(payloads)} payloads, received {received}, rejects {rejects}"
    print(summary)
    assert alive and code == 0, summary + "\n" + log[-3000:]
    assert "Traceback" not in log and "internal error" not in log and "failed:" not in log, log[-3000:]
    assert received == len(payloads) + GOOD, summary  # every message consumed and acknowledged
    assert rejects.get("unstorable", 0) == 0, summary + str(store.reject_samples(5))  # the checks caught them all
    assert stored() == GOOD
    store.close()
    for args in ([], ["--json"], ["--html", str(col.conf.parent / "fleet.html")]):  # and the report reads it all
        r = subprocess.run(
            [sys.executable, "-m", "agent", "fleet", "-c", str(col.conf), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)
        assert "\x1b" not in r.stdout


# -- configs ----------------------------------------------------------------------

KINDS = sorted(probes.registry())
toml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
toml_numbers = (
    st.integers(min_value=-5, max_value=100_000)
    | st.floats(min_value=-10, max_value=1e5)
    | st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, 1e12, 1e13, 10**40, -(10**40), 0, 0.0])
)
toml_any = st.recursive(
    st.booleans() | toml_numbers | toml_text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
    max_leaves=6,
)
SECTIONS = {
    "node": ["id", "state_dir"],
    "site": ["kabupaten", "kecamatan", "desa", "lat", "lon", "tags"],
    "spool": ["max_rows", "max_mb"],
    "mqtt": ["keepalive", "max_inflight", "replay_rate", "reconnect_min", "reconnect_max", "status_interval", "qos"],
    "throughput": ["enabled", "monthly_budget_mb", "daily_budget_mb", "reset_day", "diagnose_max_mb"],
    "daemon": ["host_interval", "splay", "jitter"],
    "linktype": ["observe_s", "rate_hz", "idle_max_kbps", "confirm_s", "asn"],
}
TARGET_KEYS = ["interval", "timeout", "name", "count", "packet_interval", "port", "max_mb", "max_seconds", "role"]


def section(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    tags = st.dictionaries(st.sampled_from(SITE_KEYS) | st.text(max_size=70), toml_text, max_size=70)
    value = toml_numbers | toml_text | st.booleans() | tags | toml_any
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=12), value, max_size=len(keys) + 1)


target = st.fixed_dictionaries(
    {"kind": st.sampled_from(KINDS) | toml_text, "target": st.sampled_from(["1.1.1.1", "gateway", ""]) | toml_text},
    optional={k: toml_numbers | toml_text for k in TARGET_KEYS},
)
configs = st.fixed_dictionaries(
    {}, optional={**{name: section(keys) for name, keys in SECTIONS.items()}, "targets": st.lists(target, max_size=3)}
)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_str(key)


def toml_str(s: str) -> str:
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml_dumps(data: dict[str, Any]) -> str:
    lines = []
    for name, table in data.items():
        if name == "targets":
            for t in table:
                lines.append("[[targets]]")
                lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in t.items()]
        else:
            lines.append(f"[{name}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def numbers_in(value: Any) -> list[float]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [n for f in dataclasses.fields(value) for n in numbers_in(getattr(value, f.name))]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in numbers_in(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def runnable(path: str) -> Callable[[], Any]:
    """What a node does with a config it accepted; any exception is a finding."""

    def check() -> None:
        cfg = load_config(path)
        assert all(math.isfinite(n) and abs(n) <= 1e12 for n in numbers_in(cfg)), cfg
        assert contract.site_problem(cfg.site.as_dict()) is None
        assert contract.NODE_ID_RE.match(cfg.node.resolved_id())
        for t in cfg.targets:
            assert t.target.strip() and contract.text_problem(t.target, contract.MAX_TARGET) is None
        assert 0 <= int(cfg.spool.max_mb * 1e6) <= contract.INT_MAX
        budget_of(cfg.throughput)

    return check


def test_fuzzed_configs_are_refused_with_problems_or_accepted_runnable(tmp_path: Path) -> None:
    items = generate(configs, CONFIGS)
    assert len(items) == CONFIGS
    accepted = refused = 0
    samples: list[Path] = []
    for i, data in enumerate(items):
        path = tmp_path / f"c{i % 50}.toml"
        path.write_text(toml_dumps(data), encoding="utf-8")
        try:
            runnable(str(path))()
            accepted += 1
        except ConfigError as exc:
            assert exc.problems and all(str(p) for p in exc.problems)
            refused += 1
        if i < 6:
            keep = tmp_path / f"process{i}.toml"
            keep.write_text(path.read_text())
            samples.append(keep)
    print(f"seed {SEED}: {CONFIGS} configs, {accepted} accepted, {refused} refused")
    assert accepted and refused  # both sides were exercised
    for path in samples:  # and the real command agrees
        r = subprocess.run(
            [sys.executable, "-m", "agent", "check-config", str(path)], cwd=ROOT, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert r.returncode in (0, 78), (r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr


def test_the_fuzzers_hostile_payloads_are_really_hostile(payloads: list[tuple[str, bytes]]) -> None:
    """A fuzz run that only sent valid Readings would prove nothing: most must be rejected, some accepted."""
    from agent.reading.validate import Record, Rejected, check_message

    verdicts = [check_message(t, p) for t, p in payloads]
    kinds = {v.kind for v in verdicts if isinstance(v, Rejected)}
    assert {"malformed", "invalid", "spoofed", "bad_topic"} <= kinds, kinds
    assert sum(isinstance(v, Record) for v in verdicts) >= len(payloads) // 20
    assert sum(isinstance(v, Rejected) for v in verdicts) >= len(payloads) // 2
