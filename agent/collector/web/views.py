"""What the pages, the API and /metrics show, read from the store: the fleet now, one node's history.

The state rules are `agent.collector.fleet`'s (not a copy): this module only
reads rows and hands them over. History comes from the rollup (hours and
segments), the last hours and the 24 h view straight from the readings.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import types
from collections.abc import Sequence
from typing import Any, Optional

from agent.collector import fleet, sla
from agent.collector.fleet import KecamatanView, NodeView
from agent.collector.maintenance import Place
from agent.collector.settings import CollectorConfig
from agent.collector.store import Store
from agent.collector.store.base import month_of
from agent.collector.web import incidents, rollup
from agent.collector.web.rollup import Figures
from agent.diagnose import verdicts
from agent.reading.model import Reading

WANTED = ("icmp", "tcp", "link", "throughput", "dns", "http", "usage")
RANGES: dict[str, tuple[float, float]] = {  # name -> (span, bucket width)
    "24h": (86400.0, 900.0),
    "7d": (7 * 86400.0, 3600.0),
    "30d": (30 * 86400.0, 4 * 3600.0),
}


def policy(cfg: CollectorConfig) -> fleet.Policy:
    return fleet.Policy(cfg.fleet.interval_s, cfg.fleet.silent_intervals)


def kabupaten(cfg: CollectorConfig) -> str:
    """The regency's name from the config (never from what nodes send)."""
    return str(getattr(cfg.fleet, "kabupaten", "") or "Musi Banyuasin")


def sites(store: Store, node: Optional[str] = None) -> dict[str, dict[str, Any]]:
    """Each node's last site (tags included: operator, contract_mbps)."""
    sql, params = "SELECT node, site FROM nodes", []
    if node is not None:
        sql, params = sql + " WHERE node = ?", [node]
    out = {}
    for n, site in store.query(sql, params):
        try:
            value = store._fields(site) if site else {}
        except ValueError:
            value = {}
        out[str(n)] = value if isinstance(value, dict) else {}
    return out


# The fields the state rules read (fleet.node_view). The overview asks the database for these
# alone: parsing every latest row's whole JSON was a third of the overview's time at 10,000 nodes.
FLEET_FIELDS: tuple[str, ...] = (
    "loss_pct", "rtt_p50_ms", "connect_p50_ms", "link_type", "confidence", "download_mbps", "upload_mbps",
    "month_mb", "plan_mb", "budget_mb", "level",  # the node's own traffic, from its usage Reading (docs/data-cost.md)
)  # fmt: skip


def _fields_sql(store: Store, keys: Optional[Sequence[str]]) -> str:
    if not keys:
        return "fields"
    if store.placeholder == "?":  # SQLite: one column per key, extracted in C; what it cannot parse (NaN), whole
        cols = ", ".join(f"CASE WHEN json_valid(fields) THEN json_extract(fields, '$.{k}') END" for k in keys)
        return f"CASE WHEN json_valid(fields) THEN NULL ELSE fields END, {cols}"
    return "jsonb_strip_nulls(jsonb_build_object(" + ", ".join(f"'{k}', fields->'{k}'" for k in keys) + "))"


def latest_rows(
    store: Store,
    node: Optional[str] = None,
    kinds: Sequence[str] = WANTED,
    keys: Optional[Sequence[str]] = None,
    kecamatan: Optional[str] = None,
) -> list[dict[str, Any]]:
    """Latest rows of these kinds; with `keys`, their fields cut to those keys (read by the database)."""
    marks = ", ".join("?" * len(kinds))
    sql = f"SELECT node, measurement, target, ts, ok, error_code, {_fields_sql(store, keys)} FROM latest WHERE measurement IN ({marks})"
    params: list[Any] = list(kinds)
    if node is not None:
        sql += " AND node = ?"
        params.append(node)
    if kecamatan is not None and kecamatan.isascii():  # a superset of fleet's casefold match; fleet filters
        sql += " AND node IN (SELECT node FROM nodes WHERE lower(kecamatan) = lower(?))"
        params.append(kecamatan)
    split = bool(keys) and store.placeholder == "?"
    out = []
    for row in store.query(sql, params):
        n, m, t, ts, ok, code = row[:6]
        if split and row[6] is None:
            fields: Any = {k: v for k, v in zip(keys or (), row[7:]) if v is not None}
        else:
            try:
                fields = store._fields(row[6])
            except ValueError:
                fields = {}
        out.append({"node": n, "measurement": m, "target": t, "ts": ts, "ok": bool(ok), "error_code": code,
                    "fields": fields if isinstance(fields, dict) else {}})  # fmt: skip
    return out


