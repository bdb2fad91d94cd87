"""The `metered` profile answers the regency's questions as the default schedule does, on the same links.

What link is it: the metered link look (90 s of 1-Hz paired pings, its real size) and the default look
(5 Hz, shortened to 10 s as tests/linktype/test_emulated_links.py proves enough) give the same link type
on a fiber and a GEO testbed. Is the desa online or dark: each profile's own ICMP target settings (3 echoes
of 16 bytes, 5 of 56) give the fleet view the same verdict on the same link, up and with its uplink dead.
Both testbeds are observed at once (about 100 s).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import pytest

from agent.collector import fleet
from tests import testbed as emu
from tests.fixtures.testbed import testbed_unavailable as why_no_testbed

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

LOOKS = {  # profile -> link probe options
    "default": ["observe_s=10", "promo_trials=0"],  # at [linktype] rate_hz's default, 5 Hz
    "metered": ["observe_s=90", "promo_trials=0"],  # at the profile's 1 Hz (the config below)
}
PINGS = {"default": ["count=5", "payload_size=56"], "metered": ["count=3", "payload_size=16"]}
EXPECTED = {"fiber": "fiber", "geo": "satellite-geo"}


def agent(tb: emu.Testbed, argv: list[str], profile: str) -> dict[str, Any]:
    conf = f"{tb.workdir}/{profile}.toml"
    with open(conf, "w") as f:
        f.write(f'[daemon]\nprofile = "{profile}"\n[linktype]\ndish = ""\n[node]\nstate_dir = "{tb.workdir}/state"\n')
    result = tb.exec(tb.node_ns, ["env", f"NETPROBE_CONFIG={conf}", sys.executable, "-m", "agent", *argv, "--json"],
                     timeout=200, check=False)  # fmt: skip
    return dict(json.loads(result.stdout)) if result.stdout.strip() else {"stderr": result.stderr}


def ping(tb: emu.Testbed, target: str, profile: str) -> dict[str, Any]:
    argv = ["probe", "icmp", target]
    for o in PINGS[profile]:
        argv += ["-o", o]
    return agent(tb, argv, profile)


def observe(name: str, out: dict[str, Any]) -> None:
    try:
        with emu.Testbed(emu.PROFILES[name], seed=190) as tb:
            got: dict[str, Any] = {}
            for profile, options in LOOKS.items():  # one after the other: a look's echoes are the other's traffic
                argv = ["probe", "link", tb.server_ip]
                for o in options:
                    argv += ["-o", o]
                got[("link", profile)] = agent(tb, argv, profile)
            for profile in PINGS:
                got[("up", profile)] = [ping(tb, tb.gateway_ip, profile), ping(tb, tb.server_ip, profile)]
            tb.set_profile(emu.PROFILES["dead-uplink"])
            for profile in PINGS:
                got[("dead", profile)] = [ping(tb, tb.gateway_ip, profile), ping(tb, tb.server_ip, profile)]
            out[name] = got
    except Exception as exc:  # reported by the tests that read it
        out[name] = {"error": repr(exc)}


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    reason = why_no_testbed()
    if reason:
        pytest.skip(reason)
    out: dict[str, Any] = {}
    threads = [threading.Thread(target=observe, args=(name, out)) for name in EXPECTED]
    for t in threads:
        t.start()
    for t in threads:
        t.join(400)
    return out


def of(seen: dict[str, Any], name: str) -> dict[Any, Any]:
    got = seen.get(name, {"error": "did not finish"})
    assert "error" not in got, got["error"]
    return dict(got)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_metered_link_look_finds_the_same_link_type(seen: dict[str, Any], name: str) -> None:
    got = of(seen, name)
    verdicts = {p: got[("link", p)].get("fields", {}).get("link_type") for p in LOOKS}
    print(f"\n{name}: " + ", ".join(f"{p} {got[('link', p)].get('fields', {}).get('evidence')}" for p in LOOKS))
    assert verdicts == {"default": EXPECTED[name], "metered": EXPECTED[name]}, got
    metered, default = got[("link", "metered")]["fields"], got[("link", "default")]["fields"]
    print(f"{name}: confidence default {default['confidence']}, metered {metered['confidence']}")
    assert metered["samples"] >= 85 and metered["confidence"] >= default["confidence"] - 0.05


def view(readings: list[dict[str, Any]]) -> fleet.NodeView:
    """The fleet view of a node whose latest Readings are these: the gateway's, then the public target's."""
    targets = ["gateway", "public"]  # as the daemon names them: "gateway" is the default gateway
    rows = [{"node": "n", "measurement": "icmp", "target": t, "ts": 1000.0, "ok": r["ok"], "fields": r["fields"]}
            for t, r in zip(targets, readings)]  # fmt: skip
    return fleet.node_view({"node": "n", "last_seen": 1000.0}, rows, 0, 1001.0, fleet.Policy())


@pytest.mark.parametrize("name", list(EXPECTED))
def test_online_and_dark_are_told_the_same_by_both_profiles(seen: dict[str, Any], name: str) -> None:
    got = of(seen, name)
    for state, dark in (("up", False), ("dead", True)):
        views = {p: view(got[(state, p)]) for p in PINGS}
        assert {p: (v.uplink, v.dark) for p, v in views.items()} == {
            p: ("gateway_only" if dark else "ok", dark) for p in PINGS
        }, got[(state, "metered")]
