"""The regency's view of its fleet: pure functions from stored rows to node and kecamatan summaries.

A desa is dark when its node is offline (its last will said so), silent (no
reading for more than N intervals), or reports that nothing beyond its
gateway answers (the gateway target succeeds, every public target fails).
The "bebas blankspot" figure is the share of desa that are not dark.

Rows come from a database that may hold anything: old rows from before the
contract was enforced, or a hand edit (an infinite latitude, a 400-digit
number, text where a number belongs). Every value is read through `_num`,
`_int` or `_text`, so one bad row shows as a missing value, never as a report
that cannot be made.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from agent.reading import contract

ONLINE, OFFLINE, SILENT = "online", "offline", "silent"
UPLINK_OK, UPLINK_GATEWAY_ONLY, UPLINK_UNKNOWN = "ok", "gateway_only", "unknown"
PATH_PROBES = ("icmp", "tcp")
UNKNOWN_LINK = "unknown"


@dataclasses.dataclass(frozen=True)
class Policy:
    interval_s: float = 300.0  # the agents' usual interval
    silent_intervals: float = 3.0  # silent after this many intervals without a reading

    @property
    def silent_after_s(self) -> float:
        return self.interval_s * self.silent_intervals


@dataclasses.dataclass(frozen=True)
class NodeView:
    node: str
    kecamatan: str
    desa: str
    lat: Optional[float]
    lon: Optional[float]
    state: str
    uplink: str
    dark: bool
    last_seen: Optional[float]
    link_type: str
    link_confidence: Optional[float]
    latency_p50_ms: Optional[float]
    loss_pct: Optional[float]
    download_mbps: Optional[float]
    upload_mbps: Optional[float]
    bytes_month: int
    seq_gaps: int
    version: str = ""
    spool_depth: Optional[int] = None  # from the node's retained status: its backlog
    dropped: Optional[int] = None  # readings its full spool had to drop (explains gaps)
    # From the node's latest `usage` Reading (docs/data-cost.md): all of its own traffic this month,
    # its data plan (site tag plan_mb) or else its budget, and the step it took to keep to the budget.
    data_mb: Optional[float] = None
    data_plan_mb: Optional[float] = None
    data_level: str = ""
    # The latest link look found the desa on a backup uplink (not the one it held longest).
    on_backup: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class KecamatanView:
    kecamatan: str
    nodes: int
    desa_total: int
    desa_reachable: int
    desa_dark: int
    share_reachable: float  # 0..1, the "bebas blankspot" figure
    states: dict[str, int]
    link_types: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _num(value: Any, bounds: Optional[tuple[float, float]] = None) -> Optional[float]:
    """A finite number within `bounds`, or None for anything else (huge, NaN, text, a bool)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    if not math.isfinite(number) or (bounds is not None and not bounds[0] <= number <= bounds[1]):
        return None
    return number


def _int(value: Any) -> Optional[int]:
    if isinstance(value, int) and not isinstance(value, bool) and contract.INT_MIN <= value <= contract.INT_MAX:
        return value
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _field(row: Mapping[str, Any], name: str) -> Optional[float]:
    """A numeric field of a latest-row, within the contract's range for it."""
    return _num(row["fields"].get(name), contract.field_range(name))


