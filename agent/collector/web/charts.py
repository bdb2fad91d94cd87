"""A node's history as inline SVG: latency with its p90 band, loss, throughput against the contract, status.

Why inline SVG and no script: the Content-Security-Policy forbids every script,
the page prints as it shows, and a 30-day chart is a few kB of text, drawn by
the server once instead of by a library shipped to every browser. Pure: numbers
in, markup out; colours come from the stylesheet's classes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from typing import Optional

from agent.collector import sla
from agent.collector.web.html import esc
from agent.collector.web.rollup import Figures
from agent.i18n import text

SHADED = (sla.DOWN, sla.OFF, sla.UNKNOWN, sla.MAINTENANCE)


@dataclasses.dataclass(frozen=True)
class Frame:
    """The plot area: time on x from `since` to `until`, values on y from 0 to `top`."""

    since: float
    until: float
    tz: dt.tzinfo
    width: float = 760.0
    height: float = 170.0
    left: float = 46.0
    right: float = 12.0
    top_pad: float = 10.0
    bottom: float = 22.0

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top_pad - self.bottom

    def x(self, ts: float) -> float:
        span = max(self.until - self.since, 1.0)
        return self.left + min(max((ts - self.since) / span, 0.0), 1.0) * self.plot_w

    def y(self, value: float, top: float) -> float:
        share = min(max(value / top, 0.0), 1.0) if top > 0 else 0.0
        return self.top_pad + self.plot_h * (1.0 - share)


def nice_top(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if not value or value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value * 0.999:
            return float(step * power)
    return 10.0 * power


def _svg(frame: Frame, cls: str, label: str, body: str) -> str:
    return (
        f'<svg class="chart {cls}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width:.0f} {frame.height:.0f}" '
        f'width="{frame.width:.0f}" height="{frame.height:.0f}" role="img" aria-label="{esc(label)}">{body}</svg>'
    )


def time_axis(frame: Frame) -> str:
    span = frame.until - frame.since
    step = 6 * 3600 if span <= 2 * 86400 else 86400 if span <= 8 * 86400 else 5 * 86400
    fmt = "%H:%M" if step < 86400 else "%d/%m"
    start = dt.datetime.fromtimestamp(frame.since, frame.tz)
    if step < 86400:
        first = start.replace(minute=0, second=0, microsecond=0)
        first += dt.timedelta(hours=(-first.hour) % 6)
    else:
        first = start.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    parts = []
    tick = first
    base_y = frame.top_pad + frame.plot_h
    while tick.timestamp() <= frame.until:
        x = frame.x(tick.timestamp())
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{frame.top_pad:.0f}" x2="{x:.1f}" y2="{base_y:.0f}"/>'
            f'<text x="{x:.1f}" y="{frame.height - 6:.0f}" text-anchor="middle">{tick.strftime(fmt)}</text>'
        )
        tick += dt.timedelta(seconds=step)
    parts.append(
        f'<line class="axis" x1="{frame.left:.0f}" y1="{base_y:.0f}" x2="{frame.width - frame.right:.0f}" y2="{base_y:.0f}"/>'
    )
    return "".join(parts)


def value_axis(frame: Frame, top: float, unit: str) -> str:
    parts = []
    for share in (0.0, 0.5, 1.0):
        y = frame.y(top * share, top)
        parts.append(
            f'<line class="grid" x1="{frame.left:.0f}" y1="{y:.1f}" x2="{frame.width - frame.right:.0f}" y2="{y:.1f}"/>'
            f'<text x="{frame.left - 4:.0f}" y="{y + 4:.1f}" text-anchor="end">{top * share:g}</text>'
        )
    parts.append(f'<text x="2" y="{frame.top_pad + 2:.0f}">{esc(unit)}</text>')
    return "".join(parts)


def pixels(frame: Frame, segments: Sequence[sla.Segment]) -> list[tuple[float, float, str]]:
    """Segments as x ranges, neighbours of one status merged and slivers under a pixel folded into the one before.

    The figures are exact elsewhere; a chart needs only what can be seen, and a
    flapping link must not draw thousands of rectangles.
    """
    out: list[tuple[float, float, str]] = []
    for s in sorted(segments, key=lambda s: s.start):
        if s.stop <= frame.since or s.start >= frame.until:
            continue
        x0, x1 = frame.x(s.start), frame.x(s.stop)
        if out and (out[-1][2] == s.status or x1 - x0 < 1.0) and x0 - out[-1][1] < 1.0:
            out[-1] = (out[-1][0], x1, out[-1][2])
        else:
            out.append((x0, x1, s.status))
    return out


def shades(frame: Frame, segments: Sequence[sla.Segment], lang: str) -> str:
    """Dark periods (down, off, unknown, maintenance) as shaded columns behind the data."""
    parts = []
    for x0, x1, status in pixels(frame, segments):
        if status not in SHADED:
            continue
        label = text(f"web.status.{status}", lang)
        parts.append(
            f'<rect class="shade-{status}" x="{x0:.1f}" y="{frame.top_pad:.0f}" width="{max(x1 - x0, 0.8):.1f}" '
            f'height="{frame.plot_h:.0f}"><title>{esc(label)}</title></rect>'
        )
    return "".join(parts)


def link_marks(frame: Frame, changes: Sequence[tuple[float, str, str]], lang: str) -> str:
    parts = []
    for ts, old, new in changes:
        if not frame.since <= ts <= frame.until:
            continue
        x = frame.x(ts)
        label = text("web.node.link_change", lang, old=old, new=new)
        parts.append(
            f'<g class="link-change"><line class="linkmark" x1="{x:.1f}" y1="{frame.top_pad:.0f}" x2="{x:.1f}" '
            f'y2="{frame.top_pad + frame.plot_h:.0f}"/><text x="{x + 3:.1f}" y="{frame.top_pad + 10:.0f}">'
            f"{esc(new)}</text><title>{esc(label)}</title></g>"
        )
    return "".join(parts)


def _runs(points: Sequence[tuple[float, Optional[float]]]) -> list[list[tuple[float, float]]]:
    """Consecutive points with values, split where a value is missing."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, v in points:
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, v))
    return [r for r in runs if r]


