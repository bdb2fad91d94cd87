"""DNS query time, through the system's resolver or against a named server.

`server = "system"` asks the first nameserver in /etc/resolv.conf, the one
this node really uses; any other value ("8.8.8.8", "127.0.0.1:5353",
"[2001:db8::1]:53") asks that server directly. One query, no retries, so the
time is the real query time. Timeout, NXDOMAIN and SERVFAIL are told apart.

Fields: query_ms, rcode, answers, record, server, tcp (true when a truncated
UDP answer was retried over TCP).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from agent.net import hostport, iface
from agent.probes.base import Probe, ProbeContext
from agent.reading.model import DNS_ERROR, NXDOMAIN, SERVFAIL, TIMEOUT, UNREACHABLE, FieldValue, Outcome, ProbeFailure
from agent.schema import setting

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA")
SYSTEM = "system"


@dataclasses.dataclass(frozen=True)
class Options:
    server: str = setting(SYSTEM, help='"system" (resolv.conf) or host[:port] of a server to ask directly')
    record: str = setting("A", choices=RECORD_TYPES, help="record type to ask for")


def system_nameserver() -> str:
    import dns.resolver

    try:
        servers = dns.resolver.Resolver(configure=True).nameservers
    except dns.resolver.NoResolverConfiguration:
        servers = []
    if not servers:
        raise ProbeFailure(DNS_ERROR, "no nameserver configured in /etc/resolv.conf")
    return str(servers[0])


async def query(name: str, server: str, record: str, timeout: float) -> Outcome:
    import dns.asyncquery
    import dns.exception
    import dns.message
    import dns.rcode

    address = system_nameserver() if server == SYSTEM else server
    host, port = hostport.split_host_port(address, 53)
    base = {"record": record, "server": address}
    try:
        host, _ = await iface.resolve(host, timeout)
        request = dns.message.make_query(name, record)
        start = time.perf_counter()
        response, used_tcp = await dns.asyncquery.udp_with_fallback(request, host, timeout=timeout, port=port)
    except ProbeFailure as exc:
        return Outcome.failed(exc.code, exc.message, **base)
    except dns.exception.Timeout:
        return Outcome.failed(TIMEOUT, f"DNS server {address} did not answer within {timeout:g} s", **base)
    except OSError as exc:
        return Outcome.failed(UNREACHABLE, f"DNS server {address}: {exc.strerror or exc}", **base)
    except dns.exception.DNSException as exc:
        return Outcome.failed(DNS_ERROR, f"DNS server {address}: {exc}", **base)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    rcode = dns.rcode.to_text(response.rcode())
    answers = sum(len(rrset) for rrset in response.answer)
    fields: dict[str, FieldValue] = {
        "query_ms": round(elapsed_ms, 3),
        "rcode": rcode,
        "answers": answers,
        **base,
        "tcp": bool(used_tcp),
    }
    if rcode == "NOERROR":
        return Outcome(ok=True, fields=fields)
    if rcode == "NXDOMAIN":
        return Outcome.failed(NXDOMAIN, f"{name} does not exist (NXDOMAIN from {address})", **fields)
    if rcode == "SERVFAIL":
        return Outcome.failed(SERVFAIL, f"{address} could not resolve {name} (SERVFAIL)", **fields)
    return Outcome.failed(DNS_ERROR, f"{address} answered {rcode} for {name}", **fields)


async def run(target: str, options: Options, timeout: float, ctx: ProbeContext) -> Outcome:
    return await asyncio.wait_for(query(target, options.server, options.record, timeout), timeout + 1.0)


PROBE = Probe(
    kind="dns",
    summary="DNS query time, rcode and answer count",
    options=Options,
    run=run,
    interval_s=300.0,
    timeout_s=3.0,
)
