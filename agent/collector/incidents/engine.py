"""The incident engine: Readings and node states in, incidents and notices out. Pure: no I/O, no clock.

Time is cut into intervals (`interval_s`). Each node keeps, per interval, a few counters
of what the Readings *taken* in it showed, whenever they arrived: a node cut off spools
and replays later, so late data fills old intervals and revises what was concluded.

- An interval is bad for the dark rule when public targets failed (the gateway answered:
  uplink; it did not: LAN), when it lies in a gap of more than `gap_s` without any Reading
  taken (power if the node came back with another boot id or a restarted `mono_s`, agent if
  not), or when it lies after the last Reading while the node is offline or silent as
  `agent.collector.fleet.state_of` says (cause unknown until data arrives).
- One rule against flapping for every incident: it opens when N of the last M intervals
  are bad and closes after K good ones in a row. Its start is the first bad interval,
  its end the first of the K good ones.
- Loss and latency (the limit depends on the link type) use the same rule on the intervals
  that were not dark; throughput, link type changes, an unsynced clock and a spent data
  budget are episodes read from the Readings that carry them.
- Nodes of one group (configured, or sharing an ISP hop) dark together become one upstream
  incident that lists them; their own incidents are kept but not told.
- Notices: one when an incident opens (after `hold_s`, so a group can form), one when its
  cause changes and the new cause held `cause_settle_s`, one when it resolves. Nothing
  for an incident that started inside a maintenance window, unless it is still dark
  `maintenance_overrun_s` after the window ended.

Whether a target answered, and whether a node is online, are `agent.collector.fleet`'s
rules, so the fleet view and the incidents never disagree on what "dark" means.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from array import array
from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple, Optional

from agent.collector import fleet
from agent.collector.incidents import causes as C
from agent.collector.incidents.settings import IncidentSettings
from agent.collector.maintenance import Calendar, Place

# Per-interval flags.
ANY, PUB_OK, PUB_FAIL, GW_OK, GW_FAIL = 1, 2, 4, 8, 16
MAX_BACKFILL_S = 30 * 86400.0  # a node's spool holds weeks at most; older late data is only counted
SHARED_HOPS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")]


def _dark_code(f: int) -> int:
    if f & PUB_OK:
        return C.GOOD
    if f & PUB_FAIL:
        if f & GW_OK:
            return C.BAD_UPLINK
        return C.BAD_LAN if f & GW_FAIL else C.BAD_NO_GATEWAY
    if f & GW_FAIL and not f & GW_OK:
        return C.BAD_LAN
    return C.NEUTRAL  # readings, none of them on the path (or only the gateway, answering)


DARK_CODE = [_dark_code(f) for f in range(32)]


class Obs(NamedTuple):
    """What the engine reads of one Reading (a stored row or an `agent.reading.validate.Record`)."""

    node: str
    ts: float
    measurement: str
    target: str
    ok: bool
    fields: dict[str, Any]
    boot: str = ""
    mono_s: Optional[float] = None
    clock_synced: bool = True
    error_code: Optional[str] = None
    error_message: Optional[str] = None
    received: Optional[float] = None  # when the collector got it; None: not known

    @classmethod
    def of(cls, r: Any, received: Optional[float] = None) -> Obs:
        return cls(
            r.node, float(r.ts), r.measurement, r.target, bool(r.ok), r.fields, r.boot or "", r.mono_s,
            bool(r.clock_synced), r.error_code, r.error_message, received,
        )  # fmt: skip


@dataclasses.dataclass
class Incident:
    """One incident as stored; `told*` fields record what people were told, so nothing is told twice."""

    id: str
    kind: str  # dark | degraded
    cause: str
    severity: str
    node: str = ""  # "" for an upstream incident
    group: str = ""  # the group of an upstream incident
    kecamatan: str = ""
    desa: str = ""
    members: list[dict[str, str]] = dataclasses.field(default_factory=list)  # node, kecamatan, desa, cause
    start: float = 0.0
    end: Optional[float] = None
    detected: float = 0.0
    updated: float = 0.0
    evidence: list[list[Any]] = dataclasses.field(default_factory=list)  # [key, {params}] for messages
    maintenance: str = ""  # the window it started in: not told
    maintenance_end: Optional[float] = None
    parent: str = ""  # the upstream incident that speaks for it
    cause_since: float = 0.0
    told: bool = False  # the opening was told
    told_cause: str = ""
    told_resolved: bool = False
    notices: int = 0
    frozen: bool = dataclasses.field(default=False, compare=False)  # closed before a restart: matched, not revised

    @property
    def family(self) -> str:
        return C.DARK if self.kind == C.DARK else self.cause

    @property
    def open(self) -> bool:
        return self.end is None

    def where(self) -> str:
        return f"{self.kecamatan}/{self.desa}" if self.node else f"group {self.group}"


@dataclasses.dataclass(frozen=True)
class Notice:
    """Something to tell: an incident opened, changed cause, or resolved."""

    event: str  # open | cause | resolved
    incident: Incident  # a snapshot
    seq: int  # the incident's n-th notice: part of the idempotency key
    at: float
    previous_cause: str = ""
    overrun: bool = False  # told because it outlasted its maintenance window


@dataclasses.dataclass
class Pass:
    """What one evaluation changed: incidents to store, notices to send (stored in one transaction)."""

    changed: list[Incident]
    notices: list[Notice]


class Segment(NamedTuple):
    start: int  # interval index
    end: Optional[int]  # first good interval; None while open
    counts: dict[int, int]  # bad intervals by code


class Machine:
    """N of the last M intervals bad opens, K good in a row closes; neutral intervals are skipped."""

    __slots__ = ("bad", "counts", "good_from", "good_run", "k", "m", "n", "open", "segments", "start", "window")

    def __init__(self, n: int, m: int, k: int) -> None:
        self.n, self.m, self.k = n, m, k
        self.window: deque[tuple[int, int]] = deque()
        self.bad = 0
        self.open = False
        self.start = 0
        self.good_run = 0
        self.good_from = 0
        self.counts: dict[int, int] = {}
        self.segments: list[Segment] = []

    def step(self, i: int, code: int) -> None:
        window = self.window
        window.append((i, code))
        if code >= C.BAD:
            self.bad += 1
        if len(window) > self.m and window.popleft()[1] >= C.BAD:
            self.bad -= 1
        if self.open:
            if code >= C.BAD:
                self.counts[code] = self.counts.get(code, 0) + 1
                self.good_run = 0
            else:
                if not self.good_run:
                    self.good_from = i
                self.good_run += 1
                if self.good_run >= self.k:
                    self.segments.append(Segment(self.start, self.good_from, self.counts))
                    self.open, self.counts = False, {}
        elif code >= C.BAD and self.bad >= self.n:
            self.open, self.good_run, self.counts = True, 0, {}
            self.start = next(j for j, c in window if c >= C.BAD)
            for _, c in window:
                if c >= C.BAD:
                    self.counts[c] = self.counts.get(c, 0) + 1

    def run(self, i: int, n: int, code: int) -> None:
        """`n` intervals of one code from `i`: past M + K of them nothing changes but the counts."""
        if code == C.NEUTRAL or n <= 0:
            return
        steps = min(n, self.m + self.k + 1)
        for j in range(steps):
            self.step(i + j, code)
        rest = n - steps
        if rest:
            if self.open and code >= C.BAD:
                self.counts[code] = self.counts.get(code, 0) + rest
            last = i + n - 1
            self.window = deque((last - len(self.window) + 1 + j, code) for j in range(len(self.window)))

    def clean(self) -> bool:
        """Closed with no bad interval in view: starting afresh from here changes nothing."""
        return not self.open and not self.bad

    def current(self) -> Optional[Segment]:
        return Segment(self.start, None, self.counts) if self.open else None


class Gap(NamedTuple):
    first: int  # first empty interval
    stop: int  # the next interval with a reading
    code: int
    before: str  # boot ids either side
    after: str


@dataclasses.dataclass
class Epoch:
    """One run of the node's kernel: a boot id (or, without one, a wall-minus-monotonic offset)."""

    boot: str
    offset: float
    first: float
    last: float


