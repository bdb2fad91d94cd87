"""The month report: availability per node, desa, kecamatan and provider, the contract beside it (docs/sla.md).

Built from the rollup (status segments and hourly figures, brought up to date
first by the caller), so a month of the whole regency costs a few thousand
rows, not millions. One `Report` renders as CSV (for a spreadsheet), JSON (for
scripts) and HTML that prints to A4 (for the provider's meeting); the web's
SLA page shows the same HTML inside its own frame.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import statistics
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from agent.collector import sla
from agent.collector.maintenance import MaintenanceWindow, Place
from agent.collector.settings import CollectorConfig
from agent.collector.store import Store
from agent.collector.web import incidents, rollup, static
from agent.collector.web.html import esc, fmt, href, local, minutes, pct, seg
from agent.collector.web.settings import zone
from agent.collector.web.views import contract_mbps, kabupaten, sites
from agent.i18n import text

MONTH_RE = re.compile(r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$")
LEVELS = ("provider", "kecamatan", "desa", "node")
NO_OPERATOR = "-"


def month_bounds(month: str, tz: dt.tzinfo) -> tuple[float, float]:
    """[start, stop) of a calendar month in the regency's time zone, as epoch seconds."""
    if not MONTH_RE.match(month):
        raise ValueError(f"bad month '{month}': expected YYYY-MM, e.g. 2026-11")
    year, mon = int(month[:4]), int(month[5:])
    start = dt.datetime(year, mon, 1, tzinfo=tz)
    stop = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    return start.timestamp(), stop.timestamp()


def current_month(now: float, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(now, tz).strftime("%Y-%m")


@dataclasses.dataclass
class Line:
    """One row of the report: a node, or a group of nodes added up."""

    level: str
    name: str
    kecamatan: str = ""
    desa: str = ""
    operator: str = ""
    nodes: int = 1
    tally: sla.Tally = dataclasses.field(default_factory=sla.Tally)
    latency_p50_ms: Optional[float] = None
    latency_p95_ms: Optional[float] = None
    loss_pct: Optional[float] = None
    download_mbps: Optional[float] = None
    upload_mbps: Optional[float] = None
    tests: int = 0
    contract_mbps: Optional[float] = None
    contract_pct: Optional[float] = None
    shortfall_pct: Optional[float] = None
    shortfall_min: Optional[float] = None
    met: Optional[bool] = None

    @property
    def speed_ratio(self) -> Optional[float]:
        if self.download_mbps is None or not self.contract_mbps:
            return None
        return self.download_mbps / self.contract_mbps

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "tally"}
        out.update(self.tally.to_dict())
        bounds = self.tally.bounds
        out["availability_low_pct"] = None if bounds is None else round(bounds[0] * 100, 4)
        out["availability_high_pct"] = None if bounds is None else round(bounds[1] * 100, 4)
        out["speed_ratio"] = None if self.speed_ratio is None else round(self.speed_ratio, 3)
        for key in ("latency_p50_ms", "latency_p95_ms", "loss_pct", "download_mbps", "upload_mbps"):
            out[key] = None if out[key] is None else round(out[key], 3)
        return out


@dataclasses.dataclass
class Report:
    month: str
    timezone: str
    start: float
    stop: float
    measured_until: float
    generated: float
    kabupaten: str
    evidence_s: float
    power_source: str  # "boots" or "incidents+boots"
    maintenance: list[dict[str, Any]]
    lines: dict[str, list[Line]]
    total: Line

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "timezone": self.timezone,
            "start": self.start,
            "stop": self.stop,
            "measured_until": self.measured_until,
            "generated": self.generated,
            "kabupaten": self.kabupaten,
            "rules": {"evidence_s": self.evidence_s, "power_cuts_from": self.power_source, "doc": "docs/sla.md"},
            "maintenance": self.maintenance,
            "total": self.total.to_dict(),
            **{
                level + "s" if level != "desa" else "desa": [x.to_dict() for x in self.lines[level]] for level in LEVELS
            },
        }


