"""Accuracy figures for the README: the agent against the injected truth and against iputils ping.

    sudo .venv/bin/python -m tests.testbed.measure [--runs 3]

Each run builds fresh testbeds with a new seed. Errors are the agent's figure minus the truth
(or minus ping's figure), in ms or percentage points; the table gives the median and the worst
absolute value over the runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import statistics
from typing import Any, Callable

from tests.testbed import PROFILES, Direction, Testbed


def agent_fields(tb: Testbed, argv: list[str]) -> dict[str, Any]:
    return dict(tb.agent_json(argv)["fields"])


def icmp(tb: Testbed, count: int, interval: float, timeout: float = 1.5) -> dict[str, Any]:
    argv = [
        "probe",
        "icmp",
        tb.server_ip,
        "--count",
        str(count),
        "--interval",
        str(interval),
        "--timeout",
        str(timeout),
    ]
    return agent_fields(tb, argv)


def bed(name: str, seed: int, **overrides: Any) -> Testbed:
    profile = dataclasses.replace(PROFILES[name], **overrides) if overrides else PROFILES[name]
    return Testbed(profile, seed=seed)


def one_run(seed: int) -> dict[str, float]:
    out: dict[str, float] = {}
    narrow = {"down": Direction(20.0, jitter_ms=0.3), "up": Direction(20.0, jitter_ms=0.3)}
    for name, overrides, interval in (("fiber", {}, 0.02), ("geo", {}, 0.05), ("cellular", narrow, 0.02)):
        with bed(name, seed, **overrides) as tb:
            out[f"icmp median - injected RTT, {name} (ms)"] = (
                icmp(tb, 30, interval)["rtt_p50_ms"] - tb.profile.base_rtt_ms()
            )
    with bed("cellular", seed, down=Direction(20.0, jitter_ms=1.0), up=Direction(20.0, jitter_ms=1.0)) as tb:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            peer = pool.submit(tb.ping, tb.node_ns, tb.server_ip, 100, 0.01)
            ours = pool.submit(icmp, tb, 100, 0.01)
            rtts, fields = peer.result(), ours.result()
        out["agent - ping, median, 40 ms +-1 ms jitter (ms)"] = fields["rtt_p50_ms"] - statistics.median(rtts)
        out["agent - ping, mean, 40 ms +-1 ms jitter (ms)"] = fields["rtt_avg_ms"] - statistics.fmean(rtts)
    with bed("fiber", seed, down=Direction(30.0), up=Direction(10.0)) as tb:
        out["emulator: ping median - setting, 40 ms (ms)"] = (
            statistics.median(tb.ping(tb.node_ns, tb.server_ip, 50, 0.01)) - 40.0
        )
    with bed("fiber", seed, up=Direction(1.0, loss_pct=5.0), down=Direction(1.0)) as tb:
        out["loss over 500 probes - 5 % injected (points)"] = icmp(tb, 500, 0.01, 0.5)["loss_pct"] - 5.0
    with bed("fiber", seed, down=Direction(30.0, jitter_ms=0.3), up=Direction(30.0, jitter_ms=0.3)) as tb:
        tcp = agent_fields(tb, ["probe", "tcp", f"{tb.server_ip}:7", "--count", "5", "--interval", "0.1"])
        out["tcp connect - RTT 60 ms (ms)"] = tcp["connect_p50_ms"] - 60.0
        for scheme, host in (("http", tb.server_ip), ("https", "server.test")):
            url = f"{scheme}://{host}/wait/50"
            ttfb = [
                agent_fields(tb, ["probe", "http", url, "-o", f"ca_file='{tb.ca_file}'"])["ttfb_ms"] for _ in range(3)
            ]
            out[f"{scheme} ttfb - (RTT 60 + server 50 ms) (ms)"] = statistics.median(ttfb) - 110.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    runs = [one_run(seed) for seed in range(1, args.runs + 1)]
    load = f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    if args.json:
        print(json.dumps({"load": load, "runs": runs}))
        return
    print(f"{args.runs} runs, {load}\n")
    worst: Callable[[list[float]], float] = lambda xs: max(xs, key=abs)  # noqa: E731
    print(f"| figure | median error | worst of {args.runs} |\n|---|---|---|")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"| {key} | {statistics.median(values):+.2f} | {worst(values):+.2f} |")


if __name__ == "__main__":
    main()
