"""Bad settings are refused by the config check, never discovered by a running node.

Issue 12, finding 5 (NaN, infinity and huge numbers) and finding 4's config part (what the
Reading contract carries: targets, site names, tags).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError, parse_config
from agent.reading.topics import NODE_ID_RE

# The Reading contract's bounds (agent.reading.contract), as literals: this tests them, not their names.
SITE_CORE = ("kabupaten", "kecamatan", "desa", "lat", "lon")
MAX_SITE_KEYS, MAX_TAGS, INT_MAX = 64, 64 - 5, 2**63 - 1

ROOT = Path(__file__).resolve().parent.parent
NAN, INF = float("nan"), float("inf")


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(p) for p in info.value.problems]


def icmp(**keys: object) -> dict:
    return {"targets": [{"kind": "icmp", "target": "1.1.1.1", **keys}]}


NON_FINITE = {
    "interval = nan (a probe in a tight loop)": (icmp(interval=NAN), "targets[0].interval"),
    "timeout = inf": (icmp(timeout=INF), "targets[0].timeout"),
    "spool.max_mb = nan (raised at start)": ({"spool": {"max_mb": NAN}}, "spool.max_mb"),
    "monthly_budget_mb = nan (no data limit)": (
        {"throughput": {"monthly_budget_mb": NAN}},
        "throughput.monthly_budget_mb",
    ),
    "daily_budget_mb = inf": ({"throughput": {"daily_budget_mb": INF}}, "throughput.daily_budget_mb"),
    "reconnect_max = nan (no backoff)": ({"mqtt": {"reconnect_max": NAN}}, "mqtt.reconnect_max"),
    "site.lat = nan": ({"site": {"lat": NAN, "lon": 104.0}}, "site.lat"),
    "daemon.jitter = nan": ({"daemon": {"jitter": NAN}}, "daemon.jitter"),
    "linktype.idle_max_kbps = inf": ({"linktype": {"idle_max_kbps": INF}}, "linktype.idle_max_kbps"),
}


@pytest.mark.parametrize("data, path", NON_FINITE.values(), ids=NON_FINITE.keys())
def test_every_float_setting_must_be_finite(data: dict, path: str) -> None:
    found = problems(data)
    assert any(p.startswith(f"{path}: must be a finite number") for p in found), found


HUGE = {
    "interval = 1e308": (icmp(interval=1e308), "targets[0].interval"),
    "spool.max_mb = 1e300 (int overflow)": ({"spool": {"max_mb": 1e300}}, "spool.max_mb"),
    "spool.max_rows of 40 digits": ({"spool": {"max_rows": 10**40}}, "spool.max_rows"),
    "monthly_budget_mb = 1e308": ({"throughput": {"monthly_budget_mb": 1e308}}, "throughput.monthly_budget_mb"),
    "host_interval = 1e300": ({"daemon": {"host_interval": 1e300}}, "daemon.host_interval"),
}


@pytest.mark.parametrize("data, path", HUGE.values(), ids=HUGE.keys())
def test_huge_numbers_are_refused_before_they_overflow(data: dict, path: str) -> None:
    found = problems(data)
    assert any(p.startswith(f"{path}: must be at most") for p in found), found


def test_the_largest_allowed_values_still_work_where_they_are_used() -> None:
    from agent.probes.throughput import budget_of

    cfg = parse_config({"spool": {"max_mb": 1e12, "max_rows": 10**12}, "throughput": {"monthly_budget_mb": 1e12}})
    assert int(cfg.spool.max_mb * 1e6) <= INT_MAX  # the spool's byte limit, bound into SQLite
    assert budget_of(cfg.throughput).monthly_bytes == 10**18


def check_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "agent.toml"
    conf.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "agent", "check-config", str(conf)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "text, path",
    [
        ("[spool]\nmax_mb = nan\n", "spool.max_mb"),
        ('[[targets]]\nkind = "icmp"\ntarget = "1.1.1.1"\ninterval = nan\n', "targets[0].interval"),
        ("[throughput]\nmonthly_budget_mb = inf\n", "throughput.monthly_budget_mb"),
        ("[spool]\nmax_rows = 1" + "0" * 400 + "\n", "spool.max_rows"),
    ],
    ids=["max_mb nan", "interval nan", "budget inf", "400 digits"],
)
def test_check_config_exits_78_naming_the_key(tmp_path: Path, text: str, path: str) -> None:
    r = check_config(tmp_path, text)
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    assert f"{path}: must be" in r.stderr and "Traceback" not in r.stderr


# -- what every Reading carries -------------------------------------------------------


def test_a_target_over_256_characters_or_empty_is_refused() -> None:
    assert any(p.startswith("targets[0].target: must be at most 256") for p in problems(icmp(target="h" * 257)))
    assert any(p.startswith("targets[0].target: must not be empty") for p in problems(icmp(target="")))
    assert parse_config(icmp(target="h" * 256)).targets[0].target == "h" * 256


@pytest.mark.parametrize("key", ["kabupaten", "kecamatan", "desa"])
def test_site_names_over_128_characters_or_with_nul_are_refused(key: str) -> None:
    assert any(p.startswith(f"site.{key}: must be text of at most 128") for p in problems({"site": {key: "x" * 129}}))
    assert any(p.startswith(f"site.{key}: must be text") for p in problems({"site": {key: "Balai\x00Agung"}}))
    assert parse_config({"site": {key: "x" * 128}}).site.as_dict()[key] == "x" * 128


@pytest.mark.parametrize("key", SITE_CORE)
def test_a_tag_may_not_replace_a_site_key(key: str) -> None:
    found = problems({"site": {"kecamatan": "Sekayu", "tags": {key: "Elsewhere"}}})
    assert any(p.startswith("site.tags: ") and f"'{key}' is a site key" in p for p in found), found


def test_tags_are_limited_to_what_the_contract_carries() -> None:
    allowed = {f"t{i}": "v" for i in range(MAX_TAGS)}
    cfg = parse_config({"site": {"lat": -2.9, "lon": 104.0, "tags": allowed}})
    assert len(cfg.site.as_dict()) == MAX_SITE_KEYS
    found = problems({"site": {"tags": {**allowed, "one_more": "v"}}})
    assert any(p.startswith(f"site.tags: at most {MAX_TAGS} tags") for p in found), found
    assert any("tag names are 1-64 characters" in p for p in problems({"site": {"tags": {"n" * 65: "v"}}}))
    assert any("at most 256" in p for p in problems({"site": {"tags": {"operator": "v" * 257}}}))


def test_a_host_name_never_gives_a_node_id_the_collector_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "_Pi.Balai Agung_")
    node = parse_config({}).node.resolved_id()
    assert node == "pi.balai-agung" and NODE_ID_RE.match(node)


@pytest.mark.parametrize(
    "data, path",
    [
        ({"store": {"retention_days": 1e308}}, "store.retention_days"),  # the purge's cut before year 1
        ({"broker": {"session_expiry_s": 10**12}}, "broker.session_expiry_s"),  # MQTT holds four bytes
        ({"fleet": {"interval_s": NAN}}, "fleet.interval_s"),
        ({"store": {"busy_timeout_s": INF}}, "store.busy_timeout_s"),
    ],
    ids=["retention_days", "session_expiry_s", "interval_s", "busy_timeout_s"],
)
def test_the_collectors_config_is_bounded_the_same_way(data: dict, path: str) -> None:
    from agent.collector.settings import parse_collector_config

    with pytest.raises(ConfigError) as info:
        parse_collector_config(data)
    assert any(str(p).startswith(f"{path}: must be") for p in info.value.problems), info.value.problems
