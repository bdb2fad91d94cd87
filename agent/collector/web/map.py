"""The fleet on a map that needs no tile server: nodes at their lat/lon on an SVG, the regency's own boundary beneath.

Why SVG drawn by the server: the office link is slow and the page may fetch
nothing outside `netprobe web`. An equirectangular projection, scaled by the
cosine of the mid latitude, is exact enough for one regency (about 2 degrees).
Up to `MAX_DOTS` nodes each gets a circle with a link and a tooltip; beyond
that (10,000 nodes) each state is one path of round dots, about 12 bytes a
node, so the overview stays light.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from agent.collector.fleet import NodeView
from agent.collector.web.html import esc, href, seg
from agent.i18n import text

log = logging.getLogger(__name__)

MAX_DOTS = 1500
MAX_BOUNDARY_BYTES = 8 << 20
MAX_RINGS_POINTS = 200_000
STATES = ("online", "gateway_only", "silent", "offline")

Ring = list[tuple[float, float]]  # (lon, lat)


def shown_state(v: NodeView) -> str:
    """The colour a node wears: dark is red or amber whatever the reason, never green."""
    if v.state == "online":
        return "gateway_only" if v.dark else "online"
    return v.state if v.state in STATES else "offline"


def load_boundary(path: str) -> list[Ring]:
    """Outer and inner rings of every Polygon/MultiPolygon in a GeoJSON file; [] (and a warning) if unusable."""
    if not path:
        return []
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BOUNDARY_BYTES + 1)
        if len(raw) > MAX_BOUNDARY_BYTES:
            raise ValueError(f"larger than {MAX_BOUNDARY_BYTES >> 20} MB")
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        log.warning("boundary file %s not used: %s", path, exc)
        return []
    rings: list[Ring] = []
    budget = [MAX_RINGS_POINTS]
    for geometry in _geometries(data):
        kind, coords = geometry.get("type"), geometry.get("coordinates")
        polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
        for polygon in polygons if isinstance(polygons, list) else []:
            for ring in polygon if isinstance(polygon, list) else []:
                clean = _ring(ring, budget)
                if len(clean) >= 3:
                    rings.append(clean)
    if not rings:
        log.warning("boundary file %s holds no polygon", path)
    return rings


def _geometries(data: Any) -> Iterable[dict[str, Any]]:
    if not isinstance(data, dict):
        return []
    if data.get("type") == "FeatureCollection" and isinstance(data.get("features"), list):
        return [f["geometry"] for f in data["features"] if isinstance(f, dict) and isinstance(f.get("geometry"), dict)]
    if data.get("type") == "Feature" and isinstance(data.get("geometry"), dict):
        return [data["geometry"]]
    return [data]


def _ring(ring: Any, budget: list[int]) -> Ring:
    out: Ring = []
    if not isinstance(ring, list):
        return out
    for point in ring:
        if budget[0] <= 0:
            break
        if isinstance(point, list) and len(point) >= 2:
            lon, lat = point[0], point[1]
            numbers = all(
                isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in (lon, lat)
            )
            if numbers and -180 <= lon <= 180 and -90 <= lat <= 90:
                out.append((float(lon), float(lat)))
                budget[0] -= 1
    return out


class Projection:
    """lon/lat to SVG x/y, fitted to a box of points with a margin."""

    def __init__(self, points: Sequence[tuple[float, float]], width: float, height: float, pad: float = 24.0) -> None:
        lons = [p[0] for p in points]
        lats = [p[1] for p in points]
        self.lon0, self.lat0 = min(lons), min(lats)
        self.kx = math.cos(math.radians((min(lats) + max(lats)) / 2))
        span_x = max((max(lons) - self.lon0) * self.kx, 1e-3)
        span_y = max(max(lats) - self.lat0, 1e-3)
        self.scale = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)
        self.ox = pad + ((width - 2 * pad) - span_x * self.scale) / 2
        self.oy = height - pad - ((height - 2 * pad) - span_y * self.scale) / 2

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        return self.ox + (lon - self.lon0) * self.kx * self.scale, self.oy - (lat - self.lat0) * self.scale


def _boundary_path(rings: Sequence[Ring], proj: Projection) -> str:
    parts = []
    for ring in rings:
        pts: list[str] = []
        last = ""
        for lon, lat in ring:
            x, y = proj(lon, lat)
            p = f"{x:.1f} {y:.1f}"
            if p != last:
                pts.append(p)
                last = p
        if len(pts) >= 3:
            parts.append("M" + "L".join(pts) + "Z")
    return f'<path class="boundary" fill-rule="evenodd" d="{"".join(parts)}"/>' if parts else ""


def render_map(
    views: Sequence[NodeView],
    lang: str,
    boundary: Sequence[Ring] = (),
    width: float = 760.0,
    height: float = 560.0,
    labels: bool = True,
) -> str:
    """The SVG map, or a short note when no node has a position."""
    placed = [v for v in views if v.lat is not None and v.lon is not None]
    if not placed and not boundary:
        return f'<p class="note">{esc(text("web.map.none", lang))}</p>'
    points = [(float(v.lon), float(v.lat)) for v in placed if v.lon is not None and v.lat is not None]
    points += [p for ring in boundary for p in ring]
    proj = Projection(points, width, height)
    parts = [
        f'<svg id="map" class="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{esc(text("web.map.title", lang))}">',
        f'<rect class="sea" width="{width:.0f}" height="{height:.0f}"/>',
        _boundary_path(boundary, proj),
    ]
    if len(placed) <= MAX_DOTS:
        for v in sorted(placed, key=lambda v: STATES.index(shown_state(v))):  # dark ones drawn last, on top
            assert v.lon is not None and v.lat is not None
            x, y = proj(v.lon, v.lat)
            state = shown_state(v)
            tip = f"{v.desa} ({v.kecamatan}) · {v.node}: {text('web.state.' + state, lang)}"
            parts.append(
                f'<a href="{esc(href("/node/" + seg(v.node), lang))}"><circle class="node st-{state}" data-node="{esc(v.node)}" '
                f'cx="{x:.1f}" cy="{y:.1f}" r="5.5"><title>{esc(tip)}</title></circle></a>'
            )
    else:
        by_state: dict[str, list[str]] = {s: [] for s in STATES}
        for v in placed:
            assert v.lon is not None and v.lat is not None
            x, y = proj(v.lon, v.lat)
            by_state[shown_state(v)].append(f"M{x:.0f} {y:.0f}h0")
        for state in STATES:
            if by_state[state]:
                parts.append(
                    f'<path class="dots st-{state}" data-state="{state}" data-count="{len(by_state[state])}" '
                    f'd="{"".join(by_state[state])}"/>'
                )
    if labels:
        parts.append(_labels(placed, proj, lang))
    parts.append("</svg>")
    return "".join(parts)


def _labels(placed: Sequence[NodeView], proj: Projection, lang: str) -> str:
    """Each kecamatan's name at the middle of its nodes."""
    groups: dict[str, list[tuple[float, float]]] = {}
    for v in placed:
        if v.lon is not None and v.lat is not None:
            groups.setdefault(v.kecamatan, []).append((v.lon, v.lat))
    out = []
    for name, pts in sorted(groups.items()):
        lon = sorted(p[0] for p in pts)[len(pts) // 2]
        lat = sorted(p[1] for p in pts)[len(pts) // 2]
        x, y = proj(lon, lat)
        out.append(
            f'<a href="{esc(href("/kecamatan/" + seg(name), lang))}"><text class="kec-label" x="{x:.1f}" y="{y - 9:.1f}" '
            f'text-anchor="middle">{esc(name)}</text></a>'
        )
    return "".join(out)


def legend(lang: str, states: Optional[Sequence[str]] = None) -> str:
    return (
        '<p class="legend">'
        + "".join(
            f'<span><i class="sw sw-{s}"></i>{esc(text("web.state." + s, lang))}</span>' for s in (states or STATES)
        )
        + "</p>"
    )