def _figures(line: Line, hours: Iterable[rollup.Figures]) -> None:
    """Latency p50 and p95 over the hours' medians, loss weighted by readings, median throughput."""
    hs = list(hours)
    p50s = [h.p50 for h in hs if h.p50 is not None]
    weighted = [(h.loss, h.n) for h in hs if h.loss is not None and h.n]
    n = sum(k for _, k in weighted)
    downs = [h.down_mbps for h in hs if h.down_mbps is not None]
    ups = [h.up_mbps for h in hs if h.up_mbps is not None]
    line.latency_p50_ms = sla.percentile(p50s, 50)
    line.latency_p95_ms = sla.percentile(p50s, 95)
    line.loss_pct = sum(v * k for v, k in weighted) / n if n else None
    line.download_mbps = statistics.median(downs) if downs else None
    line.upload_mbps = statistics.median(ups) if ups else None
    line.tests = sum(h.n_tput for h in hs)


def build_report(store: Store, cfg: CollectorConfig, month: str, now: float, figures: bool = True) -> Report:
    """The report for `month` (YYYY-MM in the configured time zone); a month not yet begun is a ValueError.

    `figures=False` leaves out latency, loss and throughput (the hourly rows of
    every node): the overview wants only the availability, every minute.
    """
    tz = zone(cfg.web.timezone)
    start, stop = month_bounds(month, tz)
    until = min(stop, now)
    if until <= start:
        raise ValueError(f"{month} has not begun")
    segs = rollup.segments(store, start, until)
    hours = rollup.month_hours(store, start, until) if figures else {}
    site_of = sites(store)
    power = incidents.power_periods(store, start, until)
    calendar = cfg.calendar()
    nodes = store.query(
        "SELECT node, kecamatan, desa FROM nodes WHERE first_seen IS NOT NULL AND first_seen < ? ORDER BY kecamatan, desa, node",
        (until,),
    )
    node_lines: list[Line] = []
    for node, kec, desa in nodes:
        node, kec, desa = str(node), str(kec or ""), str(desa or "")
        site = site_of.get(node, {})
        operator = str(site.get("operator", "") or "")
        maint = calendar.intervals(Place(node, kec, desa, operator), start, until)
        t = sla.tally(segs.get(node, []), start, until, maint, (power or {}).get(node, []))
        line = Line("node", node, kec, desa, operator or NO_OPERATOR, 1, t)
        line.contract_mbps = contract_mbps(site, cfg)
        _figures(line, hours.get(node, []))
        node_lines.append(line)

    def group(level: str, key_of: Any, name_of: Any) -> list[Line]:
        members: dict[Any, list[Line]] = {}
        for x in node_lines:
            members.setdefault(key_of(x), []).append(x)
        out = []
        for key in sorted(members, key=lambda k: str(k).casefold()):
            xs = members[key]
            g = Line(level, name_of(key), nodes=len(xs))
            if level in ("desa", "kecamatan"):
                g.kecamatan = xs[0].kecamatan
            if level == "desa":
                g.desa = xs[0].desa
            if level == "provider":
                g.operator = str(key)
            for x in xs:
                g.tally.add(x.tally)
            _figures(g, (h for x in xs for h in hours.get(x.name, [])))
            contracts = [x.contract_mbps for x in xs if x.contract_mbps]
            g.contract_mbps = statistics.median(contracts) if contracts else None
            out.append(g)
        return out

    providers = group("provider", lambda x: x.operator, str)
    for p in providers:
        configured = cfg.sla.providers.get(p.operator)
        contract = sla.Contract(configured.availability_pct if configured else None, None)
        if configured is not None and configured.speed_mbps > 0 and p.contract_mbps is None:
            p.contract_mbps = configured.speed_mbps
        p.contract_pct = contract.availability_pct
        short = sla.shortfall(p.tally, contract)
        p.shortfall_pct, p.shortfall_min = short["shortfall_pct"], short["shortfall_min"]
        p.met = None if short["met"] is None else bool(short["met"])
    total = group("total", lambda x: "", lambda k: "")
    lines = {
        "provider": providers,
        "kecamatan": group("kecamatan", lambda x: x.kecamatan, str),
        "desa": group("desa", lambda x: (x.kecamatan, x.desa), lambda k: k[1]),
        "node": node_lines,
    }
    return Report(
        month=month,
        timezone=cfg.web.timezone,
        start=start,
        stop=stop,
        measured_until=until,
        generated=now,
        kabupaten=kabupaten(cfg),
        evidence_s=cfg.sla.evidence_s,
        power_source="boots" if power is None else "incidents+boots",
        maintenance=[_window_entry(w, spans) for w, spans in calendar.windows_in(start, until)],
        lines=lines,
        total=total[0] if total else Line("total", "", nodes=0),
    )


