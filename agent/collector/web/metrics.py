"""/metrics in the Prometheus text format (0.0.4): the fleet now, one series per node.

Why by hand and not with prometheus_client: the page is a few lines of text per
node, built from the same views as the pages and the API, and the collector's
Debian package stays free of another dependency. Units follow Prometheus'
conventions (seconds, ratios); the link type is a label, so a change of link
starts a new series, which is what a dashboard wants to see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional

from agent.collector.web.html import visible
from agent.collector.web.map import shown_state
from agent.collector.web.views import Fleet

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def label(value: object) -> str:
    """A label value: control characters shown as \\xNN text (as on the pages), then backslash and quote escaped."""
    return visible(value, 256).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(v: float) -> str:
    return repr(float(v))


class Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.name = name

    def add(self, value: Optional[float], **labels: object) -> None:
        if value is None:
            return
        inner = ",".join(f'{k}="{label(v)}"' for k, v in labels.items())
        self.lines.append(f"{self.name}{{{inner}}} {_value(value)}" if inner else f"{self.name} {_value(value)}")


def render(fleet: Fleet, csp_violations: int, rollup_nodes: Optional[int], extra: Iterable[Family] = ()) -> str:
    fams = {
        "up": Family("netprobe_node_up", "gauge", "1 when the node reaches beyond its gateway now, 0 when it is dark"),
        "dark": Family("netprobe_node_dark", "gauge", "1 when the desa is dark: offline, silent or gateway only"),
        "state": Family(
            "netprobe_node_state", "gauge", "1 for the node's current state (online, gateway_only, silent, offline)"
        ),
        "lat": Family(
            "netprobe_node_latency_p50_seconds", "gauge", "median RTT to public targets in the latest readings"
        ),
        "loss": Family(
            "netprobe_node_loss_ratio", "gauge", "mean packet loss to public targets in the latest readings, 0..1"
        ),
        "down": Family("netprobe_node_download_bits_per_second", "gauge", "last throughput test, download"),
        "upl": Family("netprobe_node_upload_bits_per_second", "gauge", "last throughput test, upload"),
        "seen": Family(
            "netprobe_node_last_seen_timestamp_seconds", "gauge", "when the collector last stored a reading"
        ),
        "stored": Family("netprobe_node_readings_stored", "gauge", "readings with a sequence number kept for the node"),
        "bytes": Family("netprobe_node_data_month_bytes", "gauge", "bytes the node's tests used this month"),
    }
    for v in fleet.views:
        ids = {"node": v.node, "kecamatan": v.kecamatan, "desa": v.desa}
        state = shown_state(v)
        fams["up"].add(0.0 if v.dark else 1.0, link_type=v.link_type, **ids)
        fams["dark"].add(1.0 if v.dark else 0.0, **ids)
        fams["state"].add(1.0, state=state, **ids)
        fams["lat"].add(None if v.latency_p50_ms is None else v.latency_p50_ms / 1000.0, node=v.node)
        fams["loss"].add(None if v.loss_pct is None else v.loss_pct / 100.0, node=v.node)
        fams["down"].add(None if v.download_mbps is None else v.download_mbps * 1e6, node=v.node)
        fams["upl"].add(None if v.upload_mbps is None else v.upload_mbps * 1e6, node=v.node)
        fams["seen"].add(v.last_seen, node=v.node)
        fams["stored"].add(float(fleet.readings_stored.get(v.node, 0)), node=v.node)
        fams["bytes"].add(float(v.bytes_month), node=v.node)
    rejects = Family("netprobe_readings_rejected_total", "counter", "messages the collector rejected, by kind")
    for kind, n in sorted(fleet.rejects.items()):
        rejects.add(float(n), kind=kind)
    t = fleet.totals
    desa = Family("netprobe_desa", "gauge", "desa by whether they have working internet now")
    desa.add(float(t["desa_reachable"]), state="reachable")
    desa.add(float(t["desa_dark"]), state="dark")
    share = Family("netprobe_bebas_blankspot_ratio", "gauge", "share of desa with working internet now, 0..1")
    share.add(float(t["share_reachable"]))
    csp = Family("netprobe_web_csp_violations_total", "counter", "Content-Security-Policy reports browsers sent")
    csp.add(float(csp_violations))
    parts: list[Sequence[str]] = [f.lines for f in (*fams.values(), rejects, desa, share, csp, *extra)]
    if rollup_nodes is not None:
        roll = Family("netprobe_web_rollup_nodes", "gauge", "nodes rolled up in the last history run")
        roll.add(float(rollup_nodes))
        parts.append(roll.lines)
    return "\n".join(line for lines in parts for line in lines) + "\n"