def _clean_row(row: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """A latest-row with the types the view needs, or None when it has no usable time."""
    ts = _num(row.get("ts"))
    if ts is None:
        return None
    fields = row.get("fields")
    return {
        "node": _text(row.get("node")),
        "measurement": _text(row.get("measurement")),
        "target": _text(row.get("target")),
        "ts": ts,
        "ok": row.get("ok") is True or row.get("ok") == 1,
        "fields": fields if isinstance(fields, dict) else {},
    }


def state_of(node: dict[str, Any], now: float, policy: Policy) -> str:
    """offline when the retained status says so, else silent when quiet too long, else online."""
    if node.get("status") == OFFLINE:
        return OFFLINE
    last = _num(node.get("last_seen")) or _num(node.get("status_received"))
    if last is None or now - last > policy.silent_after_s:
        return SILENT
    return ONLINE


def uplink_of(rows: Sequence[dict[str, Any]]) -> str:
    """From the latest icmp/tcp readings: does anything beyond the gateway answer?"""
    path = [r for r in rows if r["measurement"] in PATH_PROBES]
    public = [r for r in path if r["target"] != "gateway"]
    if not public:
        return UPLINK_UNKNOWN
    if any(r["ok"] and (_field(r, "loss_pct") or 0.0) < 100.0 for r in public):
        return UPLINK_OK
    return UPLINK_GATEWAY_ONLY


def recent(rows: Sequence[dict[str, Any]], window_s: float) -> list[dict[str, Any]]:
    """Drop latest-rows of targets that stopped reporting long before the node's newest one."""
    if not rows:
        return []
    newest = max(r["ts"] for r in rows)
    return [r for r in rows if newest - r["ts"] <= window_s]


def node_view(
    node: dict[str, Any], rows: Sequence[dict[str, Any]], bytes_month: int, now: float, policy: Policy
) -> NodeView:
    clean = [c for r in rows for c in [_clean_row(r)] if c is not None]
    rows = recent(clean, max(policy.silent_after_s, 3600.0))
    state = state_of(node, now, policy)
    uplink = uplink_of(rows)
    public = [r for r in rows if r["measurement"] in PATH_PROBES and r["target"] != "gateway"]
    p50s = [_field(r, "rtt_p50_ms" if "rtt_p50_ms" in r["fields"] else "connect_p50_ms") for r in public if r["ok"]]
    losses = [v for r in public for v in [_field(r, "loss_pct")] if v is not None]
    # The link look runs every 4 h and the speed test every 6 h: their latest rows are older than
    # the path window by design, so they are taken from every row, not only the recent ones.
    link = max((r for r in clean if isinstance(r["fields"].get("link_type"), str)), key=lambda r: r["ts"], default=None)
    speed = max((r for r in clean if _field(r, "download_mbps") is not None), key=lambda r: r["ts"], default=None)
    usage = max((r for r in clean if r["measurement"] == "usage"), key=lambda r: r["ts"], default=None)
    seq_gaps = 0
    seq_min, seq_max = _int(node.get("seq_min")), _int(node.get("seq_max"))
    if seq_min is not None and seq_max is not None:
        seq_gaps = max(0, seq_max - seq_min + 1 - (_int(node.get("seq_count")) or 0))
    clean_p50 = [v for v in p50s if v is not None]
    info = node.get("status_info")
    info = info if isinstance(info, dict) else {}
    return NodeView(
        node=_text(node.get("node")),
        kecamatan=_text(node.get("kecamatan")),
        desa=_text(node.get("desa")),
        lat=_num(node.get("lat"), contract.LAT),
        lon=_num(node.get("lon"), contract.LON),
        state=state,
        uplink=uplink,
        dark=state != ONLINE or uplink == UPLINK_GATEWAY_ONLY,
        last_seen=_num(node.get("last_seen")),
        link_type=link["fields"]["link_type"] if link else UNKNOWN_LINK,
        link_confidence=_field(link, "confidence") if link else None,
        on_backup=bool(link and link["fields"].get("backup") is True),
        latency_p50_ms=round(statistics.median(clean_p50), 3) if clean_p50 else None,
        loss_pct=round(statistics.fmean(losses), 2) if losses else None,
        download_mbps=_field(speed, "download_mbps") if speed else None,
        upload_mbps=_field(speed, "upload_mbps") if speed else None,
        bytes_month=max(0, _int(bytes_month) or 0),
        seq_gaps=seq_gaps,
        version=_text(info.get("version", "")),
        spool_depth=_int(info.get("spool_depth")),
        dropped=_int(info.get("dropped")),
        **usage_of(usage),
    )


def usage_of(row: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The data_* fields of a NodeView from a node's latest usage Reading (none: all unknown)."""
    if row is None:
        return {}
    plan = _field(row, "plan_mb") or _field(row, "budget_mb") or None
    level = row["fields"].get("level")
    return {
        "data_mb": _field(row, "month_mb"),
        "data_plan_mb": plan,
        "data_level": contract.printable(level, 16) if isinstance(level, str) else "",
    }


def usage_text(v: NodeView) -> Optional[str]:
    """The node's own traffic against its plan, e.g. "3.2 / 1000 MB (0.3 %)" (and its step, when it stepped
    down); None without a usage Reading."""
    if v.data_mb is None:
        return None
    out = f"{v.data_mb:.1f} MB"
    if v.data_plan_mb:
        out = f"{v.data_mb:.1f} / {v.data_plan_mb:g} MB ({100 * v.data_mb / v.data_plan_mb:.1f} %)"
    return out + (f", {v.data_level}" if v.data_level not in ("", "full") else "")


def node_views(
    nodes: Iterable[dict[str, Any]],
    latest: Iterable[dict[str, Any]],
    usage: dict[str, int],
    now: float,
    policy: Policy = Policy(),
    kecamatan: Optional[str] = None,
) -> list[NodeView]:
    by_node: dict[str, list[dict[str, Any]]] = {}
    for row in latest:
        by_node.setdefault(_text(row.get("node")), []).append(row)
    wanted = kecamatan.casefold() if kecamatan else None
    views = [
        node_view(n, by_node.get(_text(n.get("node")), []), usage.get(_text(n.get("node")), 0), now, policy)
        for n in nodes
        if wanted is None or _text(n.get("kecamatan")).casefold() == wanted
    ]
    return sorted(views, key=lambda v: (v.kecamatan.casefold(), v.desa.casefold(), v.node))


def kecamatan_views(views: Sequence[NodeView]) -> list[KecamatanView]:
    """Per kecamatan: a desa is reachable when any of its nodes is online and gets beyond its gateway."""
    groups: dict[str, list[NodeView]] = {}
    for v in views:
        groups.setdefault(v.kecamatan, []).append(v)
    out = []
    for name in sorted(groups, key=str.casefold):
        members = groups[name]
        desa: dict[str, bool] = {}
        for v in members:
            desa[v.desa] = desa.get(v.desa, False) or not v.dark
        reachable = sum(desa.values())
        states = {s: sum(1 for v in members if v.state == s) for s in (ONLINE, OFFLINE, SILENT)}
        links: dict[str, int] = {}
        for v in members:
            links[v.link_type] = links.get(v.link_type, 0) + 1
        out.append(
            KecamatanView(
                kecamatan=name,
                nodes=len(members),
                desa_total=len(desa),
                desa_reachable=reachable,
                desa_dark=len(desa) - reachable,
                share_reachable=round(reachable / len(desa), 4) if desa else 0.0,
                states=states,
                link_types=dict(sorted(links.items())),
            )
        )
    return out


def totals(kecs: Sequence[KecamatanView]) -> dict[str, Any]:
    desa = sum(k.desa_total for k in kecs)
    reachable = sum(k.desa_reachable for k in kecs)
    links: dict[str, int] = {}
    for k in kecs:
        for name, n in k.link_types.items():
            links[name] = links.get(name, 0) + n
    return {
        "kecamatan": len(kecs),
        "nodes": sum(k.nodes for k in kecs),
        "desa_total": desa,
        "desa_reachable": reachable,
        "desa_dark": desa - reachable,
        "share_reachable": round(reachable / desa, 4) if desa else 0.0,
        "link_types": dict(sorted(links.items())),
    }


def chart_series(
    rows: Iterable[tuple[str, float, str, dict[str, Any]]], since: float, buckets: int = 48, span_s: float = 86400.0
) -> dict[str, dict[str, list[Optional[float]]]]:
    """Per node, the public-target latency (median p50) and loss (mean) in equal time buckets."""
    width = span_s / buckets
    acc: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
    for node, ts, target, fields in rows:
        when = _num(ts)
        if target == "gateway" or when is None or not since <= when < since + span_s or not isinstance(fields, dict):
            continue
        i = min(int((when - since) // width), buckets - 1)
        lat, loss = acc.setdefault(node, ([[] for _ in range(buckets)], [[] for _ in range(buckets)]))
        p50 = _num(fields.get("rtt_p50_ms"), contract.field_range("rtt_p50_ms"))
        lost = _num(fields.get("loss_pct"), contract.field_range("loss_pct"))
        if p50 is not None:
            lat[i].append(p50)
        if lost is not None:
            loss[i].append(lost)
    return {
        node: {
            "latency_ms": [round(statistics.median(b), 2) if b else None for b in lat],
            "loss_pct": [round(statistics.fmean(b), 2) if b else None for b in loss],
        }
        for node, (lat, loss) in acc.items()
    }
