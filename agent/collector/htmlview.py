"""The fleet as one self-contained HTML page: inline CSS and SVG, no scripts, no external assets.

Pure: views in, a string out. It is opened from a USB stick or an e-mail in
an office without reliable internet, so nothing may be fetched. Text from
nodes is escaped, control characters included, and every number is formatted
so that no stored value can stop the page from being written.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from typing import Any, Optional

from agent.collector.fleet import KecamatanView, NodeView, usage_text
from agent.i18n import text
from agent.reading.contract import printable

COLORS = {
    "online": "#2e7d32",
    "offline": "#c62828",
    "silent": "#ef6c00",
    "dark": "#c62828",
    "reach": "#2e7d32",
    "gateway_only": "#b71c1c",
}
MAX_CHARTS = 400  # per-node charts beyond this would make the page too heavy to open

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2327;background:#f6f7f7}
header{background:#12355b;color:#fff;padding:16px 24px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:2px 0;opacity:.9}
.headline{font-size:28px;font-weight:700;margin-top:8px}
main{padding:8px 24px 32px} section{background:#fff;border-radius:6px;padding:12px 16px;margin:16px 0;
box-shadow:0 1px 2px rgba(0,0,0,.08)} h2{font-size:18px;margin:4px 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{padding:4px 8px;text-align:left;
border-bottom:1px solid #e2e4e7;white-space:nowrap} th{background:#eef1f4} td.num{text-align:right}
tr.dark td:first-child{border-left:4px solid #c62828}
.state{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.state-online{background:#2e7d32}.state-offline{background:#c62828}.state-silent{background:#ef6c00}
.state-gateway_only{background:#b71c1c}
.charts{display:flex;flex-wrap:wrap;gap:10px} figure{margin:0;border:1px solid #e2e4e7;border-radius:4px;padding:6px}
figcaption{font-size:12px;margin-bottom:2px} .scroll{overflow-x:auto} .note{font-size:12px;color:#50575e} svg text{font-size:11px}
"""


def esc(value: Any) -> str:
    return html.escape(printable(value, 4096), quote=True)


def fmt(value: Optional[float], digits: int = 1, suffix: str = "") -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}{suffix}"


def fmt_bytes(n: int) -> str:
    step = 1000.0
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < step:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= step
    return f"{value:.1f} TB"


def fmt_time(ts: Optional[float], lang: str) -> str:
    if ts is None:
        return text("fleet.never", lang)
    try:
        return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, ValueError, OSError, TypeError):  # a time no calendar holds
        return "–"


def shown(v: NodeView) -> str:
    """The colour a node wears: dark (gateway only) is red, never the green of online."""
    return "gateway_only" if v.state == "online" and v.dark else v.state


def state_badge(v: NodeView, lang: str) -> str:
    if shown(v) == "gateway_only":
        return f'<span class="state state-gateway_only">{esc(text("web.state.gateway_only", lang))}</span>'
    return f'<span class="state state-{esc(v.state)}">{esc(text(f"fleet.state.{v.state}", lang))}</span>'


def link_label(v: NodeView, lang: str) -> str:
    backup = f" · {text('fleet.link.backup', lang)}" if v.on_backup else ""
    if v.link_type == "unknown":
        return text("fleet.link.unknown", lang) + backup
    conf = f" ({v.link_confidence:.0%})" if v.link_confidence is not None else ""
    return v.link_type + conf + backup


