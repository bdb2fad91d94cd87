"""The bytes one probe run sent and received across the uplink, from its Reading.

A Reading already says what the run did (echoes sent and answered, connections
made, queries asked), so its cost follows from packet sizes without touching
any probe: an ICMP echo of 56 payload bytes is 98 bytes each way with Ethernet
framing, a TCP connect-and-close about 400 bytes. A probe that knows better
says so in the field `wire_bytes` (the http probe reads its socket's TCP_INFO),
and that is used instead. Traffic that stays on the LAN (the gateway, a LAN
resolver, the dish) costs nothing; a LAN resolver's own upstream queries are
mostly answered from its cache and are not counted.

Pure, except that `Estimator` reads the routing table and resolv.conf (cached).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

from agent.usage import route, wire

ECHO_PAYLOAD = 56  # the icmp probe's default
LINK_ECHO_PAYLOAD = 16  # the link look's trains (agent.linktype.evidence.ECHO_PAYLOAD)
PROMO_ECHOES = 11  # per promotion trial
TRACE_CROSSING = 3  # a first-hop trace's echoes beyond the gateway (TTL 2.. up to the target)
TIME_EXCEEDED = wire.FRAME + wire.IP + wire.ICMP + wire.IP + wire.ICMP + LINK_ECHO_PAYLOAD  # a router's answer
DNS_ANSWER_RDATA = {"A": 4, "AAAA": 16}
TLS_FULL = 5200  # a TLS 1.3 handshake with a public certificate chain, both ways (no TCP_INFO: estimate)
HTTP_EXCHANGE = 600  # request and a short response, with TLS records
RESOLV = "/etc/resolv.conf"

Local = Callable[[str], bool]


def _num(fields: Mapping[str, Any], name: str) -> int:
    value = fields.get(name)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else 0


def _host(target: str) -> str:
    """The host of a URL, host:port or address."""
    text = re.sub(r"^[a-z]+://", "", target).split("/")[0]
    if text.startswith("["):
        return text[1:].split("]")[0]
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def _is_literal(host: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", host)) and any(c.isdigit() for c in host)


def dns_query_size(name: str) -> int:
    return 12 + len(name.strip(".")) + 2 + 4


def icmp(target: str, fields: Mapping[str, Any], options: Any, local: Local) -> int:
    if local(target):
        return 0
    payload = int(getattr(options, "payload_size", ECHO_PAYLOAD))
    return wire.icmp_echo(_num(fields, "sent"), _num(fields, "received") + _num(fields, "duplicates"), payload)


def tcp(target: str, fields: Mapping[str, Any], local: Local, error: str = "") -> int:
    if local(_host(target)):
        return 0
    answered = _num(fields, "received")
    unanswered = max(0, _num(fields, "sent") - answered)
    failed = wire.tcp_refused() if error == "refused" else wire.tcp_connection(answered=False)
    return answered * wire.tcp_connection() + unanswered * failed


def dns(target: str, ok: bool, fields: Mapping[str, Any], options: Any, local: Local) -> int:
    server = str(fields.get("server") or getattr(options, "server", "system"))
    if local(_host(server)):
        return 0
    query = dns_query_size(target)
    if "rcode" not in fields:  # no answer: the query went out alone
        return wire.FRAME + wire.IP + wire.UDP + query
    rdata = DNS_ANSWER_RDATA.get(str(fields.get("record", "A")), 30)
    answer = query + _num(fields, "answers") * (12 + rdata)
    cost = wire.udp_exchange(query, answer)
    if fields.get("tcp") is True:  # the truncated UDP answer, then the same over TCP
        cost += wire.tcp_connection(query + 2, answer + 2)
    return cost


def http(target: str, fields: Mapping[str, Any], lookup: int, local: Local) -> int:
    host = _host(target)
    if local(host):
        return 0
    cost = 0 if _is_literal(host) else lookup
    measured = _num(fields, "wire_bytes")
    if measured:
        return cost + measured
    if "connect_ms" not in fields:
        return cost
    tls = 0 if "tls_ms" not in fields else (TLS_FULL if fields.get("tls_resumed") is not True else TLS_FULL // 4)
    return cost + wire.tcp_connection(HTTP_EXCHANGE // 2, HTTP_EXCHANGE // 2 + _num(fields, "bytes")) + tls


def link(target: str, fields: Mapping[str, Any], local: Local) -> int:
    if "samples" not in fields:
        return 0
    hop = str(fields.get("isp_hop") or target)
    cost = 0 if local(hop) else wire.icmp_echo(_num(fields, "samples"), _num(fields, "idle_samples"), LINK_ECHO_PAYLOAD)
    found = re.search(r"promo[^;]*\btrials=(\d+)", str(fields.get("evidence", "")))
    trials = int(found.group(1)) if found else 0
    cost += wire.icmp_echo(trials * PROMO_ECHOES, trials * PROMO_ECHOES, LINK_ECHO_PAYLOAD)
    return cost + trace_bytes()


def trace_bytes() -> int:
    """One first-hop trace: the echoes that cross the gateway, and the routers' answers."""
    return TRACE_CROSSING * (wire.FRAME + wire.IP + wire.ICMP + LINK_ECHO_PAYLOAD + TIME_EXCEEDED)


