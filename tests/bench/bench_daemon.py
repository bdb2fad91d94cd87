"""Daemon steady state at the default schedule: RSS and CPU of `netprobe run` over time.

The default schedule (config.DEFAULT_TARGETS: 3 icmp + 1 tcp every 60 s, 2 dns + 1 http every
300 s, host health every 300 s, splay 60 s, jitter 10 %) with every target moved to loopback
peers, publishing to a local Mosquitto. The default `link` target (every 4 h) is left out: its
look would ask the Starlink dish address, which is not loopback. Samples VmRSS and utime+stime from /proc every 10 s.

NETPROBE_BENCH_MINUTES sets the length (default 10). Targets: RSS <= 35 MB, CPU <= 1 % of a core.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from tests.fixtures.agentd import agent_toml

TICK = os.sysconf("SC_CLK_TCK")


def sample(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss_kib = int(next(line for line in f if line.startswith("VmRSS")).split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return rss_kib / 1024.0, cpu


def default_schedule_toml(state_dir, broker_url: str, tcp: str, dns: str, http: str) -> str:
    base = agent_toml(state_dir, tcp=tcp, broker=broker_url).split("[[targets]]")[0]
    base = base.replace("splay = 0\n", "").replace("host_interval = 0\n", "")
    base = base.replace("reconnect_min = 0.2\n", "").replace("reconnect_max = 1.0\n", "")
    targets = [
        ("icmp", "127.0.0.1", "gateway", ""),
        ("icmp", "127.0.0.2", "cloudflare", ""),
        ("icmp", "127.0.0.3", "google", ""),
        ("tcp", tcp, "cloudflare-tcp", ""),
        ("dns", "node.test", "dns-system", f'server = "{dns}"'),
        ("dns", "node.test", "dns-public", f'server = "{dns}"'),
        ("http", f"http://{http}/ok", "web", ""),
    ]
    for kind, target, name, extra in targets:
        base += f'[[targets]]\nkind = "{kind}"\ntarget = "{target}"\nname = "{name}"\n{extra}\n'
    return base


@pytest.mark.timeout(3600)  # the suite's 300 s limit is for tests, not for a 10-minute measurement
def test_bench_daemon_steady_state_rss_and_cpu(
    broker, subscriber, agentd, tcp_listener, dns_server, http_server, tmp_path
):
    minutes = float(os.environ.get("NETPROBE_BENCH_MINUTES", "10"))
    cfg = default_schedule_toml(
        tmp_path / "state", broker.url, tcp_listener.address, dns_server.address, http_server.address
    )
    sub = subscriber(broker, "netprobe/#")
    agent = agentd(cfg)
    pid = agent.proc.pid
    started = time.monotonic()
    samples: list[tuple[float, float, float]] = []  # (t, rss, cpu)
    while time.monotonic() - started < minutes * 60:
        time.sleep(10)
        rss, cpu = sample(pid)
        samples.append((time.monotonic() - started, rss, cpu))
    agent.stop()
    readings = [t for t, _, _ in sub.snapshot() if not t.endswith("/status")]
    assert readings, agent.stderr()

    def cpu_pct(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        return 100.0 * (b[2] - a[2]) / (b[0] - a[0])

    last_min = [s for s in samples if s[0] >= samples[-1][0] - 60]
    after_1 = [s for s in samples if s[0] >= 60] or samples
    print(f"\n== daemon at the default schedule, {minutes:g} min, {len(readings)} readings published ==")
    for t, rss, cpu in [*samples[:: max(1, len(samples) // 12)], samples[-1]]:
        print(f"  t={t:6.0f} s  RSS {rss:5.1f} MiB  CPU time {cpu:6.2f} s")
    print(
        f"  RSS: at 1 min {after_1[0][1]:.1f} MiB, end {samples[-1][1]:.1f} MiB, max {max(s[1] for s in samples):.1f} MiB, "
        f"median {statistics.median(s[1] for s in samples):.1f} MiB"
    )
    print(
        f"  CPU: whole run {cpu_pct((0.0, 0.0, 0.0), samples[-1]):.2f} % of a core (startup included), "
        f"after the first minute {cpu_pct(after_1[0], samples[-1]):.2f} %, last minute {cpu_pct(last_min[0], samples[-1]):.2f} %"
    )