def kecamatan_table(kecs: Sequence[KecamatanView], lang: str) -> str:
    cols = ("kecamatan", "nodes", "desa", "reachable", "dark", "share", "links")
    head = "".join(f"<th>{esc(text('fleet.col.' + c, lang))}</th>" for c in cols)
    rows = []
    for k in kecs:
        links = ", ".join(
            f"{text('fleet.link.unknown', lang) if n == 'unknown' else n}: {c}" for n, c in k.link_types.items()
        )
        rows.append(
            f'<tr data-kecamatan="{esc(k.kecamatan)}"><td>{esc(k.kecamatan)}</td><td class="num">{k.nodes}</td>'
            f'<td class="num">{k.desa_total}</td><td class="num">{k.desa_reachable}</td>'
            f'<td class="num">{k.desa_dark}</td><td class="num">{k.share_reachable * 100:.0f}%</td>'
            f"<td>{esc(links)}</td></tr>"
        )
    return f'<table id="kecamatan-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def node_table(views: Sequence[NodeView], lang: str) -> str:
    cols = ("kecamatan", "desa", "node", "state", "link", "latency", "loss", "speed", "data", "gaps", "last_seen")
    head = "".join(f"<th>{esc(text('fleet.col.' + c, lang))}</th>" for c in cols)
    rows = []
    for v in views:
        speed = f"{fmt(v.download_mbps)} / {fmt(v.upload_mbps)}" if v.download_mbps is not None else "–"
        cls = "dark" if v.dark else "reachable"
        rows.append(
            f'<tr class="{cls}" data-node="{esc(v.node)}" data-state="{esc(v.state)}"><td>{esc(v.kecamatan)}</td>'
            f"<td>{esc(v.desa)}</td><td>{esc(v.node)}</td><td>{state_badge(v, lang)}</td>"
            f"<td>{esc(link_label(v, lang))}</td><td class='num'>{fmt(v.latency_p50_ms, 1, ' ms')}</td>"
            f"<td class='num'>{fmt(v.loss_pct, 1, '%')}</td><td class='num'>{esc(speed)}</td>"
            f"<td class='num'>{esc(usage_text(v) or fmt_bytes(v.bytes_month))}</td><td class='num'>{v.seq_gaps}</td>"
            f"<td>{esc(fmt_time(v.last_seen, lang))}</td></tr>"
        )
    return (
        f'<div class="scroll"><table id="node-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def kecamatan_bars(kecs: Sequence[KecamatanView], lang: str) -> str:
    """One horizontal bar per kecamatan: reachable desa in green, dark in red."""
    label_w, bar_w, row_h = 150, 420, 24
    most = max((k.desa_total for k in kecs), default=1) or 1
    height = row_h * len(kecs) + 30
    parts = [
        f'<svg id="chart-kecamatan" xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 80}" '
        f'height="{height}" role="img" aria-label="{esc(text("fleet.chart.kecamatan", lang))}">'
    ]
    for i, k in enumerate(kecs):
        y = 10 + i * row_h
        reach = bar_w * k.desa_reachable / most
        dark = bar_w * k.desa_dark / most
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{esc(k.kecamatan)}</text>')
        parts.append(
            f'<rect class="bar-reachable" x="{label_w}" y="{y}" width="{reach:.1f}" height="18" fill="{COLORS["reach"]}">'
            f"<title>{esc(text('fleet.col.reachable', lang))}: {k.desa_reachable}</title></rect>"
        )
        parts.append(
            f'<rect class="bar-dark" x="{label_w + reach:.1f}" y="{y}" width="{dark:.1f}" height="18" fill="{COLORS["dark"]}">'
            f"<title>{esc(text('fleet.col.dark', lang))}: {k.desa_dark}</title></rect>"
        )
        parts.append(
            f'<text x="{label_w + reach + dark + 6:.1f}" y="{y + 14}">{k.desa_reachable}/{k.desa_total}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _polylines(values: Sequence[Optional[float]], width: float, height: float, top: float) -> list[str]:
    """Points of a line chart, broken where there is no data."""
    n = len(values)
    step = width / max(n - 1, 1)
    lines: list[str] = []
    current: list[str] = []
    for i, v in enumerate(values):
        if v is None:
            if current:
                lines.append(" ".join(current))
            current = []
            continue
        y = height - (v / top) * (height - 4) if top > 0 else height
        current.append(f"{i * step:.1f},{y:.1f}")
    if current:
        lines.append(" ".join(current))
    return lines


def node_chart(node: str, series: dict[str, list[Optional[float]]], lang: str) -> str:
    """Latency (line, left scale) over loss (bars, 0-100 %) for one node's last 24 h."""
    w, h = 260.0, 64.0
    lat = series.get("latency_ms", [])
    loss = series.get("loss_pct", [])
    top = max((v for v in lat if v is not None), default=0.0)
    top = 10 ** math.ceil(math.log10(top)) if top > 0 else 1.0
    n = max(len(loss), 1)
    bw = w / n
    bars = "".join(
        f'<rect class="loss" x="{i * bw:.1f}" y="{h - h * v / 100:.1f}" width="{max(bw - 1, 1):.1f}" '
        f'height="{h * v / 100:.1f}" fill="#ef9a9a"/>'
        for i, v in enumerate(loss)
        if v
    )
    lines = "".join(
        f'<polyline class="latency" points="{pts}" fill="none" stroke="#12355b" stroke-width="1.5"/>'
        for pts in _polylines(lat, w, h, top)
    )
    label = f"{text('fleet.chart.latency', lang)} / {text('fleet.chart.loss', lang)}"
    return (
        f'<figure class="node-chart" data-node="{esc(node)}"><figcaption>{esc(node)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h + 14:.0f}" role="img" '
        f'aria-label="{esc(label)}"><rect width="{w:.0f}" height="{h:.0f}" fill="#fafbfc"/>{bars}{lines}'
        f'<text x="2" y="{h + 12:.0f}">0–{top:g} ms · -24 h → now</text></svg></figure>'
    )


def scatter_map(views: Sequence[NodeView], lang: str) -> str:
    """Nodes at their lat/lon, coloured by state; equirectangular, scaled to the fleet's box."""
    placed = [v for v in views if v.lat is not None and v.lon is not None]
    if not placed:
        return ""
    w, h, pad, top = 560.0, 420.0, 24.0, 40.0
    lats = [v.lat for v in placed if v.lat is not None]
    lons = [v.lon for v in placed if v.lon is not None]
    mid = math.cos(math.radians(sum(lats) / len(lats)))
    span_x = max((max(lons) - min(lons)) * mid, 1e-3)
    span_y = max(max(lats) - min(lats), 1e-3)
    scale = min((w - 2 * pad - 120) / span_x, (h - pad - top) / span_y)
    dots = []
    for v in placed:
        assert v.lat is not None and v.lon is not None
        x = pad + (v.lon - min(lons)) * mid * scale
        y = h - pad - (v.lat - min(lats)) * scale
        state = text("web.state.gateway_only" if shown(v) == "gateway_only" else f"fleet.state.{v.state}", lang)
        dots.append(
            f'<circle class="map-node state-{esc(v.state)}" data-node="{esc(v.node)}" cx="{x:.1f}" cy="{y:.1f}" r="6" '
            f'fill="{COLORS[shown(v)]}" stroke="#fff"><title>{esc(v.desa)} ({esc(v.kecamatan)}): {esc(state)}</title></circle>'
            f'<text x="{x + 9:.1f}" y="{y + 4:.1f}">{esc(v.desa)}</text>'
        )
    legend = "".join(
        f'<circle cx="{12 + i * 110}" cy="12" r="5" fill="{COLORS[s]}"/><text x="{20 + i * 110}" y="16">'
        f"{esc(text(('web.state.' if s == 'gateway_only' else 'fleet.state.') + s, lang))}</text>"
        for i, s in enumerate(("online", "gateway_only", "offline", "silent"))
    )
    return (
        f'<section id="map"><h2>{esc(text("fleet.map", lang))}</h2><svg id="scatter-map" xmlns="http://www.w3.org/2000/svg" '
        f'width="{w:.0f}" height="{h:.0f}" role="img" aria-label="{esc(text("fleet.map", lang))}">'
        f'<rect width="{w:.0f}" height="{h:.0f}" fill="#eaf2f8"/>{legend}{"".join(dots)}</svg></section>'
    )


def render_html(
    views: Sequence[NodeView],
    kecs: Sequence[KecamatanView],
    totals: dict[str, Any],
    series: dict[str, dict[str, list[Optional[float]]]],
    generated: float,
    lang: str = "en",
    kabupaten: str = "Musi Banyuasin",
    rejects: Optional[dict[str, int]] = None,
    incidents_html: str = "",  # the open incidents, rendered (escaped) by agent.collector.incidents.messages
) -> str:
    title = text("fleet.title", lang, kabupaten=kabupaten)
    share = f"{totals['share_reachable'] * 100:.0f}"
    headline = text(
        "fleet.blankspot", lang, share=share, reachable=totals["desa_reachable"], total=totals["desa_total"]
    )
    charted = [v.node for v in views if v.node in series][:MAX_CHARTS]
    charts = "".join(node_chart(n, series[n], lang) for n in charted)
    rejected = ""
    if rejects:
        counts = ", ".join(f"{k} {n}" for k, n in sorted(rejects.items()))
        rejected = f'<p class="note" id="rejected">{esc(text("fleet.rejected", lang, counts=counts))}</p>'
    body = (
        f"<header><h1>{esc(title)}</h1><p>{esc(text('fleet.generated', lang, time=fmt_time(generated, lang)))}</p>"
        f'<p class="headline" id="blankspot">{esc(headline)}</p></header><main>{incidents_html}'
        f'<section id="kecamatan"><h2>{esc(text("fleet.kecamatan_summary", lang))}</h2>'
        f"{kecamatan_table(kecs, lang)}<h2>{esc(text('fleet.chart.kecamatan', lang))}</h2>"
        f'{kecamatan_bars(kecs, lang)}<p class="note">{esc(text("fleet.dark_note", lang))}</p>{rejected}</section>'
        f'<section id="nodes"><h2>{esc(text("fleet.nodes", lang))}</h2>'
        f"{node_table(views, lang) if views else esc(text('fleet.none', lang))}</section>"
        f'<section id="charts"><h2>{esc(text("fleet.chart.latency", lang))} · {esc(text("fleet.chart.loss", lang))}</h2>'
        f'<div class="charts">{charts}</div></section>{scatter_map(views, lang)}</main>'
    )
    return (
        f'<!DOCTYPE html><html lang="{esc(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
