"""Synthetic timelines for the incident engine: nodes that measure, spool while cut off, and replay.

A `Sim` advances a clock in ticks. Each node takes the default schedule's path readings
(icmp to the gateway and to two public targets every `every` seconds) unless it is off or
its agent stopped. What a reading shows follows the node's state:

    up            gateway ok, public ok                  delivered at once
    uplink        gateway ok, public fail                spooled, replayed when back
    lan           gateway fail, public fail              spooled, replayed when back
    off           nothing taken; back with a new boot id and mono_s from 0
    stopped       nothing taken; back with the same boot, mono_s continuous

A node that loses its broker connection is reported offline `will_s` later (its last will),
and online again with its replay. The engine is evaluated every `pass_s`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any, Optional

from agent.collector import fleet
from agent.collector.incidents.engine import Engine, Incident, Notice, Obs
from agent.collector.incidents.settings import GroupSettings, IncidentSettings, load_zone
from agent.collector.maintenance import Calendar, MaintenanceWindow

T0 = 1_780_000_000.0  # 2026-05-28, a fixed start so runs repeat exactly
_boots = itertools.count(1)


def settings(**kw: Any) -> IncidentSettings:
    groups = [g if isinstance(g, GroupSettings) else GroupSettings(**g) for g in kw.pop("groups", [])]
    return IncidentSettings(groups=groups, **kw)


@dataclasses.dataclass
class SimNode:
    node: str
    kecamatan: str
    desa: str
    phase: float
    site: dict[str, Any]
    state: str = "up"
    boot: str = ""
    booted_at: float = 0.0
    connected: bool = True
    lost_at: Optional[float] = None
    spool: list[Obs] = dataclasses.field(default_factory=list)
    rtt_ms: float = 25.0
    loss_pct: float = 0.0
    synced: bool = True
    seq: int = 0


class Sim:
    def __init__(
        self,
        cfg: Optional[IncidentSettings] = None,
        every: float = 60.0,
        tick: float = 10.0,
        pass_s: float = 30.0,
        will_s: float = 90.0,
        policy: Optional[fleet.Policy] = None,
        maintenance: Sequence[dict[str, Any]] = (),
    ) -> None:
        """`maintenance`: [[maintenance]] tables, read as collector.toml's calendar would be."""
        self.cfg = cfg or settings()
        windows = [MaintenanceWindow(**m) for m in maintenance]
        calendar = Calendar(windows, load_zone(self.cfg.timezone), self.cfg.groups)
        self.engine = Engine(self.cfg, policy or fleet.Policy(interval_s=60.0, silent_intervals=3.0), calendar)
        self.now = T0
        self.every, self.tick, self.pass_s, self.will_s = every, tick, pass_s, will_s
        self.nodes: dict[str, SimNode] = {}
        self.notices: list[Notice] = []
        self.stored: dict[str, Incident] = {}  # what the loop would have written
        self._next_pass = T0
        self.collector_down = False  # the collector hears nothing; the broker keeps it all for later
        self.backlog: list[tuple[str, Any]] = []
        self.holding: set[str] = set()  # nodes whose backlog the broker has not delivered yet

    # -- the fleet --------------------------------------------------------------------------
    def add(self, node: str, kecamatan: str = "Sekayu", desa: str = "", **site: Any) -> SimNode:
        n = SimNode(node, kecamatan, desa or node, phase=(len(self.nodes) * 7.0) % self.every, site=site)
        n.boot, n.booted_at = f"b{next(_boots):07d}", self.now - 86400.0
        self.nodes[node] = n
        self._row(n)
        self.engine.status(node, "online", self.now)
        return n

    def _row(self, n: SimNode, last_ts: Optional[float] = None) -> None:
        site = {"kabupaten": "Musi Banyuasin", "kecamatan": n.kecamatan, "desa": n.desa, **n.site}
        self.engine.node({"node": n.node, "kecamatan": n.kecamatan, "desa": n.desa, "site": site, "last_ts": last_ts})

    def set(self, node: str, state: str) -> None:
        """Change a node's state now: up, uplink, lan, off, stopped."""
        n = self.nodes[node]
        if state == "up" and n.state == "off":
            n.boot, n.booted_at = f"b{next(_boots):07d}", self.now  # a new boot: mono_s from 0
        n.state = state
        if state == "stopped":
            self._lose(n, will_s=0.0)  # the process died: its socket closed, the will is at once

    def _lose(self, n: SimNode, will_s: float) -> None:
        if n.connected:
            n.connected, n.lost_at = False, self.now + will_s

    # -- time -------------------------------------------------------------------------------
    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now += self.tick
            for n in self.nodes.values():
                self._tick(n)
            if self.now >= self._next_pass:
                self.evaluate()
                self._next_pass = self.now + self.pass_s

    def evaluate(self) -> None:
        result = self.engine.evaluate(self.now)
        for inc in result.changed:
            self.stored[inc.id] = dataclasses.replace(inc)
        self.notices += result.notices

    def _tick(self, n: SimNode) -> None:
        reachable = n.state == "up"
        if not reachable and n.state in ("uplink", "lan", "off"):
            self._lose(n, self.will_s)
        if n.lost_at is not None and self.now >= n.lost_at and not n.connected:
            self._status(n.node, "offline")
            n.lost_at = None
        if reachable and not n.connected:
            n.connected = True
            self._status(n.node, "online")
            for o in n.spool:
                self._reading(o)
            n.spool.clear()
        if n.state in ("off", "stopped"):
            return
        if (self.now - n.phase) % self.every >= self.tick:
            return
        for o in self._readings(n):
            if n.connected and reachable:
                self._reading(o)
            else:
                n.spool.append(o)

    def _reading(self, o: Obs) -> None:
        if self.collector_down or o.node in self.holding:
            self.backlog.append(("reading", o))
        else:
            self.engine.reading(o._replace(received=self.now))

    def _status(self, node: str, state: str) -> None:
        if self.collector_down or node in self.holding:
            self.backlog.append(("status", (node, state)))
        else:
            self.engine.status(node, state, self.now)

    def collector_back(self, slowly: bool = False) -> None:
        """The collector hears the broker again and gets what it kept: all at once, or (`slowly`) one
        node's backlog at a time, each when `release(node)` is called."""
        self.collector_down = False
        if slowly:
            self.holding = set(self.nodes)
            return
        for node in list(self.nodes):
            self.release(node)

    def release(self, node: str) -> None:
        self.holding.discard(node)
        mine = [(k, item) for k, item in self.backlog if (item.node if k == "reading" else item[0]) == node]
        self.backlog = [(k, item) for k, item in self.backlog if (item.node if k == "reading" else item[0]) != node]
        for kind, item in mine:
            if kind == "reading":
                self._reading(item)
            else:
                self._status(*item)

    def _readings(self, n: SimNode) -> list[Obs]:
        gw_ok = n.state in ("up", "uplink")
        pub_ok = n.state == "up"
        mono = self.now - n.booted_at
        out = []
        for target, ok in (("gateway", gw_ok), ("1.1.1.1", pub_ok), ("8.8.8.8", pub_ok)):
            rtt = 1.0 if target == "gateway" else n.rtt_ms
            loss = 0.0 if target == "gateway" else n.loss_pct
            fields: dict[str, Any] = {"sent": 5, "received": 5, "loss_pct": loss if ok else 100.0}
            if ok:
                fields["rtt_p50_ms"] = rtt
            out.append(self.obs(n, "icmp", target, ok, fields, mono=mono, error=None if ok else "timeout"))
        return out

    def obs(self, n: SimNode, measurement: str, target: str, ok: bool, fields: dict[str, Any], **kw: Any) -> Obs:
        mono = kw.get("mono", self.now - n.booted_at)
        error = kw.get("error")
        return Obs(
            node=n.node, ts=self.now, measurement=measurement, target=target, ok=ok, fields=fields, boot=n.boot,
            mono_s=mono, clock_synced=n.synced, error_code=error, error_message=kw.get("message"), received=None,
        )  # fmt: skip

    def deliver(self, node: str, measurement: str, target: str, ok: bool, fields: dict[str, Any], **kw: Any) -> None:
        """One extra Reading taken and delivered now (link, throughput, ...)."""
        n = self.nodes[node]
        self.engine.reading(self.obs(n, measurement, target, ok, fields, **kw)._replace(received=self.now))

    # -- what happened ----------------------------------------------------------------------
    def incidents(self, node: str = "", kind: str = "", cause: str = "") -> list[Incident]:
        found = [
            i
            for i in self.stored.values()
            if (not node or i.node == node) and (not kind or i.kind == kind) and (not cause or i.cause == cause)
        ]
        return sorted(found, key=lambda i: i.start)

    def told(self, incident_id: str = "") -> list[tuple[str, str]]:
        """(event, cause) of every notice, or of one incident's."""
        return [(n.event, n.incident.cause) for n in self.notices if not incident_id or n.incident.id == incident_id]
