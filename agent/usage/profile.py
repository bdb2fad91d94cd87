"""The `metered` profile: a schedule that answers the regency's questions on a few MB a month.

Is the desa online, how good is its link, what link is it: one public ICMP target
and the gateway every 10 minutes, a TCP connect (where ICMP is filtered) every 30,
the system resolver hourly, an HTTPS check (TLS resumed) every 3 hours, and a link
look a day sized to what the classifier needs (90 s of 1-Hz paired pings: 90 idle
samples over a minute and a half, six LEO handovers), its watcher reading the route
every 5 minutes. Readings go in 10-minute batches, the MQTT keepalive is 20 minutes,
the status hourly, and the whole agent keeps to 10 MB a month.

`[daemon] profile = "metered"` puts these values in place of the defaults of every key
the config file leaves out (and of [[targets]] when it has none); what the file sets wins.
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULT, METERED = "default", "metered"
PROFILE_NAMES = (DEFAULT, METERED)
SUGGEST_FOR = ("satellite-geo", "cellular")  # link types sold by the megabyte: the link look suggests metered

METERED_SECTIONS: dict[str, dict[str, Any]] = {
    "daemon": {"host_interval": 3600.0},
    "mqtt": {"batch": True, "batch_s": 600.0, "keepalive": 1200, "status_interval": 3600.0},
    "linktype": {"observe_s": 90.0, "rate_hz": 1.0, "confirm_s": 3600.0, "watch_s": 300.0},
    "throughput": {"enabled": False},
    "usage": {"monthly_budget_mb": 10.0},
}
METERED_TARGETS: tuple[dict[str, Any], ...] = (
    {"kind": "icmp", "target": "gateway", "name": "gateway", "interval": 600.0, "count": 3},
    {"kind": "icmp", "target": "1.1.1.1", "name": "cloudflare", "interval": 600.0, "count": 3, "payload_size": 16},
    {"kind": "tcp", "target": "1.1.1.1:443", "name": "cloudflare-tcp", "interval": 1800.0, "count": 1},
    {"kind": "dns", "target": "google.com", "name": "dns-system", "server": "system", "interval": 3600.0},
    {"kind": "http", "target": "https://www.google.com/generate_204", "name": "web", "interval": 10800.0},
    {"kind": "link", "target": "1.1.1.1", "name": "link", "interval": 86400.0},
)


def profile_of(data: dict[str, Any]) -> str:
    daemon = data.get("daemon")
    return str(daemon.get("profile", DEFAULT)) if isinstance(daemon, dict) else DEFAULT


def with_profile(data: dict[str, Any]) -> dict[str, Any]:
    """Parsed TOML with the profile's values where the file says nothing (unchanged for the default)."""
    if profile_of(data) != METERED:
        return data
    out = copy.deepcopy(data)
    for section, values in METERED_SECTIONS.items():
        table = out.setdefault(section, {})
        if isinstance(table, dict):  # anything else is the config check's to report
            for key, value in values.items():
                table.setdefault(key, value)
    if "targets" not in out:
        out["targets"] = [dict(t) for t in METERED_TARGETS]
    return out


def suggestion(profile: str, link_type: str) -> str:
    """The profile the link look suggests ("" when the configured one fits)."""
    return METERED if profile != METERED and link_type in SUGGEST_FOR else ""
