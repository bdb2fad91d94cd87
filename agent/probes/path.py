"""Path: a Paris traceroute (ICMP, UDP or TCP SYN) with notable hops and the path MTU.

scapy does the packet work in a short-lived child process
(`agent.probes._path_worker`), so the daemon never holds scapy's memory.
Per hop: the responder and the minimum RTT over `queries` probes; optionally
its reverse DNS name. Marked: the ISP's first hop (the first responder beyond
the LAN's router, by `agent.net.hops.isp_hop`, the link classifier's rule; it
may be private or CGNAT) and the first public hop (the first responder outside
RFC 1918, CGNAT 100.64/10, loopback and link-local).
The path MTU is found with DF probes; it matters on PPPoE and satellite modems.

Fields: mode, hop_count, reached, hops ("ttl:address:min_ms" per hop, "*"
where none answered, space-separated), isp_hop, isp_hop_ttl, first_public_hop,
first_public_ttl, rtt_min_ms (at the target), pmtu, pmtu_method, worker_rss_mb.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import sys
from typing import Any, Optional

from agent import optional
from agent.net import iface
from agent.net.hops import isp_hop
from agent.probes.base import Probe, ProbeContext
from agent.reading.model import BAD_TARGET, INTERNAL, NOT_INSTALLED, TIMEOUT, FieldValue, Outcome, ProbeFailure
from agent.schema import setting

log = logging.getLogger(__name__)

NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16")
)


@dataclasses.dataclass(frozen=True)
class Options:
    mode: str = setting("icmp", choices=("icmp", "udp", "tcp"), help="probe packets: ICMP echo, UDP or TCP SYN")
    queries: int = setting(3, min=1, max=10, help="probes per hop; the minimum RTT is kept")
    max_ttl: int = setting(30, min=1, max=64)
    port: int = setting(0, min=0, max=65535, help="destination port; 0: 33434 (udp) or 443 (tcp)")
    pmtu: bool = setting(True, help="find the path MTU with DF probes")
    resolve_names: bool = setting(False, help="reverse DNS for every hop")
    wait: float = setting(2.0, min=0.2, max=10.0, help="seconds to wait for the answers to one round")


def is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and not any(ip in n for n in NOT_PUBLIC)


def notable_hops(hops: list[dict[str, Any]], gateway: Optional[str]) -> dict[str, Any]:
    """The ISP's first hop and the first public hop, by TTL and address (pure)."""
    out: dict[str, Any] = {"isp_hop": "", "isp_hop_ttl": None, "first_public_hop": "", "first_public_ttl": None}
    by_ttl = [""] * max((h["ttl"] for h in hops), default=0)
    for h in hops:
        by_ttl[h["ttl"] - 1] = h.get("address") or ""
    isp = isp_hop(by_ttl, gateway)
    if isp:
        out["isp_hop_ttl"], out["isp_hop"] = isp
    public = next((h for h in hops if h.get("address") and is_public(h["address"])), None)
    if public:
        out["first_public_hop"], out["first_public_ttl"] = public["address"], public["ttl"]
    return out


def hops_text(hops: list[dict[str, Any]]) -> str:
    parts = []
    for h in hops:
        if not h.get("address"):
            parts.append(f"{h['ttl']}:*")
            continue
        name = f"({h['name']})" if h.get("name") else ""
        parts.append(f"{h['ttl']}:{h['address']}{name}:{h['rtt_min_ms']:g}")
    return " ".join(parts)


def outcome_of(result: dict[str, Any], mode: str, gateway: Optional[str]) -> Outcome:
    hops = list(result.get("hops", []))
    fields: dict[str, FieldValue] = {
        "mode": mode,
        "hop_count": len(hops),
        "reached": bool(result.get("reached")),
        "hops": hops_text(hops),
    }
    fields.update(notable_hops(hops, gateway))
    if result.get("reached") and hops:
        fields["rtt_min_ms"] = hops[-1].get("rtt_min_ms")
    fields["pmtu"] = result.get("pmtu")
    fields["pmtu_method"] = result.get("pmtu_method", "")
    fields["worker_rss_mb"] = round(int(result.get("peak_rss_kb", 0)) / 1024, 1)
    if not hops:
        return Outcome.failed(TIMEOUT, "no hop answered", **fields)
    return Outcome(ok=True, fields=fields)


async def run_worker(request: dict[str, Any], limit_s: float) -> dict[str, Any]:
    """The scapy child: JSON in on argv, JSON out on stdout; killed if it overstays."""
    # The child finds this very `agent` package, wherever it is installed (/usr/lib/netprobe on a node).
    home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [home, os.environ.get("PYTHONPATH")])))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent.probes._path_worker",
        json.dumps(request),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise ProbeFailure(TIMEOUT, f"the trace did not finish within {limit_s:g} s") from None
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}, no output"]
    try:
        result = dict(json.loads(out.decode() or "{}"))
    except ValueError:
        raise ProbeFailure(INTERNAL, f"path worker failed: {tail[0]}") from None
    if proc.returncode != 0 and not result.get("error"):  # it died: not "no hop answered"
        raise ProbeFailure(INTERNAL, f"path worker failed: {tail[0]}")
    error = result.get("error")
    if error:
        raise ProbeFailure(str(error.get("code", INTERNAL)), str(error.get("message", "path worker failed")))
    return result


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    why = optional.missing_message(optional.SCAPY)
    if why:  # the lean install leaves scapy out: say what to add, before any packet or child
        return Outcome.failed(NOT_INSTALLED, why)
    address, _ = await iface.resolve(target, 3.0)
    if ":" in address:
        raise ProbeFailure(BAD_TARGET, "the path probe traces IPv4 targets only")
    request = {
        "target": address,
        "mode": options.mode,
        "queries": options.queries,
        "max_ttl": options.max_ttl,
        "wait": options.wait,
        "port": options.port,
        "pmtu": options.pmtu,
        "resolve": options.resolve_names,
    }
    result = await run_worker(request, max(timeout, 5.0))
    return outcome_of(result, options.mode, iface.default_gateway())


PROBE = Probe(
    kind="path",
    summary="Paris traceroute (icmp/udp/tcp) with ISP and public hops and the path MTU",
    options=Options,
    run=run,
    interval_s=6 * 3600.0,
    timeout_s=60.0,
    heavy=True,
)