def latency_chart(
    frame: Frame,
    buckets: Sequence[Figures],
    width_s: float,
    segments: Sequence[sla.Segment],
    changes: Sequence[tuple[float, str, str]],
    lang: str,
) -> str:
    """p50 as a line, the band up to p90 behind it; dark periods shaded; link-type changes marked."""
    top = nice_top(max((b.p90 or b.p50 or 0.0 for b in buckets), default=0.0))
    mid = [(frame.x(b.start + width_s / 2), b) for b in buckets]
    band = []
    for run in _runs([(x, b.p50) for x, b in mid]):
        xs = {x for x, _ in run}
        highs = [(x, b.p90 if b.p90 is not None else b.p50) for x, b in mid if x in xs]
        upper = " ".join(f"{x:.1f},{frame.y(v or 0.0, top):.1f}" for x, v in highs)
        lower = " ".join(f"{x:.1f},{frame.y(v, top):.1f}" for x, v in reversed(run))
        band.append(f'<polygon class="band" points="{upper} {lower}"/>')
    lines = "".join(
        '<polyline class="p50" points="' + " ".join(f"{x:.1f},{frame.y(v, top):.1f}" for x, v in run) + '"/>'
        for run in _runs([(x, b.p50) for x, b in mid])
    )
    dots = "".join(  # a lone bucket draws no line: show it as a dot
        f'<circle class="dl" cx="{run[0][0]:.1f}" cy="{frame.y(run[0][1], top):.1f}" r="2"/>'
        for run in _runs([(x, b.p50) for x, b in mid])
        if len(run) == 1
    )
    body = (
        shades(frame, segments, lang)
        + value_axis(frame, top, "ms")
        + time_axis(frame)
        + "".join(band)
        + lines
        + dots
        + link_marks(frame, changes, lang)
    )
    return _svg(frame, "latency-chart", text("web.chart.latency", lang), body)


def loss_chart(
    frame: Frame, buckets: Sequence[Figures], width_s: float, segments: Sequence[sla.Segment], lang: str
) -> str:
    bw = max(frame.plot_w * width_s / max(frame.until - frame.since, 1.0) - 0.6, 0.8)
    bars = "".join(
        f'<rect class="loss" x="{frame.x(b.start):.1f}" y="{frame.y(b.loss, 100.0):.1f}" width="{bw:.1f}" '
        f'height="{frame.top_pad + frame.plot_h - frame.y(b.loss, 100.0):.1f}"/>'
        for b in buckets
        if b.loss
    )
    body = shades(frame, segments, lang) + value_axis(frame, 100.0, "%") + time_axis(frame) + bars
    return _svg(frame, "loss-chart", text("web.chart.loss", lang), body)


def throughput_chart(
    frame: Frame, points: Sequence[tuple[float, Optional[float], Optional[float]]], contract: Optional[float], lang: str
) -> str:
    """Download and upload per test (or per hour's median), the contracted rate as a dashed line."""
    values = [v for _, d, u in points for v in (d, u) if v is not None]
    top = nice_top(max([*values, contract or 0.0], default=0.0) * 1.1)
    parts = [value_axis(frame, top, "Mbit/s"), time_axis(frame)]
    if contract:
        y = frame.y(contract, top)
        parts.append(
            f'<line class="contract" x1="{frame.left:.0f}" y1="{y:.1f}" x2="{frame.width - frame.right:.0f}" y2="{y:.1f}">'
            f"<title>{esc(text('web.node.contract', lang, mbps=f'{contract:g}'))}</title></line>"
        )
    for idx, (cls, line) in enumerate((("dl", "down-line"), ("ul", "up-line"))):
        pts = [(frame.x(ts), v[idx]) for ts, *v in points]
        for run in _runs(pts):
            if len(run) > 1:
                coords = " ".join(f"{x:.1f},{frame.y(v, top):.1f}" for x, v in run)
                parts.append(f'<polyline class="{line}" points="{coords}"/>')
        parts.extend(
            f'<circle class="{cls}" cx="{x:.1f}" cy="{frame.y(v, top):.1f}" r="2.5"/>' for x, v in pts if v is not None
        )
    return _svg(frame, "throughput-chart", text("web.chart.throughput", lang), "".join(parts))


def status_strip(frame: Frame, segments: Sequence[sla.Segment], lang: str) -> str:
    """The status over the range as one coloured strip: up, down, unknown, off, maintenance."""
    f = dataclasses.replace(frame, height=46.0, top_pad=4.0, bottom=22.0)
    parts = [f'<rect class="seg-unknown" x="{f.left:.0f}" y="4" width="{f.plot_w:.1f}" height="{f.plot_h:.0f}"/>']
    for x0, x1, status in pixels(f, segments):
        parts.append(
            f'<rect class="seg-{esc(status)}" x="{x0:.1f}" y="4" width="{max(x1 - x0, 0.6):.1f}" height="{f.plot_h:.0f}">'
            f"<title>{esc(text('web.status.' + status, lang))}</title></rect>"
        )
    parts.append(time_axis(f))
    return _svg(f, "status-strip", text("web.chart.status", lang), "".join(parts))
