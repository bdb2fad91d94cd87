"""The path probe's scapy half, run as a short-lived child: `python -m agent.probes._path_worker JSON`.

scapy costs 45-80 MB and over a second to import; in a child process that
memory goes back to the system when the trace ends, so the daemon never
carries it. Prints one JSON object on stdout: {"hops": [...], "reached": ...,
"pmtu": ..., "peak_rss_kb": ...} or {"error": {"code": ..., "message": ...}}.

Paris traceroute: every probe of a run has the same flow identifier (the
fields per-flow load balancers hash), so all probes follow one path:
- ICMP: constant type, code and checksum; the sequence varies and the
  identifier moves the other way so that their sum (and the checksum) stays put;
- UDP and TCP: constant addresses and ports.
Probes are told apart by the IP ID (quoted back in ICMP errors), plus the
ICMP sequence or the TCP sequence number.
"""

from __future__ import annotations

import json
import os
import random
import resource
import socket
import sys
import time
from typing import Any, Optional

WINDOW_TTLS = 6  # TTLs probed at once; stop after the window that reached the target
MIN_PMTU = 576


def build_probe(mode: str, dst: str, ttl: int, q: int, flow: dict[str, int], size: int = 0, df: bool = False) -> Any:
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.packet import Raw

    ip_id = (flow["ip_id"] + ttl * 16 + q) & 0xFFFF
    ip = IP(dst=dst, ttl=ttl, id=ip_id, flags="DF" if df else 0)
    seq = ttl * 16 + q
    if mode == "icmp":
        # id + seq constant (mod 0xFFFF) keeps the ICMP checksum, the "ports" of ICMP, constant
        layer = ICMP(type=8, id=(flow["icmp_sum"] - seq) % 0xFFFF, seq=seq)
        payload = Raw(b"\x00" * max(0, size - 28)) if size else Raw(b"netprobe")
        return ip / layer / payload
    if mode == "udp":
        return ip / UDP(sport=flow["sport"], dport=flow["dport"]) / Raw(b"\x00" * 12)
    return ip / TCP(sport=flow["sport"], dport=flow["dport"], flags="S", seq=flow["tcp_seq"] + seq * 4096)


def classify_answer(mode: str, dst: str, reply: Any) -> tuple[str, bool]:
    """(responder, reached the destination?) for one answer."""
    from scapy.layers.inet import ICMP, IP, TCP

    src = reply[IP].src
    if reply.haslayer(ICMP):
        icmp = reply[ICMP]
        if icmp.type == 0:
            return src, True
        if icmp.type == 3:  # unreachable: the target (port) or a router refusing
            return src, src == dst
        return src, False  # 11: time exceeded
    if reply.haslayer(TCP):
        return src, True
    return src, src == dst


def trace(dst: str, mode: str, queries: int, max_ttl: int, wait: float, port: int) -> tuple[list[dict], bool]:
    from scapy.config import conf
    from scapy.sendrecv import sr

    conf.verb = 0
    conf.checkIPID = True  # match quoted errors to the exact probe by IP ID
    rng = random.Random()
    flow = {
        "ip_id": rng.randint(0, 0xFFFF),
        "icmp_sum": rng.randint(0x1000, 0xFFFF),
        "sport": rng.randint(33000, 60000),
        "dport": port or (33434 if mode == "udp" else 443),
        "tcp_seq": rng.randint(0, 2**31),
    }
    per_ttl: dict[int, dict[str, Any]] = {}
    reached = False
    first = 1
    while first <= max_ttl and not reached:
        last = min(max_ttl, first + WINDOW_TTLS - 1)
        probes = [build_probe(mode, dst, ttl, q, flow) for ttl in range(first, last + 1) for q in range(queries)]
        answered, _ = sr(probes, timeout=wait, verbose=0)
        for sent, reply in answered:
            src, is_dst = classify_answer(mode, dst, reply)
            rtt = max(0.0, (float(reply.time) - float(sent.sent_time or 0.0)) * 1000.0)
            hop = per_ttl.setdefault(sent.ttl, {"rtts": [], "addresses": [], "dest": False})
            hop["rtts"].append(rtt)
            if src not in hop["addresses"]:
                hop["addresses"].append(src)
            hop["dest"] = hop["dest"] or is_dst
        for ttl in range(first, last + 1):
            if per_ttl.get(ttl, {}).get("dest"):
                reached = True
                last = ttl
                break
        first = last + 1
    hops = []
    # probes beyond the target's distance reach it too: report it once, at its own distance
    at_dst = [t for t, h in per_ttl.items() if h["dest"]]
    end = min(at_dst) if at_dst else max(per_ttl, default=0)
    for ttl in range(1, end + 1):
        h = per_ttl.get(ttl)
        if h is None:
            hops.append({"ttl": ttl, "address": "", "addresses": [], "rtt_min_ms": None, "replies": 0})
            continue
        hops.append(
            {
                "ttl": ttl,
                "address": h["addresses"][0],
                "addresses": h["addresses"],
                "rtt_min_ms": round(min(h["rtts"]), 3),
                "replies": len(h["rtts"]),
            }
        )
    return hops, reached


