"""`[web]` and `[sla]` in collector.toml: where the live view listens, who may see it, what providers promised.

Loaded by the same typed-settings machinery as the rest of collector.toml, so a
bad port or zone is reported with its key path, with every other problem.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Optional

from agent.schema import setting
from agent.throughput.server import parse_listen

DEFAULT_LISTEN = "127.0.0.1:8080"


def listen_address(text: str) -> tuple[str, int]:
    """HOST:PORT as `netprobe speed-server --listen` reads it (the same parser), with this command's example."""
    try:
        return parse_listen(text)
    except ValueError:
        raise ValueError(f"bad listen address '{text}': expected HOST:PORT, e.g. {DEFAULT_LISTEN}") from None


def check_listen(value: str) -> Optional[str]:
    try:
        listen_address(value)
    except ValueError as exc:
        return str(exc)
    return None


def zone(name: str) -> dt.tzinfo:
    """The named time zone; a fixed +07:00 (WIB, no daylight saving) when tzdata is missing."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # zoneinfo raises several kinds (missing tzdata, bad key)
        if name in ("Asia/Jakarta", "WIB"):
            return dt.timezone(dt.timedelta(hours=7), "WIB")
        raise ValueError(f"unknown time zone '{name}'") from None


def check_zone(value: str) -> Optional[str]:
    try:
        zone(value)
    except ValueError as exc:
        return str(exc)
    return None


@dataclasses.dataclass(frozen=True)
class WebSettings:
    """`netprobe web`: where it listens, who may see it, the map's boundary (docs/web.md)."""

    listen: str = setting(DEFAULT_LISTEN, check=check_listen, help="HOST:PORT; loopback unless you mean it")
    lang: str = setting("en", choices=("en", "id"), help="default language of the pages (?lang= overrides)")
    timezone: str = setting(
        "Asia/Jakarta", check=check_zone, help="times on the pages, month boundaries, [[maintenance]] times"
    )
    username: str = setting("", help="HTTP basic auth user (with password_file)")
    password_file: str = setting("", help="file holding the basic auth password")
    token_file: str = setting("", help="file holding a bearer token (Authorization: Bearer ...), e.g. for Prometheus")
    boundary_file: str = setting("", help="GeoJSON of the regency's boundaries, drawn beneath the map")
    history_days: float = setting(400.0, min=1.0, help="how far back the charts' and SLA's rollup reaches")
    refresh_s: float = setting(60.0, min=5.0, max=3600.0, help="how often new readings are rolled up")
    max_clients: int = setting(16, min=1, max=512, help="requests served at once; more get HTTP 503")


@dataclasses.dataclass(frozen=True)
class ProviderContract:
    """What one provider (a node's operator tag) promised."""

    availability_pct: float = setting(99.0, min=0.0, max=100.0, help="contracted availability, percent")
    speed_mbps: float = setting(0.0, min=0.0, help="contracted download speed when a node has no contract_mbps tag")


@dataclasses.dataclass(frozen=True)
class SlaSettings:
    """The month report's rules and the providers' contracts (docs/sla.md)."""

    evidence_s: float = setting(300.0, above=0.0, help="how long one reading vouches for the node's status")
    providers: dict[str, ProviderContract] = setting(
        factory=dict, help="[sla.providers.NAME]: availability_pct, speed_mbps; NAME = the operator tag"
    )