def watch_bytes(seconds: float, watch_s: float, every: int = 10) -> int:
    """The link watcher's traces over `seconds`: one every `every` route checks of `watch_s`."""
    return int(seconds / (every * watch_s) * trace_bytes()) if watch_s > 0 else 0


def path(fields: Mapping[str, Any]) -> int:
    """A traceroute: three probes per hop and their answers, and the MTU search."""
    return _num(fields, "hop_count") * 3 * 2 * (wire.FRAME + wire.IP + 40) + 8 * (wire.FRAME + 1500)


def throughput(fields: Mapping[str, Any]) -> int:
    """Only the headers: the test's payload is in the ledger already (the probe records it)."""
    return _num(fields, "bytes_used") * wire.TCP_SEGMENT // 1448


def run_bytes(
    measurement: str,
    target: str,
    ok: bool,
    fields: Mapping[str, Any],
    options: Any = None,
    local: Local = route.is_local,
    lookup: int = 0,
    error: str = "",
) -> int:
    """Uplink bytes of one probe run, estimated from its Reading (0 for kinds that send nothing);
    `error` is its error code, if it failed."""
    if measurement == "icmp":
        return icmp(target, fields, options, local)
    if measurement == "tcp":
        return tcp(target, fields, local, error)
    if measurement == "dns":
        return dns(target, ok, fields, options, local)
    if measurement == "http":
        return http(target, fields, lookup, local)
    if measurement == "link":
        return link(target, fields, local)
    if measurement == "path":
        return path(fields)
    if measurement == "throughput":
        return throughput(fields)
    return 0  # host, usage, the dish on the LAN


def nameserver(text: str) -> str:
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            return words[1]
    return ""


class Estimator:
    """`run_bytes` with the node's routes and resolver, for the daemon."""

    def __init__(self, local: Local = route.is_local) -> None:
        self.local = local
        self._resolver: tuple[float, str] = (0.0, "")

    def resolver(self) -> str:
        if time.monotonic() - self._resolver[0] > route.CACHE_S or not self._resolver[0]:
            try:
                with open(RESOLV) as f:
                    found = nameserver(f.read())
            except OSError:
                found = ""
            self._resolver = (time.monotonic(), found)
        return self._resolver[1]

    def lookup_cost(self, host: str) -> int:
        """A name lookup by the system resolver (A and AAAA), when that resolver is beyond the LAN."""
        server = self.resolver()
        if not server or self.local(server):
            return 0
        query = dns_query_size(host)
        return wire.udp_exchange(query, query + 12 + 4) + wire.udp_exchange(query, query + 50)

    def run_bytes(
        self,
        measurement: str,
        target: str,
        ok: bool,
        fields: Mapping[str, Any],
        options: Optional[Any] = None,
        error: str = "",
    ) -> int:
        lookup = self.lookup_cost(_host(target)) if measurement == "http" else 0
        return run_bytes(measurement, target, ok, fields, options, self.local, lookup, error)