def contract_mbps(site: dict[str, Any], cfg: CollectorConfig) -> Optional[float]:
    """The node's `contract_mbps` tag (a number or numeric text), else its provider's configured speed."""
    value = site.get("contract_mbps")
    try:
        mbps = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
    except ValueError:
        mbps = None
    if mbps is not None and math.isfinite(mbps) and mbps > 0:
        return mbps
    provider = cfg.sla.providers.get(str(site.get("operator", "")))
    return provider.speed_mbps if provider is not None and provider.speed_mbps > 0 else None


@dataclasses.dataclass
class Fleet:
    now: float
    kabupaten: str
    views: list[NodeView]
    kecamatan: list[KecamatanView]
    totals: dict[str, Any]
    rejects: dict[str, int]
    sites: dict[str, dict[str, Any]]  # filled only when asked (the API): the pages need none
    readings_stored: dict[str, int]


FLEET_KINDS = ("icmp", "tcp", "link", "throughput", "usage")  # what the state rules and the data column read


def snapshot(
    store: Store, cfg: CollectorConfig, now: float, kecamatan: Optional[str] = None, with_sites: bool = False
) -> Fleet:
    nodes = store.nodes()
    latest = latest_rows(store, kinds=FLEET_KINDS, keys=FLEET_FIELDS, kecamatan=kecamatan)
    views = fleet.node_views(nodes, latest, store.usage(month_of(now)), now, policy(cfg), kecamatan)
    kecs = fleet.kecamatan_views(views)
    stored = {str(n["node"]): int(n.get("seq_count") or 0) for n in nodes}
    site_of = sites(store) if with_sites else {}
    return Fleet(now, kabupaten(cfg), views, kecs, fleet.totals(kecs), store.rejects(), site_of, stored)


# -- one node ------------------------------------------------------------------
@dataclasses.dataclass
class NodeDetail:
    view: NodeView
    site: dict[str, Any]
    range: str
    since: float
    until: float
    width_s: float
    buckets: list[Figures]
    segments: list[sla.Segment]
    tally: sla.Tally
    throughput: list[tuple[float, Optional[float], Optional[float]]]
    link_changes: list[tuple[float, str, str]]
    contract_mbps: Optional[float]
    checks: list[verdicts.Check]
    verdict: Optional[str]
    verdict_ts: Optional[float]
    usage: list[tuple[str, int]]
    budget_month_mb: Optional[float]
    incidents: Optional[list[incidents.Incident]]
    history_ready: bool


def merge(hours: Sequence[Figures], start: float, width: float) -> list[Figures]:
    """Hourly figures into wider buckets: medians of the hours' medians, loss weighted by readings."""
    groups: dict[float, list[Figures]] = {}
    for h in hours:
        groups.setdefault(start + math.floor((h.start - start) / width) * width, []).append(h)
    out = []
    for b, group in sorted(groups.items()):
        p50 = [g.p50 for g in group if g.p50 is not None]
        p90 = [g.p90 for g in group if g.p90 is not None]
        weighted = [(g.loss, g.n) for g in group if g.loss is not None]
        n_loss = sum(n for _, n in weighted)
        downs = [g.down_mbps for g in group if g.down_mbps is not None]
        ups = [g.up_mbps for g in group if g.up_mbps is not None]
        links = [g.link_type for g in group if g.link_type]
        out.append(
            Figures(
                start=b,
                n=sum(g.n for g in group),
                n_up=sum(g.n_up for g in group),
                p50=statistics.median(p50) if p50 else None,
                p90=statistics.median(p90) if p90 else None,
                loss=(sum(v * n for v, n in weighted) / n_loss) if n_loss else None,
                down_mbps=statistics.median(downs) if downs else None,
                up_mbps=statistics.median(ups) if ups else None,
                n_tput=sum(g.n_tput for g in group),
                link_type=links[-1] if links else None,
            )
        )
    return out


def link_changes(buckets: Sequence[Figures]) -> list[tuple[float, str, str]]:
    out, last = [], None
    for b in buckets:
        if b.link_type:
            if last is not None and b.link_type != last:
                out.append((b.start, last, b.link_type))
            last = b.link_type
    return out


