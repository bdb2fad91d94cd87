"""The pages of `netprobe web`, rendered on the server: overview, kecamatan, node, SLA, errors.

Pure: data in, HTML out. No inline script or style (the Content-Security-Policy
forbids both); the one stylesheet is /static/web.css. Every word comes from
`agent.i18n`, every value from a node goes through `esc`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Optional
from urllib.parse import urlencode

from agent.collector import sla
from agent.collector.fleet import KecamatanView, NodeView, usage_text
from agent.collector.htmlview import fmt_bytes, kecamatan_bars, link_label
from agent.collector.report import Report, report_body
from agent.collector.web import charts
from agent.collector.web.html import esc, fmt, href, local, pct, seg, zone_name
from agent.collector.web.incidents import Incident
from agent.collector.web.map import legend, shown_state
from agent.collector.web.views import RANGES, Fleet, NodeDetail
from agent.i18n import text

MAX_DARK_LIST = 200  # the overview lists at most this many dark nodes (the kecamatan pages list all)


@dataclasses.dataclass(frozen=True)
class Ctx:
    """What every page needs to know about its request."""

    lang: str
    path: str
    params: dict[str, str]
    tz: dt.tzinfo
    kabupaten: str
    now: float
    history_note: str = ""  # "" when the rollup is current, else why it is not


def t(ctx: Ctx, key: str, **params: object) -> str:
    return esc(text(key, ctx.lang, **params))


def layout(ctx: Ctx, title: str, body: str, active: str = "") -> str:
    def nav(path: str, key: str, name: str) -> str:
        on = ' class="on"' if active == name else ""
        return f'<a href="{esc(href(path, ctx.lang))}"{on}>{t(ctx, key)}</a>'

    def switch(lang: str) -> str:
        query = urlencode({**ctx.params, "lang": lang})
        on = ' class="on"' if lang == ctx.lang else ""
        return f'<a href="{esc(ctx.path + "?" + query)}" hreflang="{lang}"{on}>{lang.upper()}</a>'

    zone = zone_name(ctx.tz, ctx.now)
    note = f'<p class="note noprint" id="history-note">{esc(ctx.history_note)}</p>' if ctx.history_note else ""
    return (
        f'<!DOCTYPE html><html lang="{esc(ctx.lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        '<link rel="stylesheet" href="/static/web.css"><link rel="icon" href="/static/icon.svg" type="image/svg+xml">'
        '</head><body><header class="top">'
        f'<span class="brand">netprobe · {esc(ctx.kabupaten)}</span><nav>'
        f"{nav('/', 'web.nav.overview', 'overview')}{nav('/sla', 'web.nav.sla', 'sla')}</nav>"
        f'<span class="lang">{switch("en")}{switch("id")}</span></header>'
        f"<main>{note}{body}</main>"
        f"<footer>{t(ctx, 'web.footer', time=local(ctx.now, ctx.tz), zone=zone)}</footer></body></html>\n"
    )


def badge(v: NodeView, lang: str) -> str:
    state = shown_state(v)
    return f'<span class="state state-{state}" data-state="{state}">{esc(text("web.state." + state, lang))}</span>'


def _node_link(ctx: Ctx, node: str, label: Optional[str] = None) -> str:
    return f'<a href="{esc(href("/node/" + seg(node), ctx.lang))}">{esc(label if label is not None else node)}</a>'


def _kec_link(ctx: Ctx, name: str) -> str:
    return f'<a href="{esc(href("/kecamatan/" + seg(name), ctx.lang))}">{esc(name)}</a>'


def _share_bar(share: float) -> str:
    """A small bar as SVG: a style attribute would need 'unsafe-inline' in the policy."""
    width = max(0.0, min(1.0, share)) * 60
    return (
        f'<svg class="minibar" width="60" height="10" viewBox="0 0 60 10"><rect class="seg-down" width="60" height="10"/>'
        f'<rect class="seg-up" width="{width:.1f}" height="10"/></svg> {share * 100:.0f}%'
    )


# -- overview -------------------------------------------------------------------
def overview(
    ctx: Ctx,
    fleet: Fleet,
    month_by_kecamatan: Optional[dict[str, sla.Tally]],
    open_incidents: Optional[Sequence[Incident]],
    map_svg: str,
) -> str:
    tot = fleet.totals
    lang = ctx.lang
    headline = text(
        "fleet.blankspot", lang, share=f"{tot['share_reachable'] * 100:.0f}", reachable=tot["desa_reachable"],
        total=tot["desa_total"],
    )  # fmt: skip
    counts = {s: 0 for s in ("online", "gateway_only", "silent", "offline")}
    for v in fleet.views:
        counts[shown_state(v)] += 1
    cards = "".join(
        f'<div class="card" id="count-{s}"><span class="sw sw-{s}"></span>{t(ctx, "web.state." + s)}<b>{n}</b></div>'
        for s, n in counts.items()
    )
    body = [
        f"<h1>{t(ctx, 'web.title', kabupaten=fleet.kabupaten)}</h1>",
        f'<p class="headline" id="blankspot">{esc(headline)}</p>',
        f'<div class="cards">{cards}</div>',
        f'<section id="kecamatan"><h2>{t(ctx, "fleet.kecamatan_summary")}</h2>'
        f"{kecamatan_table(ctx, fleet.kecamatan, month_by_kecamatan)}"
        f'<p class="note">{t(ctx, "fleet.dark_note")}</p></section>',
        f'<section id="incidents"><h2>{t(ctx, "web.incidents.open")}</h2>{incident_list(ctx, open_incidents)}</section>',
        f'<section id="map-section"><h2>{t(ctx, "web.map.title")}</h2>{legend(lang)}<div class="wrap">{map_svg}</div>'
        f'<p class="note">{t(ctx, "web.map.note")}</p></section>',
        f'<section id="chart-section"><h2>{t(ctx, "fleet.chart.kecamatan")}</h2><div class="wrap">'
        f"{kecamatan_bars(fleet.kecamatan, lang)}</div></section>",
        dark_list(ctx, fleet.views),
    ]
    if fleet.rejects:
        counts_text = ", ".join(f"{k} {n}" for k, n in sorted(fleet.rejects.items()))
        body.append(f'<p class="note" id="rejected">{t(ctx, "fleet.rejected", counts=counts_text)}</p>')
    return layout(ctx, text("web.title", lang, kabupaten=fleet.kabupaten), "".join(body), "overview")


def kecamatan_table(ctx: Ctx, kecs: Sequence[KecamatanView], month: Optional[dict[str, sla.Tally]]) -> str:
    cols = ["kecamatan", "nodes", "desa", "reachable", "dark", "share", "links"]
    head = "".join(
        f"<th{' class=num' if c in ('nodes', 'desa', 'reachable', 'dark') else ''}>{t(ctx, 'fleet.col.' + c)}</th>"
        for c in cols
    )
    head += f'<th class="num">{t(ctx, "web.col.month_availability")}</th>'
    rows = []
    for k in kecs:
        links = ", ".join(
            f"{text('fleet.link.unknown', ctx.lang) if n == 'unknown' else n}: {c}" for n, c in k.link_types.items()
        )
        tally = (month or {}).get(k.kecamatan)
        avail = pct(tally.availability) if tally is not None else "–"
        rows.append(
            f'<tr data-kecamatan="{esc(k.kecamatan)}"><td>{_kec_link(ctx, k.kecamatan)}</td>'
            f'<td class="num">{k.nodes}</td><td class="num">{k.desa_total}</td><td class="num">{k.desa_reachable}</td>'
            f'<td class="num dark-count">{k.desa_dark}</td><td class="share">{_share_bar(k.share_reachable)}</td>'
            f'<td>{esc(links)}</td><td class="num">{avail}</td></tr>'
        )
    return f'<div class="wrap"><table id="kecamatan-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def incident_list(ctx: Ctx, items: Optional[Sequence[Incident]]) -> str:
    if items is None:
        return f'<p class="note" id="incidents-na">{t(ctx, "web.incidents.not_available")}</p>'
    if not items:
        return f'<p class="note">{t(ctx, "web.incidents.none")}</p>'
    rows = "".join(
        f"<tr><td>{_node_link(ctx, i.node) if i.node else ''}</td><td>{esc(i.kind)}</td>"
        f"<td>{esc(local(i.start, ctx.tz))}</td><td>{esc(local(i.stop, ctx.tz)) if i.stop else t(ctx, 'web.incidents.ongoing')}</td>"
        f"<td>{esc(i.summary)}</td></tr>"
        for i in items
    )
    head = "".join(f"<th>{t(ctx, 'web.incidents.col.' + c)}</th>" for c in ("node", "kind", "start", "stop", "summary"))
    return (
        f'<div class="wrap"><table class="incidents"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
    )


def dark_list(ctx: Ctx, views: Sequence[NodeView]) -> str:
    dark = [v for v in views if v.dark]
    shown = dark[:MAX_DARK_LIST]
    rows = "".join(
        f'<tr class="dark" data-node="{esc(v.node)}"><td>{_kec_link(ctx, v.kecamatan)}</td><td>{esc(v.desa)}</td>'
        f'<td class="id">{_node_link(ctx, v.node)}</td><td>{badge(v, ctx.lang)}</td>'
        f"<td>{esc(local(v.last_seen, ctx.tz))}</td></tr>"
        for v in shown
    )
    more = ""
    if len(dark) > len(shown):
        more = f'<p class="note">{t(ctx, "web.dark.more", n=len(dark) - len(shown))}</p>'
    head = "".join(f"<th>{t(ctx, 'fleet.col.' + c)}</th>" for c in ("kecamatan", "desa", "node", "state", "last_seen"))
    table = (
        f'<div class="wrap"><table id="dark-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
        if dark
        else f'<p class="note">{t(ctx, "web.dark.none")}</p>'
    )
    return f'<section id="dark"><h2>{t(ctx, "web.dark.title", n=len(dark))}</h2>{table}{more}</section>'


# -- kecamatan --------------------------------------------------------------------
def kecamatan_page(ctx: Ctx, name: str, fleet: Fleet, month: Optional[dict[str, sla.Tally]], map_svg: str) -> str:
    k = fleet.kecamatan[0] if fleet.kecamatan else None
    share = f"{k.share_reachable * 100:.0f}" if k else "0"
    headline = text("web.kecamatan.headline", ctx.lang, share=share, reachable=k.desa_reachable if k else 0,
                    total=k.desa_total if k else 0)  # fmt: skip
    cols = ("desa", "node", "state", "link", "latency", "loss", "speed", "data")
    head = "".join(f"<th>{t(ctx, 'fleet.col.' + c)}</th>" for c in cols)
    head += f'<th class="num">{t(ctx, "web.col.month_availability")}</th><th>{t(ctx, "fleet.col.last_seen")}</th>'
    rows = []
    for v in fleet.views:
        speed = f"{fmt(v.download_mbps)} / {fmt(v.upload_mbps)}" if v.download_mbps is not None else "–"
        tally = (month or {}).get(v.node)
        rows.append(
            f'<tr class="{"dark" if v.dark else "reachable"}" data-node="{esc(v.node)}" data-state="{shown_state(v)}">'
            f'<td>{esc(v.desa)}</td><td class="id">{_node_link(ctx, v.node)}</td><td>{badge(v, ctx.lang)}</td>'
            f"<td>{esc(link_label(v, ctx.lang))}</td><td class='num'>{fmt(v.latency_p50_ms, 1, ' ms')}</td>"
            f"<td class='num'>{fmt(v.loss_pct, 1, '%')}</td><td class='num'>{esc(speed)}</td>"
            f"<td class='num'>{esc(usage_text(v) or fmt_bytes(v.bytes_month))}</td>"
            f"<td class='num'>{pct(tally.availability) if tally else '–'}</td><td>{esc(local(v.last_seen, ctx.tz))}</td></tr>"
        )
    body = (
        f"<h1>{t(ctx, 'web.kecamatan.title', kecamatan=name)}</h1>"
        f'<p class="headline" id="blankspot">{esc(headline)}</p>'
        f'<section id="nodes"><h2>{t(ctx, "fleet.nodes")}</h2><div class="wrap"><table id="node-table"><thead><tr>{head}'
        f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div><p class="note">{t(ctx, "fleet.dark_note")}</p></section>'
        f'<section id="map-section"><h2>{t(ctx, "web.map.title")}</h2>{legend(ctx.lang)}<div class="wrap">{map_svg}</div></section>'
    )
    return layout(ctx, text("web.kecamatan.title", ctx.lang, kecamatan=name), body)


# -- node -----------------------------------------------------------------------------
def node_page(ctx: Ctx, d: NodeDetail) -> str:
    v = d.view
    site = d.site
    operator = str(site.get("operator", "") or "–")
    contract = f"{d.contract_mbps:g} Mbit/s" if d.contract_mbps else "–"
    facts = [
        (text("fleet.col.node", ctx.lang), esc(v.node)),
        (text("fleet.col.kecamatan", ctx.lang), _kec_link(ctx, v.kecamatan)),
        (text("web.node.operator", ctx.lang), esc(operator)),
        (text("web.node.contract_speed", ctx.lang), esc(contract)),
        (text("fleet.col.state", ctx.lang), badge(v, ctx.lang)),
        (text("fleet.col.link", ctx.lang), esc(link_label(v, ctx.lang))),
        (text("fleet.col.last_seen", ctx.lang), esc(local(v.last_seen, ctx.tz))),
        (text("fleet.col.gaps", ctx.lang), str(v.seq_gaps)),
    ]
    fact_rows = "".join(f"<tr><th>{esc(k)}</th><td>{val}</td></tr>" for k, val in facts)
    ranges = "".join(
        f'<a href="{esc(href("/node/" + seg(v.node), ctx.lang, range=r))}"{" class=on" if r == d.range else ""}>'
        f"{t(ctx, 'web.range.' + r)}</a>"
        for r in RANGES
    )
    frame = charts.Frame(d.since, d.until, ctx.tz)
    tally = d.tally
    avail = text(
        "web.node.availability", ctx.lang, avail=pct(tally.availability), unknown=pct(
            tally.unknown_s / tally.period_s if tally.period_s else None, 1), off=f"{tally.off_s / 60:.0f}",
        maintenance=f"{tally.maintenance_s / 60:.0f}",
    )  # fmt: skip
    history = (
        "" if d.history_ready else f'<p class="note" id="history-building">{t(ctx, "web.node.history_building")}</p>'
    )
    legend_lat = (
        f'<p class="legend"><span><i class="sw sw-p50"></i>p50</span><span><i class="sw sw-band"></i>p50–p90</span>'
        f'<span><i class="sw sw-down"></i>{t(ctx, "web.status.down")}</span>'
        f'<span><i class="sw sw-off"></i>{t(ctx, "web.status.off")}</span>'
        f'<span><i class="sw sw-unknown"></i>{t(ctx, "web.status.unknown")}</span></p>'
    )
    legend_tput = (
        f'<p class="legend"><span><i class="sw sw-dl"></i>{t(ctx, "web.chart.download")}</span>'
        f'<span><i class="sw sw-ul"></i>{t(ctx, "web.chart.upload")}</span>'
        f'<span><i class="sw sw-up"></i>{t(ctx, "web.chart.contract")}</span></p>'
    )
    body = [
        f"<h1>{t(ctx, 'web.node.title', desa=v.desa, kecamatan=v.kecamatan)}</h1>",
        f'<div class="grid2"><section id="facts"><div class="wrap"><table class="facts">{fact_rows}</table></div></section>',
        f'<section id="verdict"><h2>{t(ctx, "web.node.verdict")}</h2>{verdict_block(ctx, d)}</section></div>',
        f'<section id="history"><h2>{t(ctx, "web.node.history")}</h2><p class="ranges noprint">{ranges}</p>{history}'
        f'<p id="range-availability">{esc(avail)}</p>{charts.status_strip(frame, d.segments, ctx.lang)}'
        f"<h3>{t(ctx, 'web.chart.latency')}</h3>{legend_lat}"
        f"{charts.latency_chart(frame, d.buckets, d.width_s, d.segments, d.link_changes, ctx.lang)}"
        f"<h3>{t(ctx, 'web.chart.loss')}</h3>{charts.loss_chart(frame, d.buckets, d.width_s, d.segments, ctx.lang)}"
        f"<h3>{t(ctx, 'web.chart.throughput')}</h3>{legend_tput}"
        f"{charts.throughput_chart(frame, d.throughput, d.contract_mbps, ctx.lang)}{link_history(ctx, d)}</section>",
        f'<div class="grid2"><section id="node-incidents"><h2>{t(ctx, "web.incidents.recent")}</h2>'
        f"{incident_list(ctx, d.incidents)}</section>",
        f'<section id="budget"><h2>{t(ctx, "web.node.data")}</h2>{budget_block(ctx, d)}</section></div>',
    ]
    return layout(ctx, text("web.node.title", ctx.lang, desa=v.desa, kecamatan=v.kecamatan), "".join(body))


def verdict_block(ctx: Ctx, d: NodeDetail) -> str:
    if not d.checks or d.verdict is None:
        return f'<p class="note">{t(ctx, "web.node.no_verdict")}</p>'
    items = []
    for c in d.checks:
        hint = f"<br><span class='note'>{esc(text(c.hint[0], ctx.lang, **c.hint[1]))}</span>" if c.hint else ""
        numbers = "; ".join(text(key, ctx.lang, **params) for key, params in c.numbers)
        items.append(
            f'<li data-check="{esc(c.name)}"><span class="check check-{esc(c.status)}">'
            f"{t(ctx, 'status.' + c.status)}</span> {t(ctx, 'check.' + c.name)}: {esc(numbers)}{hint}</li>"
        )
    return (
        f'<p class="headline" id="verdict-line" data-verdict="{esc(d.verdict)}">{t(ctx, f"verdict.{d.verdict}")}</p>'
        f'<p class="note">{t(ctx, "web.node.verdict_at", time=local(d.verdict_ts, ctx.tz))}</p><ul class="checks">{"".join(items)}</ul>'
    )


def link_history(ctx: Ctx, d: NodeDetail) -> str:
    if not d.link_changes:
        return ""
    items = "".join(
        f"<li>{esc(local(ts, ctx.tz))}: {esc(old)} → {esc(new)}</li>" for ts, old, new in d.link_changes[-20:]
    )
    return f'<h3>{t(ctx, "web.node.link_changes")}</h3><ul id="link-changes">{items}</ul>'


def budget_block(ctx: Ctx, d: NodeDetail) -> str:
    rows = "".join(f"<tr><td>{esc(m)}</td><td class='num'>{fmt_bytes(b)}</td></tr>" for m, b in d.usage)
    ledger = ""
    if d.budget_month_mb is not None:
        ledger = f"<p>{t(ctx, 'web.node.ledger', mb=fmt(d.budget_month_mb, 1))}</p>"
    own = usage_text(d.view)  # the node's own traffic against its plan (docs/data-cost.md)
    if own:
        ledger = f'<p id="agent-data">{t(ctx, "web.node.agent_data", used=own)}</p>' + ledger
    if not rows:
        return ledger + f'<p class="note">{t(ctx, "web.node.no_data_use")}</p>'
    head = f"<th>{t(ctx, 'web.node.month')}</th><th class='num'>{t(ctx, 'web.node.bytes')}</th>"
    return (
        f'{ledger}<div class="wrap"><table id="usage"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
    )


# -- SLA -------------------------------------------------------------------------------
def sla_page(ctx: Ctx, month: str, report: Optional[Report], problem: str, prev_next: tuple[str, str]) -> str:
    prev, nxt = prev_next
    picker = (
        f'<form class="inline noprint" method="get" action="/sla" autocomplete="off"><input type="hidden" name="lang" value="{esc(ctx.lang)}">'
        f'<label>{t(ctx, "web.sla.month")} <input type="month" name="month" value="{esc(month)}" min="2000-01" max="2100-12">'
        f'</label> <button type="submit">{t(ctx, "web.sla.show")}</button></form> '
        f'<a class="noprint" href="{esc(href("/sla", ctx.lang, month=prev))}">← {esc(prev)}</a> '
        f'<a class="noprint" href="{esc(href("/sla", ctx.lang, month=nxt))}">{esc(nxt)} →</a>'
    )
    downloads = " · ".join(
        f'<a href="{esc(href("/api/sla", ctx.lang, month=month, format=f))}">{f.upper()}</a>'
        for f in ("csv", "json", "html")
    )
    head = (
        f"<h1>{t(ctx, 'sla.title', kabupaten=ctx.kabupaten, month=month)}</h1><p>{picker}</p>"
        f'<p class="noprint">{t(ctx, "web.sla.download")}: {downloads}</p>'
    )
    body = head + (
        report_body(report, ctx.lang, link=True) if report else f'<p class="note" id="sla-problem">{esc(problem)}</p>'
    )
    return layout(ctx, text("sla.title", ctx.lang, kabupaten=ctx.kabupaten, month=month), body, "sla")


def error_page(ctx: Ctx, status: int, message: str) -> str:
    body = f'<h1>{status}</h1><p id="error">{esc(message)}</p><p><a href="{esc(href("/", ctx.lang))}">{t(ctx, "web.nav.overview")}</a></p>'
    return layout(ctx, f"{status}", body)