def interface_mtu(dst: str) -> int:
    from scapy.config import conf

    iface = conf.route.route(dst)[0]
    name = getattr(iface, "name", iface)
    try:
        with open(f"/sys/class/net/{name}/mtu") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1500


def df_probe(dst: str, size: int, wait: float) -> tuple[str, Optional[int]]:
    """One DF echo of `size` bytes: ("ok", None), ("too_big", next-hop MTU or None) or ("lost", None)."""
    from scapy.layers.inet import ICMP
    from scapy.sendrecv import sr1

    flow = {"ip_id": random.randint(0, 0xFFFF), "icmp_sum": random.randint(0x1000, 0xFFFF)}
    probe = build_probe("icmp", dst, 64, random.randint(0, 15), flow, size=size, df=True)
    try:
        reply = sr1(probe, timeout=wait, verbose=0)
    except OSError:  # larger than the local interface allows
        return "too_big", None
    if reply is None or not reply.haslayer(ICMP):
        return "lost", None
    icmp = reply[ICMP]
    if icmp.type == 0:
        return "ok", None
    if icmp.type == 3 and icmp.code == 4:
        mtu = int.from_bytes(bytes(icmp)[6:8], "big")
        return "too_big", mtu or None
    return "lost", None


def path_mtu(dst: str, wait: float) -> tuple[Optional[int], str]:
    """The largest DF packet that reaches `dst`, and how it was found."""
    size = min(interface_mtu(dst), 65535)
    for _ in range(4):  # follow "fragmentation needed" hints downwards
        result, hint = df_probe(dst, size, wait)
        if result == "ok":
            return size, "hint" if size != min(interface_mtu(dst), 65535) else "interface"
        if result == "too_big" and hint and MIN_PMTU <= hint < size:
            size = hint
            continue
        break
    if df_probe(dst, MIN_PMTU, wait)[0] != "ok":
        return None, "unreachable"
    low, high = MIN_PMTU, size - 1  # a black hole: no hint came back, so search
    while low < high:
        mid = (low + high + 1) // 2
        if df_probe(dst, mid, wait)[0] == "ok":
            low = mid
        else:
            high = mid - 1
    return low, "search"


def reverse_names(addresses: list[str], budget_s: float = 2.0) -> dict[str, str]:
    from concurrent.futures import ThreadPoolExecutor, wait

    def lookup(a: str) -> str:
        try:
            return socket.gethostbyaddr(a)[0]
        except OSError:
            return ""

    pool = ThreadPoolExecutor(max_workers=8)
    futures = {a: pool.submit(lookup, a) for a in addresses}
    wait(list(futures.values()), timeout=budget_s)
    pool.shutdown(wait=False)
    return {a: f.result() for a, f in futures.items() if f.done() and f.result()}


def use_raw_socket_on_loopback(dst: str) -> None:
    """scapy < 2.6 cannot send to loopback through its packet socket; a raw IP socket can."""
    import scapy
    from scapy.config import conf
    from scapy.layers.inet import IP  # noqa: F401 - loads the routing table into conf.route
    from scapy.supersocket import L3RawSocket

    major_minor = tuple(int(p) for p in scapy.VERSION.split(".")[:2] if p.isdigit())
    iface = conf.route.route(dst)[0]
    if major_minor < (2, 6) and getattr(iface, "name", iface) == "lo":
        conf.L3socket = L3RawSocket


def main(argv: list[str]) -> int:
    t0 = time.perf_counter()
    try:
        req = json.loads(argv[0])
        dst, mode = str(req["target"]), str(req.get("mode", "icmp"))
        if mode not in ("icmp", "udp", "tcp"):
            raise ValueError(f"bad mode {mode!r}")
    except (IndexError, ValueError, KeyError) as exc:
        print(json.dumps({"error": {"code": "bad_target", "message": f"bad request: {exc}"}}))
        return 2
    try:
        use_raw_socket_on_loopback(dst)
        hops, reached = trace(
            dst, mode, int(req.get("queries", 3)), int(req.get("max_ttl", 30)), float(req.get("wait", 2.0)),
            int(req.get("port", 0)),
        )  # fmt: skip
        pmtu, how = path_mtu(dst, min(float(req.get("wait", 2.0)), 1.5)) if req.get("pmtu", True) else (None, "")
    except PermissionError:
        msg = "the path probe needs root or CAP_NET_RAW (raw and packet sockets)"
        print(json.dumps({"error": {"code": "permission", "message": msg}}))
        return 1
    except OSError as exc:
        print(json.dumps({"error": {"code": "unreachable", "message": f"cannot send: {exc}"}}))
        return 1
    if req.get("resolve"):
        names = reverse_names([h["address"] for h in hops if h["address"]])
        for h in hops:
            h["name"] = names.get(h["address"], "")
    out = {
        "hops": hops,
        "reached": reached,
        "pmtu": pmtu,
        "pmtu_method": how,
        "worker_s": round(time.perf_counter() - t0, 3),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # skip scapy's slow interpreter teardown