def diagnosis(
    rows: Sequence[dict[str, Any]], window_s: float
) -> tuple[list[verdicts.Check], Optional[str], Optional[float]]:
    """The node's last readings through diagnose's own rules: which part is broken, in the same words."""
    rows = fleet.recent([r for r in rows if isinstance(r.get("ts"), (int, float))], window_s)
    by_role: dict[str, list[Reading]] = {}
    for r in rows:
        # diagnose's rules expect what a probe writes: numbers it cannot hold (NaN, 10**400) are left out.
        f = {k: v for k, v in r["fields"].items() if _f(v) is not None or not isinstance(v, (int, float))}
        options = types.SimpleNamespace(server=f.get("server", "system") if r["measurement"] == "dns" else "system")
        role = verdicts.role_of(r["measurement"], r["target"], options)
        if role is None:
            continue
        code = r.get("error_code")
        reading = Reading(
            id="", node=r["node"], site={}, seq=None, measurement=r["measurement"], target=str(r["target"]), ts="",
            clock_synced=True, mono_s=0.0, boot="", duration_ms=0.0, ok=bool(r["ok"]),
            error={"code": str(code), "message": ""} if code else None, fields=f,
        )  # fmt: skip
        by_role.setdefault(role, []).append(reading)
    if not by_role:
        return [], None, None
    checks = verdicts.latency_checks(by_role)
    return checks, verdicts.overall(checks), max(float(r["ts"]) for r in rows)


def node_detail(
    store: Store, cfg: CollectorConfig, node: str, range_name: str, now: float, history_ready: bool
) -> Optional[NodeDetail]:
    row = _node_row(store, node)
    if row is None:
        return None
    latest = latest_rows(store, node)
    usage_rows = store.query("SELECT month, bytes FROM usage WHERE node = ? ORDER BY month DESC LIMIT 6", (node,))
    usage = [(str(m), int(b)) for m, b in usage_rows]
    this_month = dict(usage).get(month_of(now), 0)
    view = fleet.node_view(row, latest, this_month, now, policy(cfg))
    site = sites(store, node).get(node, {})
    span, width = RANGES[range_name]
    since, hour_now = now - span, rollup.floor_hour(now)
    hold = cfg.sla.evidence_s
    if range_name == "24h" or not history_ready:
        raw = rollup.read_rows(store, node, since - hold)
        buckets = rollup.bucketed([r for r in raw if r.ts >= since], since, width)
        segs = sla.mark_power_off(sla.status_segments(rollup.samples(raw), hold, since=since))
        tput = [(r.ts, _f(r.fields.get("download_mbps")), _f(r.fields.get("upload_mbps")))
                for r in raw if r.measurement == "throughput" and r.ok and r.ts >= since]  # fmt: skip
    else:
        hours = rollup.hours(store, node, since, hour_now)
        raw = rollup.read_rows(store, node, hour_now)
        hours += rollup.bucketed(raw, hour_now, 3600.0)
        buckets = merge(hours, since, width) if width > 3600.0 else hours
        segs = rollup.segments(store, since, now, node).get(node, [])
        tput = [(h.start + 1800.0, h.down_mbps, h.up_mbps) for h in hours if h.n_tput]
    if not history_ready and range_name != "24h":
        segs = []
    place = Place(node, str(row["kecamatan"] or ""), str(row["desa"] or ""), str(site.get("operator") or ""))
    maintenance = cfg.calendar().intervals(place, since, now)
    checks, verdict, verdict_ts = diagnosis(latest, max(policy(cfg).silent_after_s, 3600.0))
    budget = next((_f(r["fields"].get("budget_month_mb")) for r in latest if r["measurement"] == "throughput"), None)
    return NodeDetail(
        view=view,
        site=site,
        range=range_name,
        since=since,
        until=now,
        width_s=width,
        buckets=buckets,
        segments=segs,
        tally=sla.tally(segs, since, now, maintenance),
        throughput=tput,
        link_changes=link_changes(buckets),
        contract_mbps=contract_mbps(site, cfg),
        checks=checks,
        verdict=verdict,
        verdict_ts=verdict_ts,
        usage=usage,
        budget_month_mb=budget,
        incidents=incidents.node_incidents(store, node, now - 30 * 86400.0),
        history_ready=history_ready or range_name == "24h",
    )


def _node_row(store: Store, node: str) -> Optional[dict[str, Any]]:
    cols = (
        "node, kabupaten, kecamatan, desa, lat, lon, first_seen, last_seen, last_ts, seq_min, seq_max, "
        "seq_count, status, status_ts, status_received, status_info"
    )
    names = [c.strip() for c in cols.split(",")]
    found = store.query(f"SELECT {cols} FROM nodes WHERE node = ?", (node,))
    if not found:
        return None
    row = dict(zip(names, found[0]))
    try:
        info = store._fields(row["status_info"]) if row["status_info"] else {}
    except ValueError:
        info = {}
    row["status_info"] = info if isinstance(info, dict) else {}
    return row


def _f(value: Any) -> Optional[float]:
    return rollup.num(value)