@dataclasses.dataclass
class Episode:
    """A degraded condition read from the Readings that carry it: open from start until end."""

    start: float
    end: Optional[float]
    evidence: dict[str, Any]


class NodeState:
    """Everything the engine keeps of one node: per-interval counters from `base` on, and episodes."""

    def __init__(self, node: str, base: int) -> None:
        self.node = node
        self.kecamatan = self.desa = ""
        self.site: dict[str, Any] = {}
        self.row: dict[str, Any] = {}  # for fleet.state_of: status, last_seen, status_received
        self.base = base
        self.flags = bytearray()
        self.npub = bytearray()  # public path readings
        self.nok = bytearray()  # ...that answered
        self.lsum = array("H")  # their loss_pct, summed
        self.nrtt = bytearray()  # answered public readings with an RTT
        self.nslow = bytearray()  # ...above the link type's limit
        self.rsum = array("f")  # their RTT p50, summed
        self.last = -1  # last interval with any reading
        self.dirty_from: Optional[int] = None
        self.clean = base  # re-running the rules from here is the same as from `base`
        self.seen_dark: list[list[int]] = []  # intervals after its last Reading while it was offline or silent
        self.epochs: list[Epoch] = []
        self.link_type = fleet.UNKNOWN_LINK
        self.answered: dict[str, int] = {}  # public target -> the last interval it answered in
        self.blocked: set[str] = set()  # targets that failed while another answered, until they answer
        self.primary_link = ""
        self.isp_hop = ""
        self.groups: tuple[str, ...] = ()
        self.tests: deque[tuple[float, float]] = deque()  # throughput: (ts, download_mbps)
        self.unsynced_since: Optional[float] = None
        self.episodes: dict[str, Episode] = {}
        self.incidents: list[Incident] = []  # open ones and closed ones still in view
        self.last_ts = 0.0
        self.touched = True

    def index(self, s: int) -> int:
        """The array index of interval `s`, growing the arrays as needed; -1 if too old."""
        if not self.flags:
            self.base = self.clean = s
        k = s - self.base
        if k < 0:
            self._grow_left(-k)
            k = 0
        size = len(self.flags)
        if k >= size:
            more = k - size + 1
            self.flags.extend(bytes(more))
            self.npub.extend(bytes(more))
            self.nok.extend(bytes(more))
            self.nrtt.extend(bytes(more))
            self.nslow.extend(bytes(more))
            self.lsum.extend(array("H", bytes(2 * more)))
            self.rsum.extend(array("f", bytes(4 * more)))
        return k

    def _grow_left(self, n: int) -> None:
        self.flags[:0] = bytes(n)
        self.npub[:0] = bytes(n)
        self.nok[:0] = bytes(n)
        self.nrtt[:0] = bytes(n)
        self.nslow[:0] = bytes(n)
        self.lsum[:0] = array("H", bytes(2 * n))
        self.rsum[:0] = array("f", bytes(4 * n))
        self.base -= n
        self.clean = self.base

    def trim(self, upto: int) -> None:
        """Forget intervals before `upto` (a clean point)."""
        k = upto - self.base
        if k <= 0:
            return
        for arr in (self.flags, self.npub, self.nok, self.nrtt, self.nslow, self.lsum, self.rsum):
            del arr[:k]
        self.base = upto
        if self.last < upto:
            self.last = -1
        self.seen_dark = [r for r in self.seen_dark if r[1] >= upto]

    def slots(self) -> int:
        return len(self.flags)