def _window_entry(w: MaintenanceWindow, spans: Sequence[sla.Window]) -> dict[str, Any]:
    """A window as the report lists it: what it is, whom it covered, and its stretches inside the month."""
    recurring = {"days": w.days, "time_start": w.time_start, "time_end": w.time_end} if w.days else None
    return {"name": w.name, "note": w.note, "covers": w.coverage(), "recurring": recurring,
            "occurrences": [list(s) for s in spans]}  # fmt: skip


# -- CSV and JSON ------------------------------------------------------------------
CSV_COLUMNS = (
    "level", "name", "kecamatan", "desa", "operator", "nodes", "availability_pct", "availability_low_pct",
    "availability_high_pct", "up_min", "down_min", "unknown_min", "off_min", "maintenance_min", "contract_pct",
    "shortfall_pct", "shortfall_min", "met", "latency_p50_ms", "latency_p95_ms", "loss_pct", "download_mbps",
    "upload_mbps", "tests", "contract_mbps", "speed_ratio",
)  # fmt: skip


def _cell(value: Any) -> Any:
    """Spreadsheet-safe: text a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and value != NO_OPERATOR:
        return "'" + value
    return "" if value is None else value


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for line in [
        *report.lines["provider"],
        *report.lines["kecamatan"],
        *report.lines["desa"],
        *report.lines["node"],
        report.total,
    ]:
        d = line.to_dict()
        for kind in ("up", "down", "unknown", "off", "maintenance"):
            d[f"{kind}_min"] = round(d[f"{kind}_s"] / 60.0, 2)
        w.writerow([_cell(d.get(c)) for c in CSV_COLUMNS])
    return buf.getvalue()


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=1)


# -- HTML -------------------------------------------------------------------------
def _avail_cell(t: sla.Tally) -> str:
    bounds = t.bounds
    tip = "" if bounds is None else f' title="{pct(bounds[0])} – {pct(bounds[1])}"'
    return f'<td class="num avail"{tip}>{pct(t.availability)}</td>'


def _table(lines: Sequence[Line], level: str, lang: str, link: bool) -> str:
    extra = {"provider": ("contract", "shortfall"), "node": ("operator",)}.get(level, ())
    head_keys = [
        "name",
        "nodes",
        *extra,
        "availability",
        "up",
        "down",
        "unknown",
        "off",
        "maintenance",
        "p50",
        "p95",
        "loss",
        "down_speed",
        "contract_speed",
    ]
    if level == "node":
        head_keys.remove("nodes")
    if level in ("desa", "node"):
        head_keys.insert(1, "kecamatan")
    nums = {"nodes", "availability", "up", "down", "unknown", "off", "maintenance", "p50", "p95", "loss", "down_speed",
            "contract_speed", "contract", "shortfall"}  # fmt: skip
    head = "".join(f"<th{' class=num' if k in nums else ''}>{esc(text('sla.col.' + k, lang))}</th>" for k in head_keys)
    rows = []
    for x in lines:
        t = x.tally
        name = esc(x.name or text("sla.none", lang))
        if link and level == "node":
            name = f'<a href="{esc(href("/node/" + seg(x.name), lang))}">{name}</a>'
        elif link and level == "kecamatan":
            name = f'<a href="{esc(href("/kecamatan/" + seg(x.name), lang))}">{name}</a>'
        cells = {
            "name": f'<td class="id">{name}</td>',
            "kecamatan": f"<td>{esc(x.kecamatan)}</td>",
            "nodes": f'<td class="num">{x.nodes}</td>',
            "operator": f"<td>{esc(x.operator)}</td>",
            "contract": f'<td class="num">{fmt(x.contract_pct, 2, "%")}</td>',
            "shortfall": f'<td class="num shortfall">{_shortfall(x, lang)}</td>',
            "availability": _avail_cell(t),
            "up": f'<td class="num">{minutes(t.up_s)}</td>',
            "down": f'<td class="num">{minutes(t.down_s)}</td>',
            "unknown": f'<td class="num">{minutes(t.unknown_s)}</td>',
            "off": f'<td class="num">{minutes(t.off_s)}</td>',
            "maintenance": f'<td class="num">{minutes(t.maintenance_s)}</td>',
            "p50": f'<td class="num">{fmt(x.latency_p50_ms, 0)}</td>',
            "p95": f'<td class="num">{fmt(x.latency_p95_ms, 0)}</td>',
            "loss": f'<td class="num">{fmt(x.loss_pct, 2, "%")}</td>',
            "down_speed": f'<td class="num">{fmt(x.download_mbps, 1)}</td>',
            "contract_speed": f'<td class="num">{_speed(x)}</td>',
        }
        rows.append(f'<tr data-{level}="{esc(x.name)}">' + "".join(cells[k] for k in head_keys) + "</tr>")
    return f'<div class="wrap"><table class="sla-{level}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _shortfall(x: Line, lang: str) -> str:
    if x.met is None:
        return "–"
    if x.met:
        return esc(text("sla.met", lang))
    return esc(text("sla.short", lang, pct=fmt(x.shortfall_pct, 2), minutes=fmt(x.shortfall_min, 0)))


def _speed(x: Line) -> str:
    if not x.contract_mbps:
        return "–"
    ratio = "" if x.speed_ratio is None else f" ({x.speed_ratio:.0%})"
    return f"{x.contract_mbps:g}{ratio}"


def _window_item(m: dict[str, Any], tz: dt.tzinfo, lang: str) -> str:
    """One listed window: name, when (a recurring one: its days and hours, how often in the month), whom, note."""
    if m["recurring"]:
        r = m["recurring"]
        when = f"{', '.join(r['days'])} {r['time_start']}–{r['time_end']} (×{len(m['occurrences'])})"
    else:
        a, b = m["occurrences"][0]
        when = f"{local(a, tz)} – {local(b, tz)}"
    covers = "; ".join(f"{key}: {', '.join(names)}" for key, names in m["covers"].items())
    parts = [m["name"], when, covers or text("sla.scope_all", lang), m["note"]]
    return "<li>" + " · ".join(esc(p) for p in parts if p) + "</li>"


def report_body(report: Report, lang: str, link: bool = False) -> str:
    """The report's sections, for the printable file and for the web's SLA page alike."""
    tz = zone(report.timezone)
    t = report.total.tally
    period = text(
        "sla.period",
        lang,
        start=local(report.start, tz),
        stop=local(report.measured_until, tz),
        zone=report.timezone,
    )
    summary = text(
        "sla.summary",
        lang,
        avail=pct(t.availability),
        up=minutes(t.up_s),
        counted=minutes(t.counted_s),
        unknown=minutes(t.unknown_s),
        off=minutes(t.off_s),
        maintenance=minutes(t.maintenance_s),
    )
    source = text("sla.power." + report.power_source.replace("+", "_"), lang)
    rules = text("sla.rules", lang, evidence=f"{report.evidence_s / 60:g}")
    maint = ""
    if report.maintenance:
        items = "".join(_window_item(m, tz, lang) for m in report.maintenance)
        maint = f'<h3>{esc(text("sla.maintenance", lang))}</h3><ul class="maintenance">{items}</ul>'
    parts = [
        f'<section id="sla-summary"><p class="sub">{esc(period)}</p>'
        f'<p class="headline" id="sla-total">{esc(summary)}</p>'
        f'<p class="note">{esc(rules)} {esc(source)}</p>{maint}</section>',
    ]
    for level in LEVELS:
        parts.append(
            f'<section id="sla-{level}"><h2>{esc(text("sla.by." + level, lang))}</h2>'
            f"{_table(report.lines[level], level, lang, link)}</section>"
        )
    return "".join(parts)


def render_html(report: Report, lang: str = "en", stylesheet: str = "") -> str:
    """A page with no script that prints to A4: self-contained (inline CSS), or linking `stylesheet` (the web's CSP)."""
    title = text("sla.title", lang, kabupaten=report.kabupaten, month=report.month)
    style = f'<link rel="stylesheet" href="{esc(stylesheet)}">' if stylesheet else f"<style>{static.CSS}</style>"
    return (
        f'<!DOCTYPE html><html lang="{esc(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"{style}</head><body><main><h1>{esc(title)}</h1>{report_body(report, lang)}"
        f'<p class="note">{esc(text("sla.generated", lang, time=local(report.generated, zone(report.timezone))))}</p>'
        "</main></body></html>\n"
    )
