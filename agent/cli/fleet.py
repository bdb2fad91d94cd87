"""`netprobe fleet`: which desa are dark, which are on satellite, kecamatan by kecamatan.

Names in the report come from nodes, so the text output shows control characters
as escapes (a desa named with a terminal escape must not drive the operator's
terminal), and the title's kabupaten is the collector's own `[fleet] kabupaten`,
never a value some node sent.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from agent.cli.common import err, load_collector_config_or_exit, open_collector_store_or_exit
from agent.cli.exitcodes import EX_FAIL, EX_OK, EX_USAGE
from agent.reading.contract import printable


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="PATH", help="collector config (finds the database)")
    p.add_argument("--kecamatan", metavar="K", help="only this kecamatan (case does not matter)")
    p.add_argument("--json", action="store_true", help="print totals, kecamatan and nodes as JSON")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML page with charts")
    p.add_argument("--lang", choices=("en", "id"), default="en", help="language of the text and the page")


def fleet_data(store: Any, cfg: Any, kecamatan: Any, now: float) -> dict[str, Any]:
    from agent.collector import fleet
    from agent.collector.store.base import month_of

    policy = fleet.Policy(cfg.fleet.interval_s, cfg.fleet.silent_intervals)
    nodes = store.nodes()
    views = fleet.node_views(nodes, store.latest(), store.usage(month_of(now)), now, policy, kecamatan)
    kecs = fleet.kecamatan_views(views)
    return {
        "generated": now,
        "kabupaten": cfg.fleet.kabupaten,
        "views": views,
        "kecamatan": kecs,
        "totals": fleet.totals(kecs),
        "rejects": store.rejects(),
        "known": sorted({str(n.get("kecamatan") or "") for n in nodes}),
    }


def as_json(data: dict[str, Any], store: Any) -> str:
    nodes = []
    for v in data["views"]:
        item = v.to_dict()
        item["gap_ranges"] = store.gap_ranges(v.node) if v.seq_gaps else []
        nodes.append(item)
    out = {
        "generated": data["generated"],
        "kabupaten": data["kabupaten"],
        "totals": data["totals"],
        "kecamatan": [k.to_dict() for k in data["kecamatan"]],
        "nodes": nodes,
        "rejected": data["rejects"],
    }
    return json.dumps(out, ensure_ascii=False, indent=1)


def as_text(data: dict[str, Any], lang: str) -> str:
    from agent.collector.fleet import usage_text
    from agent.collector.htmlview import fmt, fmt_bytes, fmt_time, link_label
    from agent.i18n import text

    t = data["totals"]
    lines = [
        printable(text("fleet.title", lang, kabupaten=data["kabupaten"]), 4096),
        text(
            "fleet.blankspot",
            lang,
            share=f"{t['share_reachable'] * 100:.0f}",
            reachable=t["desa_reachable"],
            total=t["desa_total"],
        ),
        "",
    ]
    rows: list[list[Any]] = [
        [text(f"fleet.col.{c}", lang) for c in ("kecamatan", "nodes", "desa", "reachable", "dark", "share", "links")]
    ]
    for k in data["kecamatan"]:
        links = ", ".join(f"{n} {c}" for n, c in k.link_types.items())
        share = f"{k.share_reachable * 100:.0f}%"
        rows.append([k.kecamatan, k.nodes, k.desa_total, k.desa_reachable, k.desa_dark, share, links])
    lines += [*table(rows), ""]
    cols = ("node", "desa", "state", "link", "latency", "loss", "speed", "data", "gaps", "last_seen")
    rows = [[text(f"fleet.col.{c}", lang) for c in cols]]
    for v in data["views"]:
        state = text(f"fleet.state.{v.state}", lang)
        if v.state == "online" and v.uplink == "gateway_only":
            state += " (" + text("fleet.uplink.gateway_only", lang) + ")"
        speed = f"{fmt(v.download_mbps)}/{fmt(v.upload_mbps)}" if v.download_mbps is not None else "-"
        rows.append(
            [v.node, v.desa, state, link_label(v, lang), fmt(v.latency_p50_ms, 1, " ms"), fmt(v.loss_pct, 1, "%"),
             speed, usage_text(v) or fmt_bytes(v.bytes_month), v.seq_gaps, fmt_time(v.last_seen, lang)]
        )  # fmt: skip
    lines += table(rows) if data["views"] else [text("fleet.none", lang)]
    if data["rejects"]:
        counts = ", ".join(f"{printable(k, 64)} {n}" for k, n in sorted(data["rejects"].items()))
        lines += ["", text("fleet.rejected", lang, counts=counts)]
    return "\n".join(lines)


def incidents_html(store: Any, cfg: Any, lang: str, now: float) -> str:
    """The open incidents for the page (docs/incidents.md)."""
    from agent.collector.incidents.messages import open_incidents_html
    from agent.collector.incidents.settings import load_zone
    from agent.collector.incidents.store import open_incidents

    return open_incidents_html(open_incidents(store), lang, load_zone(cfg.incidents.timezone), now)


def table(rows: list[list[Any]]) -> list[str]:
    """Aligned columns; every cell shown printable (node-supplied text may hold escapes)."""
    cells = [[printable(c, 4096) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]


def main(args: argparse.Namespace) -> int:
    # The collector's modules stay out of a node's daemon, which builds the same parser.
    from agent.collector import fleet
    from agent.collector.htmlview import render_html
    from agent.collector.store import StoreDown

    cfg = load_collector_config_or_exit(args.config)
    store = open_collector_store_or_exit(cfg)
    try:
        now = time.time()
        data = fleet_data(store, cfg, args.kecamatan, now)
        if args.kecamatan and not data["views"]:
            known = ", ".join(k for k in data["known"] if k) or "none yet"
            err(f"no nodes in kecamatan '{printable(args.kecamatan)}'; known: {printable(known)}")
            return EX_USAGE
        if args.html:
            since = now - 86400.0
            series = fleet.chart_series(store.series(since), since)
            page = render_html(
                data["views"], data["kecamatan"], data["totals"], series, now, args.lang, data["kabupaten"],
                data["rejects"], incidents_html(store, cfg, args.lang, now),
            )  # fmt: skip
            try:
                with open(args.html, "w", encoding="utf-8") as f:
                    f.write(page)
            except OSError as exc:
                err(f"cannot write {args.html}: {exc.strerror}")
                return EX_FAIL
        if args.json:
            print(as_json(data, store))
        elif not args.html:
            print(as_text(data, args.lang))
    except StoreDown as exc:
        err(f"cannot read the collector's database: {exc}")
        return EX_FAIL
    finally:
        store.close()
    return EX_OK
