"""Gathers what the link classifier reads: RTT series, hops, sysfs facts, the dish.

This is the I/O half of `agent.linktype.classify`. It sends paired ICMP echoes to the
LAN gateway and to the first ISP hop (so LAN/Wi-Fi delay can be subtracted),
watches the interface byte counters so only idle samples count, runs the
cellular idle-promotion test, and asks 192.168.100.1:9200 whether a Starlink
dish's gRPC API is really there (a cable modem also lives on that address).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import struct
import time
from typing import Optional

from agent import clock
from agent.linktype.classify import VPN_NAME_PREFIXES, InterfaceFacts, Observation, Operator
from agent.linktype.features import PromoTrial, Sample
from agent.net import iface
from agent.net.echo import EchoSession, schedule
from agent.net.hops import isp_hop
from agent.net.hostport import split_host_port
from agent.reading.model import ProbeFailure

log = logging.getLogger(__name__)

SYS_NET = "/sys/class/net"
ARPHRD_NONE = 65534  # tun and WireGuard devices
ECHO_PAYLOAD = 16  # bytes per echo of the classifier's trains


@dataclasses.dataclass(frozen=True)
class Plan:
    """How long and how hard to look."""

    observe_s: float = 180.0
    rate_hz: float = 5.0
    promo_trials: int = 2
    promo_idle_s: float = 20.0
    idle_max_kbps: float = 200.0
    dish: str = "192.168.100.1:9200"
    isp_hop: str = ""  # fixed first ISP hop; "" finds it with a short trace
    max_trace_ttl: int = 5
    dish_timeout: float = 1.5
    trace_wait: float = 1.0


# ----- local facts ----------------------------------------------------------


def read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def default_interface(route_text: Optional[str] = None) -> str:
    """The interface of the lowest-metric IPv4 default route in /proc/net/route."""
    text = route_text if route_text is not None else read_text("/proc/net/route")
    best: Optional[tuple[int, str]] = None
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 8 and parts[1] == "00000000" and parts[7] == "00000000":
            metric = int(parts[6]) if parts[6].isdigit() else 0
            if best is None or metric < best[0]:
                best = (metric, parts[0])
    return best[1] if best else ""


def interface_facts(name: str, root: str = SYS_NET) -> InterfaceFacts:
    base = os.path.join(root, name)
    devtype = ""
    for line in read_text(os.path.join(base, "uevent")).splitlines():
        if line.startswith("DEVTYPE="):
            devtype = line.split("=", 1)[1].strip()
    driver = ""
    with contextlib.suppress(OSError):
        driver = os.path.basename(os.readlink(os.path.join(base, "device", "driver")))
    kind = read_text(os.path.join(base, "type")).strip()
    return InterfaceFacts(name=name, devtype=devtype, driver=driver, arphrd=int(kind) if kind.isdigit() else 0)


def is_vpn(facts: InterfaceFacts, root: str = SYS_NET) -> bool:
    if facts.name.startswith(VPN_NAME_PREFIXES) or facts.devtype in ("wireguard", "tun"):
        return True
    return facts.arphrd == ARPHRD_NONE or os.path.exists(os.path.join(root, facts.name, "tun_flags"))


def iface_bytes(name: str) -> Optional[int]:
    """rx + tx bytes of one interface, from /proc/net/dev."""
    for line in read_text("/proc/net/dev").splitlines()[2:]:
        label, _, rest = line.partition(":")
        if label.strip() == name:
            cols = rest.split()
            return int(cols[0]) + int(cols[8])
    return None


# ----- the Starlink dish ----------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DISH_PATH = b"/SpaceX.API.Device.Device/Handle"


def _h2_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def _hpack_literal(name: bytes, value: bytes) -> bytes:
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def dish_request(authority: bytes) -> bytes:
    """An HTTP/2 gRPC call of Device/Handle with an empty get_status request (field 1004)."""
    headers = (
        b"\x83\x86"  # :method POST, :scheme http (HPACK static table)
        + _hpack_literal(b":path", DISH_PATH)
        + _hpack_literal(b":authority", authority)
        + _hpack_literal(b"content-type", b"application/grpc")
        + _hpack_literal(b"te", b"trailers")
    )
    message = b"\xe2\x3e\x00"  # Request{get_status (1004): {}}
    body = b"\x00" + struct.pack("!I", len(message)) + message
    return (
        H2_PREFACE
        + _h2_frame(0x4, 0, 0, b"")  # SETTINGS
        + _h2_frame(0x1, 0x4, 1, headers)  # HEADERS, END_HEADERS
        + _h2_frame(0x0, 0x1, 1, body)  # DATA, END_STREAM
    )


def dish_answered(data: bytes) -> bool:
    """True when the bytes are HTTP/2 frames with a HEADERS answer (:status 200) on our stream."""
    pos, settings, answer = 0, False, False
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        kind, stream = data[pos + 3], int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        payload = data[pos + 9 : pos + 9 + length]
        if kind == 0x4 and stream == 0:
            settings = True
        elif kind == 0x1 and stream == 1 and payload[:1] == b"\x88":
            answer = True
        pos += 9 + length
    return settings and answer


async def probe_dish(address: str, timeout: float = 1.5) -> tuple[bool, bool]:
    """(the dish's gRPC API answered, any host answered on the dish address).

    A DOCSIS cable modem serves its status page on 192.168.100.1 too, so only a
    proper HTTP/2 answer to the Device/Handle call counts as a dish.
    """
    host, port = split_host_port(address, 9200)
    host_seen = False
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except ConnectionRefusedError:
        return False, True  # something is there, but not the dish's API
    except (OSError, asyncio.TimeoutError):
        return False, await host_answers(host, timeout)
    host_seen = True
    data = b""
    try:
        writer.write(dish_request(f"{host}:{port}".encode()))
        await writer.drain()
        deadline = time.monotonic() + timeout
        while not dish_answered(data) and len(data) < 65536:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            chunk = await asyncio.wait_for(reader.read(4096), left)
            if not chunk:
                break
            data += chunk
    except (OSError, asyncio.TimeoutError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return dish_answered(data), host_seen


async def host_answers(host: str, timeout: float) -> bool:
    """A web page or a refusal on port 80 both mean a host is there."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, 80), timeout)
    except ConnectionRefusedError:
        return True
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


# ----- hops ------------------------------------------------------------------


async def trace_first_hops(target: str, max_ttl: int, wait: float = 1.0) -> list[str]:
    """Responders for TTL 1..max_ttl toward `target` ("" where none answered within `wait`),
    up to the target itself.

    One echo per TTL, all at once: each expires at a different router, so none of
    them meets its ICMP rate limit twice. Needs a raw socket (CAP_NET_RAW): a ping
    socket is not given the routers' time-exceeded errors.
    """
    session = await EchoSession.open(target, wait, mode="raw")
    try:
        seqs = [session.send(ECHO_PAYLOAD, ttl=ttl) for ttl in range(1, max_ttl + 1)]
        deadline = time.monotonic() + wait
        while True:
            hops = [session.responders.get(seq, "") for seq in seqs]
            if session.address in hops:
                hops = hops[: hops.index(session.address) + 1]
            if all(hops) or time.monotonic() >= deadline:
                return hops
            await asyncio.sleep(0.01)
    finally:
        session.close()


def series(session: EchoSession, busy: set[int], since_seq: int = 0) -> list[Sample]:
    """The session's samples from `since_seq` on, at their wall-clock send times, marked
    idle unless their second carried other traffic."""
    out = []
    for seq in sorted(session.tally.sent_at):
        if seq >= since_seq:
            t = session.sent_wall[seq]
            out.append(Sample(t, session.tally.rtt_ms.get(seq), int(t) not in busy))
    return out


class Counters:
    """Marks the seconds in which the interface carried more than our own probes."""

    def __init__(self, iface: str, limit_kbps: float) -> None:
        self.iface, self.limit_bytes = iface, limit_kbps * 1000 / 8
        self.busy: set[int] = set()
        self.last: Optional[tuple[float, int]] = None

    def poll(self) -> None:
        now, total = time.time(), iface_bytes(self.iface) if self.iface else None
        if total is None:
            return
        if self.last is not None and now > self.last[0]:
            rate = (total - self.last[1]) / (now - self.last[0])
            if rate > self.limit_bytes:
                for second in range(int(self.last[0]), int(now) + 2):  # and the second after: queues drain
                    self.busy.add(second)
        self.last = (now, total)


QUIET_BYTES_S = 1500.0  # more than one full-size packet a second in either direction: not silent
QUIET_POLL_S = 0.25
ECHO_WIRE_BYTES = ECHO_PAYLOAD + 8 + 20 + 14  # ICMP, IPv4 and Ethernet headers
LOCAL_WAKE_MS = 20.0  # the gateway's own first echo this much slower: a Wi-Fi station waking


class Quiet:
    """How long the interface has carried (next to) nothing, from its byte counters.

    Any packet may wake a cellular radio, so a promotion trial waits for a silent
    spell, and the spell starts over whenever other traffic shows. Without counters
    (no interface found) silence is assumed, as before.
    """

    def __init__(self, iface: str) -> None:
        self.iface = iface
        self.last: Optional[tuple[float, int]] = None
        self.quiet_since = time.monotonic()

    def poll(self) -> bool:
        """Sample the counters; True when the interface was quiet since the last poll."""
        total = iface_bytes(self.iface) if self.iface else None
        now = time.monotonic()
        if total is None:
            return True
        quiet = True
        if self.last is not None and now > self.last[0]:
            quiet = (total - self.last[1]) / (now - self.last[0]) <= QUIET_BYTES_S
        if not quiet:
            self.quiet_since = now
        self.last = (now, total)
        return quiet

    async def wait(self, seconds: float, deadline: float) -> bool:
        """Until the interface has been quiet for `seconds`; False when `deadline` (monotonic) came first."""
        self.poll()
        self.quiet_since = time.monotonic()  # our own echoes may just have left: count from now
        while True:
            self.poll()
            now = time.monotonic()
            if now - self.quiet_since >= seconds:
                return True
            if now + (seconds - (now - self.quiet_since)) > deadline:
                return False
            await asyncio.sleep(QUIET_POLL_S)


async def promotion_trials(
    hop: EchoSession, gw: Optional[EchoSession], plan: Plan, iface: str
) -> tuple[list[PromoTrial], int]:
    """(the trials run, trials never run for want of a quiet spell).

    In a village the link is rarely idle, so trials are scheduled when the counters show
    a silent spell of `promo_idle_s`; one that traffic disturbed is kept (for the evidence)
    and retried, within three times the undisturbed time.
    """
    trials: list[PromoTrial] = []
    quiet = Quiet(iface)
    deadline = time.monotonic() + plan.promo_trials * (plan.promo_idle_s + 2.0) * 3
    valid = 0
    while valid < plan.promo_trials:
        if not await quiet.wait(plan.promo_idle_s, deadline):
            break
        first, gw_first = hop.next_seq, gw.next_seq if gw else 0
        before, t0 = iface_bytes(iface) if iface else None, time.monotonic()
        for k in range(11):
            hop.send(ECHO_PAYLOAD)
            if gw:
                gw.send(ECHO_PAYLOAD)
            await asyncio.sleep(0.5 if k == 0 else 0.02)
        await asyncio.sleep(0.3)
        after, elapsed = iface_bytes(iface) if iface else None, time.monotonic() - t0
        own = (11 + (11 if gw else 0)) * 2 * ECHO_WIRE_BYTES
        busy = before is not None and after is not None and after - before - own > QUIET_BYTES_S * elapsed
        rtts = [hop.tally.rtt_ms.get(s) for s in range(first, first + 11)]
        why = "traffic" if busy else ""
        if gw and not why:
            local = [gw.tally.rtt_ms.get(s) for s in range(gw_first, gw_first + 11)]
            later = sorted(r for r in local[1:] if r is not None)
            if local[0] is not None and later and local[0] - later[len(later) // 2] >= LOCAL_WAKE_MS:
                why = "local"
        trials.append(PromoTrial(rtts[0], tuple(r for r in rtts[1:] if r is not None), why))
        valid += not why
    return trials, plan.promo_trials - valid


async def observe(
    gateway: Optional[str], isp: str, plan: Plan, iface: str
) -> tuple[list[Sample], list[Sample], list[PromoTrial], int]:
    """Promotion trials first (they need silence), then the paired ping train."""
    timeout = 2.0
    counters = Counters(iface, plan.idle_max_kbps)
    gw = await EchoSession.open(gateway, timeout) if gateway else None
    hop: Optional[EchoSession] = None
    trials: list[PromoTrial] = []
    skipped = 0
    try:
        hop = await EchoSession.open(isp, timeout)
        if plan.promo_trials:
            trials, skipped = await promotion_trials(hop, gw, plan, iface)
        train_from = hop.next_seq
        gw_from = gw.next_seq if gw else 0
        counters.poll()
        next_poll = time.monotonic() + 1.0
        async for _ in schedule(max(1, int(plan.observe_s * plan.rate_hz)), 1.0 / plan.rate_hz):
            if gw:
                gw.send(ECHO_PAYLOAD)
            hop.send(ECHO_PAYLOAD)
            if time.monotonic() >= next_poll:
                counters.poll()
                next_poll += 1.0
        await asyncio.sleep(min(timeout, 1.0))
        counters.poll()
        gw_series = series(gw, counters.busy, gw_from) if gw else []
        return gw_series, series(hop, counters.busy, train_from), trials, skipped
    finally:
        for session in (gw, hop):
            if session:
                session.close()


async def gather(
    target: str, plan: Plan, operators: tuple[Operator, ...] = (), asn: int = 0
) -> tuple[Observation, dict[str, str]]:
    """Everything the classifier needs, and the facts worth reporting (ISP hop, interface)."""
    address, _ = await iface.resolve(target, 3.0)
    gateway = iface.default_gateway()
    iface_name = default_interface()
    facts = interface_facts(iface_name) if iface_name else None
    hops: list[str] = []
    if not plan.isp_hop:
        try:
            hops = await trace_first_hops(address, plan.max_trace_ttl, plan.trace_wait)
        except ProbeFailure as exc:  # no CAP_NET_RAW: fall back to the target itself
            log.info("cannot trace the first hops (%s); using %s as the nearby target", exc.message, address)
    found = isp_hop(hops, gateway)
    isp = plan.isp_hop or (found[1] if found else "")
    isp_is_hop = bool(isp) and isp != address
    if plan.promo_trials:
        # before the observation, never during it: its packets would break the promotion test's silence
        dish_api, dish_host = await probe_dish(plan.dish, plan.dish_timeout) if plan.dish else (False, False)
        gw_series, isp_series, trials, skipped = await observe(gateway, isp or address, plan, iface_name)
    else:
        dish = probe_dish(plan.dish, plan.dish_timeout) if plan.dish else asyncio.sleep(0, (False, False))
        (dish_api, dish_host), (gw_series, isp_series, trials, skipped) = await asyncio.gather(
            dish, observe(gateway, isp or address, plan, iface_name)
        )
    obs = Observation(
        gateway=tuple(gw_series),
        isp=tuple(isp_series),
        isp_is_hop=isp_is_hop,
        clock_synced=clock.clock_synced(),
        promo=tuple(trials),
        promo_skipped=skipped,
        interface=facts,
        vpn=is_vpn(facts) if facts else False,
        hops=tuple(hops),
        dish_api=dish_api,
        dish_host=dish_host,
        asn=asn,
        operators=operators,
    )
    return obs, {"isp_hop": isp or address, "gateway": gateway or "", "iface": iface_name}
