"""`netprobe probe link` on busy emulated cellular links, where the radio is rarely left idle.

Two cellular links (the radio sleeps after 4 s of silence here, so trials are quick) observed at
once, each well under a minute:

- traffic the node sees (another program on the Pi, in bursts): trials wait for a quiet spell in
  the interface counters, a trial that traffic interrupts is retried, and the wake-up is found;
- traffic the node cannot see (other users behind the village router) keeps the radio awake all
  the time: no trial sees a wake-up, and the verdict must still be cellular or a reasoned unknown.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import pytest

from tests import testbed as emu
from tests.fixtures.testbed import testbed_unavailable as why_no_testbed
from tests.testbed.profiles import IdlePenalty

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

BUSY_CELLULAR = emu.PROFILES["cellular"].__class__(
    **{**emu.PROFILES["cellular"].__dict__, "idle_penalty": IdlePenalty(after_s=4.0, extra_ms=80.0)}
)
OPTIONS = {
    "seen": ["observe_s=25", "promo_trials=1", "promo_idle_s=5"],
    "hidden": ["observe_s=25", "promo_trials=2", "promo_idle_s=5"],
}


def look(tb: emu.Testbed, out: dict[str, Any], name: str) -> None:
    argv = [sys.executable, "-m", "agent", "probe", "link", tb.server_ip, "--json"]
    for o in OPTIONS[name]:
        argv += ["-o", o]
    t0 = time.monotonic()
    try:
        result = tb.exec(tb.node_ns, argv, timeout=120, check=False)
        out[name] = json.loads(result.stdout) if result.stdout.strip() else {"stderr": result.stderr}
    except Exception as exc:  # reported by the test that reads it
        out[name] = {"stderr": repr(exc)}
    out[name]["wall_s"] = time.monotonic() - t0


@pytest.fixture(scope="module")
def busy() -> Any:
    reason = why_no_testbed()
    if reason:
        pytest.skip(reason)
    beds = {"seen": emu.Testbed(BUSY_CELLULAR, seed=301), "hidden": emu.Testbed(BUSY_CELLULAR, seed=302)}
    out: dict[str, Any] = {}
    try:
        for bed in beds.values():
            bed.build()
        # the Pi's own uploads: 1-s bursts of 400 kbit/s, then 5.6 s of quiet (a trial starts at 5 s and
        # the next burst cuts into it) or 7 s (room for a whole trial)
        beds["seen"].traffic(beds["seen"].node_ns, "1:5.6,1:7")
        # other users behind the router: a packet every 0.5 s, never 4 s of silence
        beds["hidden"].traffic(beds["hidden"].gw_ns, "3600:0", pps=2, size=200)
        time.sleep(1.0)
        threads = [threading.Thread(target=look, args=(bed, out, name)) for name, bed in beds.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        yield out, beds
    finally:
        for bed in beds.values():
            bed.destroy()


def fields(out: dict[str, Any], name: str) -> dict[str, Any]:
    reading = out.get(name, {})
    assert "fields" in reading, f"{name}: no Reading: {reading.get('stderr', '')[-800:]}"
    print(name, f"{reading['wall_s']:.0f} s", reading["fields"])
    return dict(reading["fields"])


def test_trials_wait_for_quiet_spells_in_the_counters_and_find_the_wake_up(busy):
    out, beds = busy
    f = fields(out, "seen")
    assert f["link_type"] == "cellular", f
    assert "idle_promotion:" in f["evidence"] and "hits=1" in f["evidence"], f
    assert beds["seen"].emulator_stats()["idle_penalties"] >= 1  # the radio did sleep before the trial
    assert out["seen"]["wall_s"] < 60


def test_a_radio_kept_awake_by_unseen_users_is_never_named_another_class(busy):
    out, beds = busy
    f = fields(out, "hidden")
    assert f["link_type"] in ("cellular", "unknown"), f
    assert "no_idle_promotion:" in f["evidence"], f  # the trials ran, and said so
    if f["link_type"] == "unknown":
        assert f["confidence"] > 0 and "scheduler_jitter" in f["evidence"], f  # reasoned: the candidates
    assert beds["hidden"].emulator_stats()["idle_penalties"] == 0  # the radio never slept
    assert out["hidden"]["wall_s"] < 60
