"""`netprobe diagnose` with the built-in defaults on a dead uplink: how long until the verdict.

The technician's promise is an answer within 20 s even when nothing beyond the gateway answers,
which is when every probe runs into its timeout. The node runs on the testbed's `dead-uplink`
profile (gateway answers, nothing beyond it), with the embedded default targets (1.1.1.1, 8.8.8.8,
google.com, ...): the node namespace has no route off this machine, so nothing leaves it.
Run with `make bench` (root); the figures go to the README.
"""

from __future__ import annotations

import json
import statistics
import time

import pytest

from tests.fixtures import testbed as testbed_fixture

RUNS = 3


@pytest.mark.skipif(bool(testbed_fixture.testbed_unavailable()), reason=testbed_fixture.testbed_unavailable() or "-")
def test_bench_diagnose_on_a_dead_uplink_with_the_defaults(testbed, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NETPROBE_CONFIG", str(tmp_path / "none.toml"))  # the embedded defaults
    tb = testbed("dead-uplink")
    walls, verdicts = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        proc = tb.agent(["diagnose", "--json"], timeout=60)
        walls.append(time.perf_counter() - start)
        result = json.loads(proc.stdout)
        verdicts.append((proc.returncode, result["verdict"], {c["check"]: c["status"] for c in result["checks"]}))
    print()
    print(f"diagnose, defaults, dead uplink: median {statistics.median(walls):.1f} s, max {max(walls):.1f} s "
          f"over {RUNS} runs (promise: 20 s)")  # fmt: skip
    print(f"  last verdict: exit {verdicts[-1][0]}, {verdicts[-1][1]}, {verdicts[-1][2]}")
    assert all(v[0] == 2 and v[1] == "down" for v in verdicts)
