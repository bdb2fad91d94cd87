"""/api/...: the same views as the pages, as JSON, for scripts and dashboards.

Only what the pages show: a node's site is cut to the keys the regency uses
(no free tag can leak a secret), and numbers are plain (ms, %, Mbit/s).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Optional

from agent.collector import sla
from agent.collector.fleet import NodeView
from agent.collector.web.incidents import Incident
from agent.collector.web.map import shown_state
from agent.collector.web.views import Fleet, NodeDetail

SITE_KEYS = ("kabupaten", "kecamatan", "desa", "lat", "lon", "operator", "contract_mbps")


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities (a stored site may hold them) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def dumps(data: Any) -> bytes:
    return json.dumps(clean(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str).encode()


def public_site(site: dict[str, Any]) -> dict[str, Any]:
    return {k: site[k] for k in SITE_KEYS if k in site}


def node_item(v: NodeView, site: dict[str, Any], month: Optional[sla.Tally]) -> dict[str, Any]:
    item = v.to_dict()
    item["shown_state"] = shown_state(v)
    item["operator"] = site.get("operator")
    item["month_availability_pct"] = (
        None if month is None or month.availability is None else round(month.availability * 100, 4)
    )
    return item


def incidents_list(items: Optional[list[Incident]]) -> Optional[list[dict[str, Any]]]:
    return None if items is None else [i.to_dict() for i in items]


def overview(fleet: Fleet, month_nodes: Optional[dict[str, sla.Tally]], month_kec: Optional[dict[str, sla.Tally]],
             open_incidents: Optional[list[Incident]]) -> dict[str, Any]:  # fmt: skip
    return {
        "generated": fleet.now,
        "kabupaten": fleet.kabupaten,
        "totals": fleet.totals,
        "kecamatan": [
            {**k.to_dict(), "month_availability_pct": _pct((month_kec or {}).get(k.kecamatan))} for k in fleet.kecamatan
        ],
        "nodes": [node_item(v, fleet.sites.get(v.node, {}), (month_nodes or {}).get(v.node)) for v in fleet.views],
        "rejected": fleet.rejects,
        "incidents": incidents_list(open_incidents),
    }


def _pct(t: Optional[sla.Tally]) -> Optional[float]:
    return None if t is None or t.availability is None else round(t.availability * 100, 4)


def node(d: NodeDetail) -> dict[str, Any]:
    return {
        "node": node_item(d.view, d.site, None),
        "site": public_site(d.site),
        "range": d.range,
        "since": d.since,
        "until": d.until,
        "bucket_s": d.width_s,
        "buckets": [dataclasses.asdict(b) for b in d.buckets],
        "segments": [dataclasses.asdict(s) for s in d.segments],
        "availability": d.tally.to_dict(),
        "throughput": [{"ts": ts, "download_mbps": dl, "upload_mbps": ul} for ts, dl, ul in d.throughput],
        "contract_mbps": d.contract_mbps,
        "link_changes": [{"ts": ts, "from": a, "to": b} for ts, a, b in d.link_changes],
        "verdict": d.verdict,
        "verdict_ts": d.verdict_ts,
        "checks": [c.to_dict() for c in d.checks],
        "usage": [{"month": m, "bytes": b} for m, b in d.usage],
        "budget_month_mb": d.budget_month_mb,
        "incidents": incidents_list(d.incidents),
        "history_ready": d.history_ready,
    }
