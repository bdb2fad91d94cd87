"""The `speedtest` backend: speedtest-cli (Ookla's legacy HTTP protocol), imported only when it runs.

Target "auto" picks the closest speedtest.net server, digits pick a server by
id, and a URL (`http://host/speedtest/upload.php`, comma-separated for
several) skips speedtest.net altogether and tests against those legacy-protocol
servers with speedtest.net's usual settings: that is how it runs offline, and
against a regency's own `netprobe speed-server`. speedtest-cli has no byte
cap; the data budget still applies, from the last test's bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, Optional
from urllib.parse import urlsplit

from agent import optional
from agent.reading.model import BAD_TARGET, INTERNAL, NOT_INSTALLED, UNREACHABLE, ProbeFailure
from agent.throughput.echoping import ServerRtt
from agent.throughput.result import Phase

FIXED = "fixed"  # speedtest-cli ends on its own plan: all files fetched, or its 10 s

# What speedtest.net's speedtest-config.php usually says (see notes/throughput-measured.md).
LEGACY_CONFIG: dict[str, Any] = {
    "client": {"ip": "", "isp": "", "lat": "0", "lon": "0", "country": ""},
    "ignore_servers": [],
    "sizes": {
        "upload": [524288, 1048576, 7340032],
        "download": [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000],
    },
    "counts": {"upload": 17, "download": 4},
    "threads": {"upload": 2, "download": 8},
    "length": {"upload": 10, "download": 10},
    "upload_max": 51,
}


@dataclasses.dataclass(frozen=True)
class ServerChoice:
    server_id: Optional[int] = None  # None with no urls: the closest
    urls: tuple[str, ...] = ()


def choose_server(target: str) -> ServerChoice:
    target = target.strip()
    if target in ("", "auto", "closest"):
        return ServerChoice()
    if target.isdigit():
        return ServerChoice(server_id=int(target))
    urls = tuple(u.strip() for u in target.split(",") if u.strip())
    for u in urls:
        parts = urlsplit(u)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeFailure(BAD_TARGET, f"speedtest target '{u}': expected auto, a server id or an http(s) URL")
    return ServerChoice(urls=urls)


def server_entries(urls: tuple[str, ...]) -> list[dict[str, Any]]:
    """speedtest-cli's server dicts for legacy-protocol servers given by URL."""
    out = []
    for i, u in enumerate(urls):
        if not u.rstrip("/").endswith(".php"):
            u = u.rstrip("/") + "/speedtest/upload.php"
        parts = urlsplit(u)
        out.append(
            {"url": u, "id": str(i + 1), "name": parts.hostname, "sponsor": "local", "host": parts.netloc, "d": 0.0}
        )
    return out


def open_session(p: ServerChoice, timeout: float) -> Any:
    why = optional.missing_message(optional.SPEEDTEST)
    if why:
        raise ProbeFailure(NOT_INSTALLED, why)
    import speedtest as st

    if p.urls:

        class Offline(st.Speedtest):
            def get_config(self) -> Any:
                self.config.update(LEGACY_CONFIG)
                self.lat_lon = (0.0, 0.0)
                return self.config

        session = Offline(timeout=timeout)
        session.get_best_server(server_entries(p.urls))
        return session
    try:
        session = st.Speedtest(timeout=timeout, secure=True)
        session.get_servers([p.server_id] if p.server_id else None)
        session.get_best_server()
    except st.NoMatchedServers:
        raise ProbeFailure(BAD_TARGET, f"speedtest.net has no server with id {p.server_id}") from None
    except (st.ConfigRetrievalError, st.ServersRetrievalError, st.SpeedtestBestServerFailure) as exc:
        raise ProbeFailure(UNREACHABLE, f"speedtest.net cannot be reached ({type(exc).__name__}: {exc})") from None
    except st.SpeedtestException as exc:
        raise ProbeFailure(UNREACHABLE, f"speedtest.net failed: {type(exc).__name__}: {exc}") from None
    return session


async def timed(fn: Any, rtt: ServerRtt) -> tuple[float, float, list[float]]:
    """Run one speedtest-cli direction in a thread while the loaded RTT is sampled."""
    t0 = time.perf_counter()
    bps, rtts = await rtt.during(asyncio.to_thread(fn))
    return float(bps), time.perf_counter() - t0, rtts


async def measure(
    target: str, timeout: float, upload: bool = True
) -> tuple[Phase, Optional[Phase], list[float], str, str]:
    """(download, upload, idle RTTs, server, how the RTTs were measured)."""
    p = choose_server(target)
    try:
        session = await asyncio.to_thread(open_session, p, timeout)
    except ProbeFailure:
        raise
    except Exception as exc:  # speedtest-cli raises its own and urllib's errors
        raise ProbeFailure(UNREACHABLE, f"speedtest server cannot be reached: {type(exc).__name__}: {exc}") from None
    best = session.best
    parts = urlsplit(best["url"])
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    rtt = ServerRtt(host, port)
    try:
        idle = await rtt.idle()
        bps, secs, rtts = await timed(session.download, rtt)
        down = Phase(bps, int(session.results.bytes_received), secs, LEGACY_CONFIG["threads"]["download"], FIXED)
        down.loaded_rtts = rtts
        up = None
        if upload:
            bps, secs, rtts = await timed(session.upload, rtt)
            up = Phase(bps, int(session.results.bytes_sent), secs, session.config["threads"]["upload"], FIXED)
            up.loaded_rtts = rtts
    except Exception as exc:
        raise ProbeFailure(INTERNAL, f"speedtest-cli failed: {type(exc).__name__}: {exc}") from None
    finally:
        rtt.close()
    if down.bytes_moved == 0:
        raise ProbeFailure(UNREACHABLE, f"speedtest server {best['url']} sent no data")
    return down, up, idle, f"{best.get('sponsor', '')} {best['url']}".strip(), rtt.method
