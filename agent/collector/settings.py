"""collector.toml: the collector's own config, separate from an agent's (it runs on another box).

Loaded with the same typed-settings machinery as the agent's config, so every
problem is reported with its key path, all at once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Optional

from agent.collector import maintenance
from agent.collector.incidents.settings import IncidentSettings, NotifySettings, check_incidents, check_notify
from agent.collector.maintenance import Calendar, MaintenanceWindow
from agent.collector.web.settings import SlaSettings, WebSettings, zone
from agent.config import tomllib
from agent.net.secrets import read_secret_file
from agent.reading.topics import BrokerUrl
from agent.schema import ConfigError, Problem, build, setting

log = logging.getLogger(__name__)

DEFAULT_PATH = "/etc/netprobe/collector.toml"
ENV_PATH = "NETPROBE_COLLECTOR_CONFIG"


def check_url(value: str) -> Optional[str]:
    try:
        BrokerUrl.parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def check_name(value: str) -> Optional[str]:
    if value and (any(c in value for c in "/+#$ ") or len(value) > 64):
        return "use up to 64 characters without / + # $ or spaces"
    return None


@dataclasses.dataclass(frozen=True)
class BrokerSettings:
    url: str = setting("mqtt://127.0.0.1:1883", check=check_url, help="mqtt:// or mqtts:// (TLS, verified)")
    client_id: str = setting("netprobe-collector", check=check_name, help="unique per collector process")
    username: str = setting("", help="the collector's own broker account")
    password_file: str = setting("", help="file holding the password (kept out of this file and the logs)")
    ca_file: str = setting("", help='CA bundle for mqtts; "" uses the system store')
    cert_file: str = setting("", help="client certificate for mutual TLS")
    key_file: str = setting("", help="its key")
    topic_prefix: str = setting("netprobe", check=check_name)
    share_group: str = setting(
        "",
        check=check_name,
        help='"" (default): a plain persistent subscription, which Mosquitto 2.0 keeps across its restart; '
        "a name: the MQTT 5 shared subscription $share/<name>/..., to split the load between collectors",
    )
    receive_maximum: int = setting(1000, min=1, max=65535, help="unacknowledged messages the broker may send us")
    session_expiry_s: int = setting(
        86400, min=0, max=4294967295, help="how long the broker keeps our queue while we are away"
    )


@dataclasses.dataclass(frozen=True)
class StoreSettings:
    dsn: str = setting("", help='PostgreSQL DSN (psycopg 3); "" uses the SQLite file at `path`')
    path: str = setting("/var/lib/netprobe/collector.db", help="the SQLite database")
    pg_schema: str = setting("netprobe", check=check_name, help="PostgreSQL schema for the tables")
    retention_days: float = setting(
        400.0, min=0.0, max=36500.0, help="readings older than this are deleted; 0 keeps all"
    )
    busy_timeout_s: float = setting(5.0, above=0.0, help="SQLite: how long to wait for another writer's lock")
    batch_size: int = setting(500, min=1, max=20000, help="readings per transaction at most")


@dataclasses.dataclass(frozen=True)
class ValidationSettings:
    max_payload_bytes: int = setting(65536, min=256, help="larger messages are rejected as oversized")


@dataclasses.dataclass(frozen=True)
class FleetSettings:
    interval_s: float = setting(300.0, above=0.0, help="the agents' usual reading interval")
    silent_intervals: float = setting(3.0, above=0.0, help="a node is silent after this many intervals")
    kabupaten: str = setting(
        "Musi Banyuasin", help="the regency named in the report's title (never taken from what nodes send)"
    )


@dataclasses.dataclass(frozen=True)
class AckSettings:
    """When to tell a node which of its readings are stored (docs/delivery.md)."""

    enabled: bool = setting(True, help="publish acks (retained, QoS 1) on <topic_prefix>/ack/<node>")
    max_delay_s: float = setting(
        60.0, above=0.0, max=3600.0, help="the longest a stored reading waits for its ack (one ack covers all since)"
    )
    min_gap_s: float = setting(
        1.0, min=0.0, max=600.0, help="at most one ack per node this often; a replay is acked once it pauses this long"
    )


@dataclasses.dataclass(frozen=True)
class CollectorConfig:
    broker: BrokerSettings = setting(factory=BrokerSettings)
    store: StoreSettings = setting(factory=StoreSettings)
    validation: ValidationSettings = setting(factory=ValidationSettings)
    fleet: FleetSettings = setting(factory=FleetSettings)
    acks: AckSettings = setting(factory=AckSettings)
    web: WebSettings = setting(factory=WebSettings)
    sla: SlaSettings = setting(factory=SlaSettings)
    incidents: IncidentSettings = setting(factory=IncidentSettings, check=check_incidents)
    notify: NotifySettings = setting(factory=NotifySettings, check=check_notify)
    maintenance: list[MaintenanceWindow] = setting(
        factory=list, help="planned work, announced once: no alerts for what began inside, left out of availability"
    )

    def calendar(self) -> Calendar:
        """The one maintenance calendar, as the incident engine, the SLA and the pages read it."""
        return Calendar(self.maintenance, zone(self.web.timezone), self.incidents.groups)


def _group_names(data: dict[str, Any]) -> list[str]:
    """The [[incidents.groups]] names as written, so windows are checked even when a group has another problem."""
    incidents = data.get("incidents")
    groups = incidents.get("groups") if isinstance(incidents, dict) else None
    if not isinstance(groups, list):
        return []
    return [str(g["name"]) for g in groups if isinstance(g, dict) and "name" in g]


def _maintenance_tables(
    data: dict[str, Any], source: str, problems: list[Problem]
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """`data` without any maintenance array, and every window's table with its key path: [[maintenance]] first,
    then the old forms (logged as deprecated), so one calendar holds them all."""
    rest, tables = maintenance.legacy_tables(data, problems)
    for old in sorted({path.partition("[")[0] for path, _ in tables}):
        log.warning("%s: [[%s]] is deprecated; it still loads, write it as [[maintenance]]", source, old)
    new = rest.pop("maintenance", [])
    if not isinstance(new, list):
        problems.append(Problem("maintenance", "expected an array of tables: [[maintenance]]"))
        return rest, tables
    return rest, [(f"maintenance[{i}]", table) for i, table in enumerate(new)] + tables


def parse_collector_config(data: dict[str, Any], source: str = "") -> CollectorConfig:
    problems: list[Problem] = []
    where = source or "collector.toml"
    rest, tables = _maintenance_tables(data, where, problems)
    cfg = build(CollectorConfig, rest, "", problems)
    if cfg is not None and cfg.broker.cert_file and not cfg.broker.key_file:
        problems.append(Problem("broker.key_file", "needed with broker.cert_file"))
    windows, groups = [], _group_names(data)
    for path, table in tables:
        window = build(MaintenanceWindow, table, path, problems)
        if isinstance(window, MaintenanceWindow):
            problems += maintenance.window_problems(window, path, groups)
            windows.append(window)
    if problems or cfg is None:
        raise ConfigError(problems, source)
    if cfg.incidents.timezone != cfg.web.timezone and any(p.startswith("incidents.") for p, _ in tables):
        log.warning(
            "%s: [[incidents.maintenance]] times are read in [web] timezone (%s), not %s",
            where,
            cfg.web.timezone,
            cfg.incidents.timezone,
        )
    return dataclasses.replace(cfg, maintenance=windows)


def load_collector_config(path: Optional[str] = None) -> CollectorConfig:
    path = path or os.environ.get(ENV_PATH) or (DEFAULT_PATH if os.path.exists(DEFAULT_PATH) else None)
    if path is None:
        return parse_collector_config({}, "(built-in defaults)")
    try:
        with open(path, "rb") as f:
            data = tomllib.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read config: {exc.strerror}")], path) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([Problem("", f"invalid TOML: {exc}")], path) from None
    return parse_collector_config(data, path)


def read_password(path: str) -> str:
    if not path:
        return ""
    try:
        return read_secret_file(path)
    except OSError as exc:
        raise ConfigError([Problem("broker.password_file", f"cannot read: {exc.strerror}")]) from None
