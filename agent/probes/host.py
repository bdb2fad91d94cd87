"""Host health: is the node itself the problem? (CPU, memory, disk, heat, interfaces, the agent.)

A Raspberry Pi in a hot balai desa throttles, its SD card fills, its Wi-Fi
interface counts errors: a "slow internet" report is sometimes a sick node.
The daemon takes this reading every `daemon.host_interval` seconds (300).

Fields (MiB = 2^20 bytes; counters are totals since boot):
cpu_pct (all cores, since the previous reading), load_1m/5m/15m, mem_total_mb,
mem_avail_mb, mem_used_pct, disk_used_pct and disk_free_mb (the file system of
the state directory), temp_c (hottest CPU/SoC thermal zone, when one exists),
uptime_s, agent_rss_mb, agent_cpu_s, and per interface `if_<name>_`
rx_bytes, tx_bytes, rx_packets, tx_packets, rx_errors, tx_errors, rx_dropped,
tx_dropped, up (bool) and speed_mbps (when the driver knows it).
Target: any label, e.g. "self".
"""

from __future__ import annotations

import asyncio
import dataclasses
import glob
import os
import re
import time
from typing import Any, Optional

from agent.probes.base import Probe, ProbeContext
from agent.reading.model import FieldValue, Outcome
from agent.schema import setting

MIB = 1024 * 1024
VIRTUAL_PREFIXES = ("lo", "veth", "docker", "br-", "virbr", "vnet", "tap", "tun", "dummy")
CPU_ZONE_HINTS = ("cpu", "soc", "x86_pkg", "package", "core")
_primed = False


@dataclasses.dataclass(frozen=True)
class Options:
    interfaces: list[str] = setting(
        factory=list, help="interfaces to report; empty = every one that is up, except loopback and virtual ones"
    )


def field_name(interface: str) -> str:
    return "if_" + re.sub(r"[^a-z0-9]+", "_", interface.lower()).strip("_")


def pick_interfaces(stats: dict[str, Any], wanted: list[str]) -> list[str]:
    if wanted:
        return [n for n in wanted if n in stats]
    return sorted(n for n, s in stats.items() if s.isup and not n.startswith(VIRTUAL_PREFIXES))


def cpu_temperature(root: str = "/sys/class/thermal") -> Optional[float]:
    """The hottest CPU-like thermal zone in degrees C, else the hottest zone, else None."""
    cpu: list[float] = []
    other: list[float] = []
    for zone in glob.glob(os.path.join(root, "thermal_zone*")):
        try:
            with open(os.path.join(zone, "type")) as f:
                kind = f.read().strip().lower()
            with open(os.path.join(zone, "temp")) as f:
                celsius = int(f.read().strip()) / 1000.0
        except (OSError, ValueError):
            continue
        (cpu if any(h in kind for h in CPU_ZONE_HINTS) else other).append(celsius)
    found = cpu or other
    return round(max(found), 1) if found else None


def existing_parent(path: str) -> str:
    path = os.path.abspath(path or "/")
    while not os.path.exists(path) and path != "/":
        path = os.path.dirname(path)
    return path


def snapshot(state_dir: str, interfaces: list[str]) -> dict[str, FieldValue]:
    import psutil  # 5.9.4 (Debian 12) or newer: only APIs both have

    fields: dict[str, FieldValue] = {"cpu_pct": round(psutil.cpu_percent(None), 1)}
    for name, value in zip(("load_1m", "load_5m", "load_15m"), os.getloadavg()):
        fields[name] = round(value, 2)
    mem = psutil.virtual_memory()
    fields.update(
        mem_total_mb=round(mem.total / MIB, 1),
        mem_avail_mb=round(mem.available / MIB, 1),
        mem_used_pct=round(100.0 * (mem.total - mem.available) / mem.total, 1),
    )
    disk = psutil.disk_usage(existing_parent(state_dir))
    fields.update(disk_used_pct=round(disk.percent, 1), disk_free_mb=round(disk.free / MIB, 1))
    temp = cpu_temperature()
    if temp is not None:
        fields["temp_c"] = temp
    fields["uptime_s"] = round(time.time() - psutil.boot_time())
    me = psutil.Process()
    times = me.cpu_times()
    fields.update(agent_rss_mb=round(me.memory_info().rss / MIB, 1), agent_cpu_s=round(times.user + times.system, 2))
    stats = psutil.net_if_stats()
    counters = psutil.net_io_counters(pernic=True)
    for name in pick_interfaces(stats, interfaces):
        c, prefix = counters.get(name), field_name(name)
        if c is not None:
            fields.update(
                {
                    f"{prefix}_rx_bytes": c.bytes_recv,
                    f"{prefix}_tx_bytes": c.bytes_sent,
                    f"{prefix}_rx_packets": c.packets_recv,
                    f"{prefix}_tx_packets": c.packets_sent,
                    f"{prefix}_rx_errors": c.errin,
                    f"{prefix}_tx_errors": c.errout,
                    f"{prefix}_rx_dropped": c.dropin,
                    f"{prefix}_tx_dropped": c.dropout,
                }
            )
        fields[f"{prefix}_up"] = bool(stats[name].isup)
        if stats[name].speed > 0:
            fields[f"{prefix}_speed_mbps"] = stats[name].speed
    return fields


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    global _primed
    import psutil

    if not _primed:  # cpu_percent(None) measures since its previous call; the first call has none
        psutil.cpu_percent(None)
        _primed = True
        await asyncio.sleep(min(0.5, timeout / 2))
    return Outcome(ok=True, fields=snapshot(ctx.state_dir or "/", list(options.interfaces)))


PROBE = Probe(
    kind="host",
    summary="host health: CPU, load, memory, disk, temperature, interfaces, the agent's own footprint",
    options=Options,
    run=run,
    interval_s=300.0,
    timeout_s=5.0,
)
