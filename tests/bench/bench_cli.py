"""`netprobe --version` and `netprobe diagnose --json` against loopback peers: wall time and peak RSS.

Targets: --version <= 150 ms; diagnose peak RSS <= 40 MB while no throughput or path probe runs.
Run with `make bench`; the figures go to the README.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from tests.bench.measure import medians

BIN = Path(sys.executable).parent
RUNS = 15


def test_bench_version_and_diagnose(tmp_path: Path, tcp_listener: Any, dns_server: Any, http_server: Any) -> None:
    netprobe = str(BIN / "netprobe")
    baseline = medians([sys.executable, "-c", "pass"], RUNS)
    version = medians([netprobe, "--version"], RUNS)
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        '[node]\nid = "bench-node"\n'
        # The link check would trace towards a public target and ask a Starlink dish on
        # 192.168.100.1: not loopback traffic, and not a latency probe.
        "[linktype]\nenabled = false\n"
        '[[targets]]\nkind = "icmp"\ntarget = "127.0.0.1"\nrole = "gateway"\n'
        '[[targets]]\nkind = "icmp"\ntarget = "127.0.0.2"\n'
        f'[[targets]]\nkind = "tcp"\ntarget = "{tcp_listener.address}"\n'
        f'[[targets]]\nkind = "dns"\ntarget = "node.test"\nserver = "{dns_server.address}"\n'
        f'[[targets]]\nkind = "http"\ntarget = "http://127.0.0.1:{http_server.port}/ok"\n'
    )
    diagnose = medians([netprobe, "diagnose", "-c", str(cfg), "--json"], 7, env={**os.environ})
    print()
    print(f"python -c pass       : {baseline['wall_ms']:7.1f} ms  {baseline['rss_mib']:5.1f} MiB")
    print(f"netprobe --version   : {version['wall_ms']:7.1f} ms  {version['rss_mib']:5.1f} MiB  "
          f"(x{version['wall_ms'] / baseline['wall_ms']:.2f} of bare python)")  # fmt: skip
    print(f"netprobe diagnose    : {diagnose['wall_ms']:7.1f} ms  {diagnose['rss_mib']:5.1f} MiB "
          f"(max {diagnose['rss_max_mib']:.1f}), exit {diagnose['exit']}")  # fmt: skip
    assert version["exit"] == 0 and diagnose["exit"] == 0