class Engine:
    """Incidents of a whole fleet, kept incrementally: each pass looks at nodes that changed."""

    def __init__(
        self, settings: IncidentSettings, policy: Optional[fleet.Policy] = None, calendar: Optional[Calendar] = None
    ) -> None:
        """`calendar`: the collector's maintenance windows (`CollectorConfig.calendar()`); none without one."""
        self.s = settings
        self.policy = policy or fleet.Policy()
        self.slot = settings.interval_s
        self.calendar = calendar or Calendar((), dt.timezone.utc)
        self.nodes: dict[str, NodeState] = {}
        self.incidents: dict[str, Incident] = {}  # open ones, and closed ones still in view
        self.groups: dict[str, Incident] = {}  # group key -> its open upstream incident
        self.too_late = 0
        self.last_heard: Optional[float] = None  # the newest arrival from any node
        self.hearing_since = 0.0  # since when the collector hears the fleet without a break
        self._changed: dict[str, Incident] = {}
        self._by_kec: dict[str, list[str]] = {g.name: [k.casefold() for k in g.kecamatan] for g in settings.groups}

    # -- input ------------------------------------------------------------------------------
    def _state(self, node: str, ts: float) -> NodeState:
        st = self.nodes.get(node)
        if st is None:
            st = self.nodes[node] = NodeState(node, int(ts // self.slot))
        return st

    def node(self, row: dict[str, Any]) -> None:
        """A row of the collector's `nodes` table: where the node is, its status, when last heard."""
        node = row["node"]
        hint = row.get("last_ts")
        st = self._state(node, float(hint) if hint is not None else 0.0)
        site = row.get("site") or {}
        place = (row.get("kecamatan") or "", row.get("desa") or "")
        if (st.kecamatan, st.desa) != place or (site and site != st.site):
            st.kecamatan, st.desa = place
            st.site = dict(site) if site else st.site
            st.groups = self._groups_of(st)
        for key in ("status", "last_seen", "status_received"):
            if row.get(key) != st.row.get(key):
                st.row[key] = row.get(key)
                st.touched = True
                if key != "status" and isinstance(row.get(key), (int, float)):
                    self._heard(float(row[key]))
        if hint is not None and float(hint) > st.last_ts and st.last < 0:
            # Nothing of it in view (silent since before the look back): its last Reading starts the tail.
            k = st.index(int(float(hint) // self.slot))
            st.flags[k] |= ANY
            st.last = st.base + k
            st.last_ts = float(hint)
            self._dirty(st, st.last)

    def link(self, node: str, fields: dict[str, Any]) -> None:
        """The node's latest link Reading (from the `latest` table): its link type and ISP hop."""
        st = self._state(node, 0.0)
        self._learn_link(st, fields, None)

    def reading(self, o: Obs) -> None:
        st = self.nodes.get(o.node)
        if st is None:
            st = self._state(o.node, o.ts)
        s = int(o.ts // self.slot)
        k = s - st.base
        if not 0 <= k < len(st.flags):
            if k < 0 and st.flags and -k * self.slot > MAX_BACKFILL_S:
                self.too_late += 1
                return
            k = st.index(s)
            s = st.base + k
        m = o.measurement
        flags = ANY
        fields = o.fields
        if m in fleet.PATH_PROBES:
            # fleet's rule for "this target answered" (ok, and not every echo lost), for any target
            answered = fleet.uplink_of(({"measurement": m, "target": "", "ok": o.ok, "fields": fields},))
            if o.target == "gateway":
                flags |= GW_OK if answered == fleet.UPLINK_OK else GW_FAIL
            else:
                ok = answered == fleet.UPLINK_OK
                if ok:
                    flags |= PUB_OK
                    st.blocked.discard(o.target)
                    if len(st.answered) < 16 or o.target in st.answered:
                        st.answered[o.target] = max(s, st.answered.get(o.target, s))
                    rtt = fields.get("rtt_p50_ms", fields.get("connect_p50_ms"))
                    if isinstance(rtt, (int, float)) and not isinstance(rtt, bool) and st.nrtt[k] < 255:
                        st.nrtt[k] += 1
                        st.rsum[k] += rtt
                        if rtt > self.s.latency_limit(st.link_type):
                            st.nslow[k] += 1
                elif o.target in st.blocked or self._others_answered(st, o.target, s):
                    st.blocked.add(o.target)  # a blocked target (a firewall, a dead resolver) says nothing
                    return self._touch(st, k, s, o, flags)
                else:
                    flags |= PUB_FAIL
                if st.npub[k] < 255:
                    loss = fields.get("loss_pct")
                    if not isinstance(loss, (int, float)) or isinstance(loss, bool):
                        loss = 0.0 if ok else 100.0
                    st.npub[k] += 1
                    st.nok[k] += ok
                    st.lsum[k] = min(65535, st.lsum[k] + round(min(100.0, max(0.0, loss))))
        elif m == "link":
            self._learn_link(st, fields, o.ts)
        elif m == "throughput":
            self._throughput(st, o)
        self._touch(st, k, s, o, flags)

    @staticmethod
    def _others_answered(st: NodeState, target: str, s: int) -> bool:
        return st.answered.get(target) != s and any(v == s for t, v in st.answered.items() if t != target)

    def _touch(self, st: NodeState, k: int, s: int, o: Obs, flags: int) -> None:
        """What every Reading says: the node took one then, in this boot, with this clock."""
        st.flags[k] |= flags
        if s > st.last:
            st.last = s
        if o.ts > st.last_ts:
            st.last_ts = o.ts
        epochs = st.epochs
        if not (o.boot and epochs and epochs[-1].boot == o.boot and epochs[-1].first <= o.ts):
            self._epoch(st, o)
        elif o.ts > epochs[-1].last:
            epochs[-1].last = o.ts
        if not o.clock_synced or st.unsynced_since is not None:
            self._clock(st, o)
        if o.received is not None:
            self._heard(o.received)
            if (st.row.get("last_seen") or 0.0) < o.received:
                st.row["last_seen"] = o.received
        if st.dirty_from is None or s < st.dirty_from:
            st.dirty_from = s
        st.touched = True

    def status(self, node: str, state: str, received: float) -> None:
        """A node's retained status message (its last will says offline)."""
        st = self._state(node, received)
        st.row["status"], st.row["status_received"] = state, received
        st.touched = True
        self._heard(received)

    def _heard(self, received: float) -> None:
        """Something arrived. After a break of half a silent time with nothing from anyone (the collector's outage,
        or its restart) the fleet is heard again only from now: no node is silent for the break."""
        last = self.last_heard
        if last is None or received > last:
            if last is not None and received - last > self.policy.silent_after_s / 2:
                self.hearing_since = received
            self.last_heard = received

    def load(self, incidents: Iterable[Incident]) -> None:
        """Incidents from the store, after a restart: open ones continue, closed ones are only recognised
        (so what the Readings in view show again is not recorded twice); nothing is told twice."""
        for inc in incidents:
            inc.frozen = inc.end is not None
            self.incidents[inc.id] = inc
            if inc.node:
                st = self._state(inc.node, inc.start)
                st.incidents.append(inc)
                st.touched = True
            elif inc.end is None:
                self.groups[inc.group] = inc

    @staticmethod
    def _dirty(st: NodeState, s: int) -> None:
        if st.dirty_from is None or s < st.dirty_from:
            st.dirty_from = s
        st.touched = True

    def _groups_of(self, st: NodeState) -> tuple[str, ...]:
        kec, desa = st.kecamatan.casefold(), st.desa.casefold()
        names = []
        for g in self.s.groups:
            if st.node in g.nodes or kec in self._by_kec[g.name] or any(d.casefold() == desa for d in g.desa):
                names.append(g.name)
        return tuple(names)

    def _epoch(self, st: NodeState, o: Obs) -> None:
        if o.mono_s is None and not o.boot:
            return
        offset = o.ts - (o.mono_s or 0.0)
        for e in reversed(st.epochs):
            if e.boot == o.boot and (o.boot or abs(e.offset - offset) < 30.0):
                e.first, e.last = min(e.first, o.ts), max(e.last, o.ts)
                return
        st.epochs.append(Epoch(o.boot, offset, o.ts, o.ts))
        if len(st.epochs) > 64:
            del st.epochs[0]

    def _clock(self, st: NodeState, o: Obs) -> None:
        if not o.clock_synced:
            if st.unsynced_since is None or o.ts < st.unsynced_since:
                st.unsynced_since = o.ts
            if o.ts - st.unsynced_since >= self.s.clock_unsynced_s and C.CLOCK not in st.episodes:
                hours = round((o.ts - st.unsynced_since) / 3600.0, 1)
                st.episodes[C.CLOCK] = Episode(st.unsynced_since, None, {"hours": hours})
        elif st.unsynced_since is not None and o.ts > st.unsynced_since:
            st.unsynced_since = None
            self._end_episode(st, C.CLOCK, o.ts)

    def _learn_link(self, st: NodeState, fields: dict[str, Any], ts: Optional[float]) -> None:
        hop = fields.get("isp_hop")
        if isinstance(hop, str) and hop:
            st.isp_hop = hop
        kind = fields.get("link_type")
        if not isinstance(kind, str) or kind in ("", fleet.UNKNOWN_LINK, "unknown"):
            return
        st.link_type = kind
        previous = fields.get("previous")
        if not st.primary_link:
            tagged = st.site.get("link_type")
            if isinstance(tagged, str) and tagged:
                st.primary_link = tagged
            elif isinstance(previous, str) and previous not in ("", "unknown") and fields.get("changed"):
                st.primary_link = previous
            else:
                st.primary_link = kind
        if ts is None:
            return
        if kind != st.primary_link:
            ep = st.episodes.get(C.LINK_CHANGE)
            if ep is None or ep.end is not None:
                st.episodes[C.LINK_CHANGE] = Episode(ts, None, {"from": st.primary_link, "to": kind})
            else:
                ep.evidence["to"] = kind
        else:
            self._end_episode(st, C.LINK_CHANGE, ts)

    def _throughput(self, st: NodeState, o: Obs) -> None:
        f = o.fields
        budget_used = f.get("budget_month_mb")
        budget_cap = _number(st.site.get("budget_month_mb"))
        skipped_for_budget = o.error_code == "skipped" and "budget" in (o.error_message or "")
        over_cap = budget_cap is not None and isinstance(budget_used, (int, float)) and budget_used >= budget_cap
        if skipped_for_budget or over_cap:
            if C.BUDGET not in st.episodes or st.episodes[C.BUDGET].end is not None:
                ev = {"why": (o.error_message or "")[:160], "month_mb": budget_used, "cap_mb": budget_cap}
                st.episodes[C.BUDGET] = Episode(o.ts, None, ev)
            return
        down = _number(f.get("download_mbps"))
        if not o.ok or down is None:
            return
        self._end_episode(st, C.BUDGET, o.ts)
        st.tests.append((o.ts, down))
        while len(st.tests) > self.s.throughput_tests:
            st.tests.popleft()
        contract = _number(st.site.get("contract_mbps"))
        if contract is None or contract <= 0:
            return
        floor = contract * self.s.throughput_share
        if len(st.tests) == self.s.throughput_tests and all(d < floor for _, d in st.tests):
            ep = st.episodes.get(C.THROUGHPUT)
            ev = {"mbps": round(down, 1), "contract": contract, "share": round(self.s.throughput_share * 100)}
            if ep is None or ep.end is not None:
                st.episodes[C.THROUGHPUT] = Episode(st.tests[0][0], None, ev)
            else:
                ep.evidence = ev
        elif down >= floor:
            self._end_episode(st, C.THROUGHPUT, o.ts)

    @staticmethod
    def _end_episode(st: NodeState, name: str, ts: float) -> None:
        ep = st.episodes.get(name)
        if ep is not None and ep.end is None and ts >= ep.start:
            ep.end = ts

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, now: float) -> Pass:
        """One pass: revise incidents of nodes that changed or may have, group them, decide notices."""
        self._changed = {}
        silent_after = self.policy.silent_after_s
        # Nothing from anyone for half a silent time: the collector (its broker, its database) is the one cut
        # off, and sooner than any node could be judged silent on its own.
        blind = self.last_heard is None or now - self.last_heard > silent_after / 2
        for st in self.nodes.values():
            last_heard = st.row.get("last_seen") or st.row.get("status_received") or 0.0
            due = st.touched or any(i.end is None for i in st.incidents) or now - float(last_heard) > silent_after
            if due:
                self._evaluate_node(st, now, blind)
        self._evaluate_groups(now)
        notices = self._decide(now)
        changed = list(self._changed.values())
        self._forget()
        return Pass(changed, notices)

    def _evaluate_node(self, st: NodeState, now: float, blind: bool = False) -> None:
        st.touched = False
        row = st.row
        heard = now if blind else max(float(row.get("last_seen") or 0.0), self.hearing_since)
        if heard != row.get("last_seen"):
            row = {**row, "last_seen": heard}  # silent only while the collector heard the others
        tail_bad = fleet.state_of(row, now, self.policy) != fleet.ONLINE
        dark, loss, slow, gaps = self._run(st, now, tail_bad)
        self._reconcile(st, C.DARK, [self._dark_times(st, sg, gaps, now) for sg in _segments(dark)], now)
        dark_now = dark.open
        for family, machine in ((C.LOSS, loss), (C.LATENCY, slow)):
            found = _segments(machine)
            self._reconcile(st, family, [self._degraded_times(st, family, sg) for sg in found], now, dark_now)
        for family, ep in list(st.episodes.items()):
            self._reconcile(st, family, [(ep.start, ep.end, family, _evidence(family, ep.evidence))], now, dark_now)
            if ep.end is not None:
                del st.episodes[family]  # recorded; a new episode may begin
        self._absorb(st)

    def _absorb(self, st: NodeState) -> None:
        """Loss and latency that overlap a dark period are that period seen from its good moments (a
        flapping link): the dark incident speaks for them, so they are kept but never told."""
        dark = [i for i in st.incidents if i.kind == C.DARK]
        for inc in st.incidents:
            if inc.cause not in (C.LOSS, C.LATENCY) or inc.parent or inc.told:
                continue
            end = inc.end if inc.end is not None else float("inf")
            over = next(
                (d for d in dark if d.start <= end and (d.end if d.end is not None else end) >= inc.start), None
            )
            if over is not None:
                inc.parent = over.id
                self._changed[inc.id] = inc

    def _run(self, st: NodeState, now: float, tail_bad: bool) -> tuple[Machine, Machine, Machine, list[Gap]]:
        """The three interval rules over the node's intervals from its clean point, then the tail."""
        s = self.s
        n, m, k = s.open_after, s.window, s.close_after
        dark, loss, slow = Machine(n, m, k), Machine(n, m, k), Machine(n, m, k)
        start = st.clean if st.dirty_from is None or st.dirty_from >= st.clean else st.base
        st.dirty_from = None
        now_slot = int(now // self.slot)
        if tail_bad and now_slot > st.last >= 0:
            _mark(st.seen_dark, st.last + 1, now_slot)
        base, last, flags = st.base, st.last, st.flags
        npub, nok, lsum, nrtt, nslow = st.npub, st.nok, st.lsum, st.nrtt, st.nslow
        loss_limit, gap_slots = s.loss_pct, s.gap_s / self.slot
        gaps: list[Gap] = []
        prev = next((j for j in range(start - 1, base - 1, -1) if flags[j - base] & ANY), None)
        clean, clean_prev = start, prev
        i = start
        while i <= last:
            f = flags[i - base]
            if f & ANY:
                j = i - base
                code = DARK_CODE[f & 31]
                if code == C.GOOD and nok[j] * 2 < npub[j]:
                    code = DARK_CODE[f & 31 & ~PUB_OK]  # its targets answered less than half the time
                if code != C.NEUTRAL:
                    dark.step(i, code)
                    if code == C.GOOD:
                        if npub[j]:
                            loss.step(i, C.BAD if lsum[j] >= loss_limit * npub[j] else C.GOOD)
                        if nrtt[j]:
                            slow.step(i, C.BAD if 2 * nslow[j] > nrtt[j] else C.GOOD)
                prev = i
                i += 1
            else:
                j = i
                while not flags[j - base] & ANY:  # `last` has a reading, so this ends
                    j += 1
                if (prev is not None and j - prev > gap_slots) or _overlaps(st.seen_dark, i, j - 1):
                    gap = self._gap(st, prev, j, i)
                    gaps.append(gap)
                    dark.run(i, j - i, gap.code)
                i = j
            if i <= last and dark.clean() and loss.clean() and slow.clean():
                clean, clean_prev = i, prev
        # After the last Reading: dark while it is offline or silent, and where it was seen so until
        # Readings taken then arrive (a node replaying its spool is online before its past is known).
        seen_until = max((r[1] for r in st.seen_dark), default=-1)
        if last >= 0 and seen_until > last:
            dark.run(last + 1, seen_until - last, C.BAD_SILENT)
        st.clean = clean
        keep_from = min(clean, clean_prev if clean_prev is not None else clean)
        if keep_from - st.base > 4 * (m + k):
            st.trim(keep_from)
        return dark, loss, slow, gaps

    def _gap(self, st: NodeState, prev: Optional[int], stop: int, first: int) -> Gap:
        """No Reading taken from `first` to `stop`: a power cut if another boot began, else the agent."""
        if prev is None:
            return Gap(first, stop, C.BAD_GAP, "", "")
        t_before, t_after = (prev + 1) * self.slot, stop * self.slot
        before = max((e for e in st.epochs if e.first < t_before), key=lambda e: e.last, default=None)
        after = min((e for e in st.epochs if e.last >= t_after), key=lambda e: e.first, default=None)
        if before is None or after is None:
            return Gap(first, stop, C.BAD_GAP, "", "")
        code = C.BAD_AGENT if before is after else C.BAD_POWER
        return Gap(first, stop, code, before.boot, after.boot)

    def _dark_times(
        self, st: NodeState, seg: Segment, gaps: list[Gap], now: float
    ) -> tuple[float, Optional[float], str, list[list[Any]]]:
        start = seg.start * self.slot
        end = seg.end * self.slot if seg.end is not None else None
        counts = seg.counts
        cause = C.dark_cause(counts)
        evidence: list[list[Any]] = []
        if counts.get(C.BAD_UPLINK):
            evidence.append(["uplink", {"intervals": counts[C.BAD_UPLINK]}])
        if counts.get(C.BAD_LAN):
            evidence.append(["lan", {"intervals": counts[C.BAD_LAN]}])
        if counts.get(C.BAD_NO_GATEWAY):
            evidence.append(["no_gateway", {"intervals": counts[C.BAD_NO_GATEWAY]}])
        stop = seg.end if seg.end is not None else int(now // self.slot) + 1
        for g in gaps:
            if g.first < stop and g.stop > seg.start:
                minutes = max(1, round((g.stop - g.first) * self.slot / 60.0))
                if g.code == C.BAD_POWER:
                    evidence.append(["power", {"minutes": minutes, "before": g.before or "?", "after": g.after or "?"}])
                elif g.code == C.BAD_AGENT:
                    evidence.append(["agent", {"minutes": minutes, "boot": g.before or "?"}])
                else:
                    evidence.append(["gap", {"minutes": minutes}])
        if seg.end is None and counts.get(C.BAD_SILENT):
            evidence.append(["silent", {"status": str(st.row.get("status") or "silent")}])
        return start, end, cause, evidence

    def _degraded_times(
        self, st: NodeState, family: str, seg: Segment
    ) -> tuple[float, Optional[float], str, list[list[Any]]]:
        a = max(seg.start, st.base) - st.base
        b = (seg.end if seg.end is not None else st.last + 1) - st.base
        ev: dict[str, Any]
        if family == C.LOSS:
            n = sum(st.npub[a:b])
            mean = sum(st.lsum[a:b]) / n if n else 0.0
            ev = {"loss": round(mean, 1), "limit": self.s.loss_pct, "intervals": seg.counts.get(C.BAD, 0)}
        else:
            n = sum(st.nrtt[a:b])
            mean = sum(st.rsum[a:b]) / n if n else 0.0
            ev = {"ms": round(mean), "limit": round(self.s.latency_limit(st.link_type)), "link": st.link_type}
        end = seg.end * self.slot if seg.end is not None else None
        return seg.start * self.slot, end, family, [[family, ev]]

    def _reconcile(
        self,
        st: NodeState,
        family: str,
        found: list[tuple[float, Optional[float], str, list[list[Any]]]],
        now: float,
        dark_now: bool = False,
    ) -> None:
        """Match what the rules found to the node's incidents of that family: revise, open or close."""
        mine = [i for i in st.incidents if i.family == family]
        matched: set[str] = set()
        for start, end, cause, evidence in found:
            inc = next(
                (
                    i for i in mine
                    if i.id not in matched and i.start <= (end if end is not None else now + self.slot)
                    and (i.end if i.end is not None else now + self.slot) >= start - self.slot
                ),
                None,
            )  # fmt: skip
            if inc is None:
                if end is None and family != C.DARK and dark_now:
                    continue  # degraded while dark says nothing new
                kind = C.DARK if family == C.DARK else C.DEGRADED
                inc = Incident(
                    id=f"{st.node}/{family}/{int(start)}", kind=kind, cause=cause, severity=C.SEVERITY[kind],
                    node=st.node, kecamatan=st.kecamatan, desa=st.desa, start=start, end=end, detected=now,
                    updated=now, evidence=evidence, cause_since=now,
                    members=[{"node": st.node, "kecamatan": st.kecamatan, "desa": st.desa, "cause": cause}],
                )  # fmt: skip
                st.incidents.append(inc)
                mine.append(inc)
                self.incidents[inc.id] = inc
                self._changed[inc.id] = inc
                matched.add(inc.id)
                continue
            matched.add(inc.id)
            if inc.frozen:
                continue
            new_start = min(inc.start, start)
            if (new_start, end, cause, evidence) != (inc.start, inc.end, inc.cause, inc.evidence):
                if cause != inc.cause:
                    inc.cause_since = now
                inc.start, inc.end, inc.cause, inc.evidence = new_start, end, cause, evidence
                if inc.members:
                    inc.members[0]["cause"] = cause
                inc.updated = now
                self._changed[inc.id] = inc
        for inc in mine:
            if inc.id in matched or inc.end is not None:
                continue
            # Open, and the Readings in view no longer show it: closed once they show it good again.
            back = self._good_again(st, int(inc.start // self.slot))
            if back is None:
                continue
            inc.end = max(inc.start, back * self.slot)
            inc.updated = now
            self._changed[inc.id] = inc

    def _good_again(self, st: NodeState, since: int) -> Optional[int]:
        """The first of K good intervals in a row from `since` on, if the node has them."""
        run, first = 0, None
        for i in range(max(since, st.base), st.last + 1):
            j = i - st.base
            code = DARK_CODE[st.flags[j] & 31]
            if code == C.GOOD and st.nok[j] * 2 < st.npub[j]:
                code = C.BAD
            if code == C.GOOD:
                first = i if not run else first
                run += 1
                if run >= self.s.close_after:
                    return first
            elif code != C.NEUTRAL:
                run = 0
        return None

    # -- upstream groups --------------------------------------------------------------------
    def _group_members(self) -> dict[str, tuple[str, list[NodeState]]]:
        """Group key -> (how it was found, its nodes): configured groups, then shared ISP hops."""
        out: dict[str, tuple[str, list[NodeState]]] = {g.name: ("group", []) for g in self.s.groups}
        for st in self.nodes.values():
            for name in st.groups:
                out[name][1].append(st)
            if self.s.infer_upstream and st.isp_hop and _public(st.isp_hop):
                out.setdefault(f"isp-hop {st.isp_hop}", ("isp_hop", []))[1].append(st)
        return out

    def _evaluate_groups(self, now: float) -> None:
        s = self.s
        members = self._group_members()
        for key, (how, nodes) in members.items():
            if len(nodes) < s.upstream_min_nodes:
                continue
            dark = [
                i
                for st in nodes
                for i in st.incidents
                if i.kind == C.DARK and (i.parent == "" or i.parent == self._open_group_id(key))
            ]
            group = self.groups.get(key)
            if group is not None:
                self._grow_group(group, [i for i in dark if i.parent == "" and i.end is None], now)
                self._update_group(group, [i for i in dark if i.parent == group.id], now)
                continue
            candidates = sorted((i for i in dark if i.end is None and i.parent == ""), key=lambda i: i.start)
            best: list[Incident] = []
            for a, first in enumerate(candidates):
                together = [i for i in candidates[a:] if i.start - first.start <= s.upstream_together_s]
                if len(together) > len(best):
                    best = together
            if len(best) >= s.upstream_min_nodes and len(best) >= s.upstream_min_share * len(nodes):
                self._open_group(key, how, best, now)

    def _open_group_id(self, key: str) -> str:
        group = self.groups.get(key)
        return group.id if group is not None else "\0"

    def _open_group(self, key: str, how: str, members: list[Incident], now: float) -> None:
        start = min(i.start for i in members)
        group = Incident(
            id=f"group/{key}/{int(start)}", kind=C.DARK, cause=C.UPSTREAM, severity=C.SEVERITY[C.DARK], group=key,
            start=start, detected=now, updated=now, cause_since=now,
            evidence=[[how, {"name": key.split(" ", 1)[-1]}]],
        )  # fmt: skip
        self.groups[key] = group
        self.incidents[group.id] = group
        self._grow_group(group, members, now)
        self._update_group(group, members, now)

    def _grow_group(self, group: Incident, candidates: list[Incident], now: float) -> None:
        for i in candidates:
            if abs(i.start - group.start) <= self.s.upstream_together_s:
                i.parent = group.id
                self._changed[i.id] = i

    def _update_group(self, group: Incident, members: list[Incident], now: float) -> None:
        members = sorted(members, key=lambda i: (i.kecamatan.casefold(), i.desa.casefold(), i.node))
        listed = [{"node": i.node, "kecamatan": i.kecamatan, "desa": i.desa, "cause": i.cause} for i in members]
        kecs = sorted({i.kecamatan for i in members}, key=str.casefold)
        cause = C.group_cause([i.cause for i in members])
        start = min((i.start for i in members), default=group.start)
        end = max(e for e in (i.end for i in members) if e is not None) if all(i.end for i in members) else None
        causes = ", ".join(f"{c} x{n}" for c, n in _tally(i.cause for i in members))
        evidence = [group.evidence[0], ["members", {"n": len(members), "causes": causes}]]
        new = (listed, ", ".join(kecs), cause, start, end, evidence)
        if new != (group.members, group.kecamatan, group.cause, group.start, group.end, group.evidence):
            if cause != group.cause:
                group.cause_since = now
            group.members, group.kecamatan, group.cause, group.start, group.end, group.evidence = new
            group.desa = ", ".join(i.desa for i in members)
            group.updated = now
            self._changed[group.id] = group
        if group.end is not None:
            self.groups.pop(group.group, None)

    # -- what to tell -----------------------------------------------------------------------
    def _decide(self, now: float) -> list[Notice]:
        s = self.s
        notices: list[Notice] = []
        for inc in self.incidents.values():
            if inc.told_resolved or (inc.parent and not inc.told):
                continue  # an upstream incident speaks for it (unless it was told before it joined)
            if not inc.told:
                if inc.end is not None:
                    continue  # over before anyone needed to know
                if self._in_maintenance(inc):
                    assert inc.maintenance_end is not None
                    overrun = s.maintenance_overrun_s
                    if not overrun or now < inc.maintenance_end + overrun:
                        continue
                    notices.append(self._notice("open", inc, now, overrun=True))
                elif now - inc.detected >= s.hold_s:
                    notices.append(self._notice("open", inc, now))
                else:
                    continue
                inc.told, inc.told_cause = True, inc.cause
            elif inc.end is not None:
                notices.append(self._notice("resolved", inc, now, previous=inc.told_cause))
                inc.told_resolved = True
            elif inc.cause != inc.told_cause and now - inc.cause_since >= s.cause_settle_s:
                notices.append(self._notice("cause", inc, now, previous=inc.told_cause))
                inc.told_cause = inc.cause
            else:
                continue
            self._changed[inc.id] = inc
        return notices

    def _notice(self, event: str, inc: Incident, now: float, previous: str = "", overrun: bool = False) -> Notice:
        inc.notices += 1
        snapshot = dataclasses.replace(inc, members=[dict(m) for m in inc.members], evidence=list(inc.evidence))
        return Notice(event, snapshot, inc.notices, now, previous, overrun)

    def _in_maintenance(self, inc: Incident) -> bool:
        """Did it start inside a window covering it (every member, for an upstream incident)?"""
        if inc.node:
            st = self.nodes.get(inc.node)
            if st is None:
                place = Place(inc.node, inc.kecamatan, inc.desa)
            else:
                place = Place(inc.node, st.kecamatan, st.desa, str(st.site.get("operator") or ""))
            occ = self.calendar.covering(place, inc.start)
            if occ is None:
                inc.maintenance, inc.maintenance_end = "", None
                return False
            inc.maintenance, inc.maintenance_end = occ.name, occ.end
            return True
        kids = [self.incidents.get(i) for i in self._children(inc)]
        if kids and all(k is not None and self._in_maintenance(k) for k in kids):
            ends = [k.maintenance_end for k in kids if k is not None and k.maintenance_end is not None]
            inc.maintenance, inc.maintenance_end = kids[0].maintenance if kids[0] else "", max(ends)
            return True
        inc.maintenance, inc.maintenance_end = "", None
        return False

    def _children(self, group: Incident) -> list[str]:
        return [i.id for i in self.incidents.values() if i.parent == group.id]

    def _forget(self) -> None:
        """Closed incidents leave memory once told (or never to be told) and out of the nodes' view."""
        for st in self.nodes.values():
            if not st.incidents:
                continue
            horizon = st.base * self.slot
            keep = []
            for i in st.incidents:
                done = i.end is not None and (i.told_resolved or not i.told) and i.end < horizon
                parent = self.incidents.get(i.parent) if i.parent else None
                if done and (parent is None or parent.end is not None):
                    self.incidents.pop(i.id, None)
                else:
                    keep.append(i)
            st.incidents = keep
        for i in [i for i in self.incidents.values() if not i.node and i.end is not None]:
            if (i.told_resolved or not i.told) and not self._children(i):
                self.incidents.pop(i.id, None)

    def open_incidents(self) -> list[Incident]:
        return sorted((i for i in self.incidents.values() if i.end is None), key=lambda i: i.start)

    def footprint(self) -> dict[str, int]:
        """Sizes, for the benchmark: nodes, intervals held, incidents in memory."""
        return {
            "nodes": len(self.nodes),
            "intervals": sum(st.slots() for st in self.nodes.values()),
            "incidents": len(self.incidents),
        }


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _public(address: str) -> bool:
    """A shared private or CGNAT hop (every Starlink dish has 100.64.0.1) says nothing about upstreams."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not any(ip in net for net in SHARED_HOPS if ip.version == net.version) and not ip.is_link_local


def _segments(machine: Machine) -> list[Segment]:
    current = machine.current()
    return [*machine.segments, *([current] if current is not None else [])]


def _mark(ranges: list[list[int]], a: int, b: int) -> None:
    """Add interval range [a, b] to sorted, merged ranges."""
    if ranges and a <= ranges[-1][1] + 1:
        ranges[-1][1] = max(ranges[-1][1], b)
        ranges[-1][0] = min(ranges[-1][0], a)
    else:
        ranges.append([a, b])


def _overlaps(ranges: list[list[int]], a: int, b: int) -> bool:
    return any(r[0] <= b and r[1] >= a for r in ranges)


def _tally(items: Iterable[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _evidence(family: str, params: dict[str, Any]) -> list[list[Any]]:
    return [[family, dict(params)]]
