"""Wall time and peak RSS of a command, median over runs.

Peak RSS comes from GNU time (`/usr/bin/time -f %M`): it forks itself, a few MB, before exec, so
the figure is the command's own. (wait4 from the test process would report at least the test
process's own RSS, which a forked child inherits as its high-water mark.)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from typing import Optional

GNU_TIME = "/usr/bin/time"


def run_measured(argv: list[str], env: Optional[dict] = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit code) of one run."""
    if not os.path.exists(GNU_TIME):
        raise RuntimeError("GNU time is missing: apt-get install time (make test installs it)")
    with tempfile.NamedTemporaryFile("r") as out:
        start = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", out.name, *argv], capture_output=True, env=env)
        wall = time.perf_counter() - start
        rss_kib = int(out.read().strip().splitlines()[-1])
    return wall, rss_kib / 1024.0, proc.returncode


def medians(argv: list[str], runs: int, env: Optional[dict] = None) -> dict[str, float]:
    samples = [run_measured(argv, env) for _ in range(runs)]
    return {
        "wall_ms": statistics.median(s[0] for s in samples) * 1000.0,
        "rss_mib": statistics.median(s[1] for s in samples),
        "rss_max_mib": max(s[1] for s in samples),
        "exit": samples[-1][2],
    }
