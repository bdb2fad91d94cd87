"""Wall-clock trust and a monotonic reference.

A Raspberry Pi has no real-time clock: until NTP syncs, it boots at the last
saved time. Each Reading therefore carries `clock_synced` and the boot-time
clock (`mono_s`, seconds since boot, with a short `boot` id), so a collector
can re-date readings taken before sync: within one boot, wall = mono + offset,
and any synced reading of that boot gives the offset.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import os
import time
from functools import cache
from typing import Optional

TIME_ERROR = 5  # adjtimex(2) returns this while STA_UNSYNC is set
_TIMEX_SIZE = 512  # larger than struct timex on every Linux ABI


@cache
def _libc() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name or "libc.so.6", use_errno=True)
    except OSError:
        return None


def clock_synced() -> bool:
    """True when the kernel says NTP discipline is in effect (adjtimex, read-only)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "adjtimex"):
        buf = ctypes.create_string_buffer(_TIMEX_SIZE)  # modes = 0: read only
        state = libc.adjtimex(buf)
        if state >= 0:
            return bool(state != TIME_ERROR)
    # adjtimex may be filtered by a seccomp profile: fall back to timesyncd's flag.
    return os.path.exists("/run/systemd/timesync/synchronized")


def monotonic_s() -> float:
    """Seconds since boot, counting suspend: comparable across restarts of the agent."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@cache
def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip().replace("-", "")[:8]
    except OSError:
        return ""


def iso_utc(epoch: float) -> str:
    stamp = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
