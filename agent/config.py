"""The agent's configuration: TOML in, frozen dataclasses out.

With no file at all the defaults still make sense: the gateway comes from the
default route and the public targets are well-known anycast resolvers. Every
problem is reported with its key path, and all of them at once.

Sections owned by later features (`[mqtt]`, `[spool]`, `[throughput]`,
`[linktype]`) live here too, so one file documents the whole config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import socket
import sys
from typing import Any, Optional

from agent import probes
from agent.linktype.settings import LinktypeConfig
from agent.net.secrets import read_secret_file
from agent.probes.base import ProbeContext
from agent.reading import contract
from agent.reading.topics import (
    DEFAULT_ACK_TOPIC,
    DEFAULT_TOPIC,
    check_ack_template,
    check_broker,
    check_node_id,
    check_template,
)
from agent.schema import ConfigError, Problem, build, describe, field_names, internal, setting
from agent.throughput.settings import ThroughputConfig
from agent.usage.profile import PROFILE_NAMES, with_profile
from agent.usage.settings import UsageConfig

__all__ = ["Config", "ConfigError", "TargetConfig", "load_config", "parse_config"]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Raspberry Pi OS bullseye
    import tomli as tomllib

DEFAULT_PATH = "/etc/netprobe/agent.toml"
ENV_PATH = "NETPROBE_CONFIG"


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    id: str = setting("", check=check_node_id, help="node id, e.g. muba-sekayu-balai-agung-01")
    state_dir: str = setting("/var/lib/netprobe", help="spool, sequence numbers and the data ledger")

    def resolved_id(self) -> str:
        """The configured id, or a tidy form of the host name for ad-hoc runs."""
        if self.id:
            return self.id
        tidy = re.sub(r"[^a-z0-9._-]+", "-", socket.gethostname().lower()).strip("-._")
        return tidy[:64] or "netprobe"


def check_place(value: str) -> Optional[str]:
    """A kabupaten, kecamatan or desa as the Reading contract carries it."""
    problem = contract.text_problem(value, contract.MAX_PLACE)
    return f"must be text of at most {contract.MAX_PLACE} characters without NUL" if problem else None


def check_tags(tags: dict[str, str]) -> Optional[str]:
    """Tags join the core site keys in every Reading: they may not replace one or outgrow the contract."""
    core = [k for k in tags if k in contract.SITE_CORE]
    if core:
        return f"'{core[0]}' is a site key, not a tag (set it in [site])"
    if len(tags) > contract.MAX_TAGS:
        return f"at most {contract.MAX_TAGS} tags ({len(tags)} given)"
    for key, value in tags.items():
        if contract.text_problem(key, contract.MAX_KEY) or not key:
            return f"tag names are 1-{contract.MAX_KEY} characters without NUL"
        if contract.text_problem(value, contract.MAX_SITE_TEXT):
            return f"tag '{key[:64]}' must be text of at most {contract.MAX_SITE_TEXT} characters without NUL"
    return None


def check_target(value: str) -> Optional[str]:
    if not value.strip():
        return "must not be empty"
    if contract.text_problem(value, contract.MAX_TARGET):
        return f"must be at most {contract.MAX_TARGET} characters without NUL (the Reading carries it)"
    return None


@dataclasses.dataclass(frozen=True)
class SiteConfig:
    kabupaten: str = setting("Musi Banyuasin", check=check_place, help="the regency (kabupaten)")
    kecamatan: str = setting("", check=check_place, help="the district, e.g. Sekayu")
    desa: str = setting("", check=check_place, help="the village, e.g. Balai Agung")
    lat: Optional[float] = setting(None, min=-90.0, max=90.0, help="latitude of the node, for the map")
    lon: Optional[float] = setting(None, min=-180.0, max=180.0, help="longitude of the node, for the map")
    tags: dict[str, str] = setting(factory=dict, check=check_tags, help="free tags, e.g. operator, contract")

    def as_dict(self) -> dict[str, Any]:
        site: dict[str, Any] = {"kabupaten": self.kabupaten, "kecamatan": self.kecamatan, "desa": self.desa}
        if self.lat is not None and self.lon is not None:
            site.update(lat=self.lat, lon=self.lon)
        site.update(self.tags)
        return site


@dataclasses.dataclass(frozen=True)
class TargetConfig:
    kind: str = setting(help="probe kind: icmp, tcp, dns, http, ...")
    target: str = setting(check=check_target, help='host, host:port, name or URL; "gateway" means the default gateway')
    name: str = setting("", help="a label for reports; defaults to kind:target")
    interval: float = setting(0.0, min=0.0, help="seconds between runs; 0 takes the probe's default")
    timeout: float = setting(0.0, min=0.0, help="seconds; 0 takes the probe's default")
    role: str = setting(
        "",
        choices=("", "gateway", "internet", "dns-system", "dns-public", "web"),
        help="which diagnose check it serves; inferred when empty",
    )
    options: Any = internal()

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}:{self.target}"


@dataclasses.dataclass(frozen=True)
class MqttConfig:
    broker: str = setting(
        "", check=check_broker, help='mqtt://host[:port] or mqtts://host[:port]; "" = no broker: stdout JSON lines'
    )
    protocol: str = setting("3.1.1", choices=("3.1.1", "5"), help='MQTT version; "5" also reports ACL denials')
    keepalive: int = setting(60, min=5, max=3600, help="seconds")
    qos: int = setting(1, choices=(0, 1), help="1: the broker acknowledges each publish (PUBACK)")
    persistent_session: bool = setting(True, help="clean_session=false (3.1.1) / session expiry (5)")
    topic: str = setting(
        DEFAULT_TOPIC, check=check_template, help="topic template; the collector reads the default layout only"
    )
    ca_file: str = setting("", help='CA bundle for mqtts://; "" = the system CA store')
    cert_file: str = setting("", help="client certificate (mTLS)")
    key_file: str = setting("", help="client key (mTLS)")
    username: str = setting("", help="broker account; on the shipped broker config it is the node id")
    password_file: str = setting("", help="file holding the password (first line)")
    password_env: str = setting("NETPROBE_MQTT_PASSWORD", help="environment variable holding the password")
    max_inflight: int = setting(20, min=1, max=1000, help="unacknowledged publishes at once; paces replay")
    replay_rate: float = setting(0.0, min=0.0, help="publishes per second at most; 0 = the in-flight window only")
    reconnect_min: float = setting(1.0, min=0.1, max=3600.0, help="seconds; backoff doubles with jitter")
    reconnect_max: float = setting(300.0, min=0.1, max=86400.0, help="seconds; the backoff cap")
    status_interval: float = setting(
        300.0, min=0.0, help="seconds between retained status refreshes; 0 = on connect only"
    )
    confirm: str = setting(
        "collector",
        choices=("collector", "broker"),
        help='a reading leaves the spool when the collector has stored it ("collector", its ack) '
        'or when the broker took it ("broker", PUBACK: for consumers that do not acknowledge)',
    )
    confirm_timeout: float = setting(
        600.0, min=0.5, max=86400.0, help="seconds a sent reading waits for its acknowledgement before it is sent again"
    )
    ack_topic: str = setting(
        DEFAULT_ACK_TOPIC, check=check_ack_template, help="where the collector acknowledges this node's readings"
    )
    batch: bool = setting(
        True,
        help="send Readings in compressed batches on .../{node}/batch (netprobe collect reads both); "
        "false: one JSON Reading per message on .../{node}/{measurement}, for other consumers",
    )
    batch_s: float = setting(
        120.0,
        min=0.1,
        max=3600.0,
        help="seconds a Reading may wait to join a batch; a state change (a target failing or answering again, "
        "a new link) goes at once. Keep it below the collector's silent time",
    )

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        tls = self.broker.startswith("mqtts://")
        for key in ("ca_file", "cert_file", "key_file", "password_file"):
            path = getattr(self, key)
            if path and not os.access(path, os.R_OK):
                found.append(Problem(f"mqtt.{key}", f"cannot read '{path}'"))
            elif path and key != "password_file" and not tls:
                found.append(Problem(f"mqtt.{key}", "is only used with an mqtts:// broker"))
        if bool(self.cert_file) != bool(self.key_file):
            found.append(Problem("mqtt.key_file", "cert_file and key_file go together"))
        if self.reconnect_max < self.reconnect_min:
            found.append(Problem("mqtt.reconnect_max", f"must be at least reconnect_min ({self.reconnect_min:g})"))
        return found

    def password(self) -> str:
        """From password_file, else the environment; never logged."""
        if self.password_file:
            return read_secret_file(self.password_file)
        return os.environ.get(self.password_env, "") if self.password_env else ""


@dataclasses.dataclass(frozen=True)
class SpoolConfig:
    max_rows: int = setting(100_000, min=100, help="oldest readings are dropped beyond this")
    max_mb: float = setting(50.0, min=0.1, help="payload megabytes; oldest readings are dropped beyond this")


@dataclasses.dataclass(frozen=True)
class DaemonConfig:
    profile: str = setting(
        "default",
        choices=PROFILE_NAMES,
        help='"metered": a schedule for metered VSAT/cellular plans (under 10 MB a month; docs/data-cost.md): '
        "its values replace the defaults of the keys this file leaves out, and of [[targets]] when there are none",
    )
    host_interval: float = setting(300.0, min=0.0, help="seconds between host-health readings; 0 = none")
    splay: float = setting(60.0, min=0.0, help="random start delay, at most this and one interval (seconds)")
    jitter: float = setting(0.1, min=0.0, max=0.5, help="each interval varies by up to this fraction")


DEFAULT_TARGETS: tuple[dict[str, Any], ...] = (
    {"kind": "icmp", "target": "gateway", "name": "gateway"},
    {"kind": "icmp", "target": "1.1.1.1", "name": "cloudflare"},
    {"kind": "icmp", "target": "8.8.8.8", "name": "google"},
    {"kind": "tcp", "target": "1.1.1.1:443", "name": "cloudflare-tcp"},
    {"kind": "dns", "target": "google.com", "name": "dns-system", "server": "system"},
    {"kind": "dns", "target": "google.com", "name": "dns-public", "server": "8.8.8.8"},
    {"kind": "http", "target": "https://www.google.com/generate_204", "name": "web"},
    # The regency's question "fiber or satellite?": a link-type look every few hours.
    {"kind": "link", "target": "1.1.1.1", "name": "link"},
)


@dataclasses.dataclass(frozen=True)
class Config:
    node: NodeConfig = setting(factory=NodeConfig)
    site: SiteConfig = setting(factory=SiteConfig)
    targets: list[TargetConfig] = setting(factory=list)
    mqtt: MqttConfig = setting(factory=MqttConfig)
    spool: SpoolConfig = setting(factory=SpoolConfig)
    throughput: ThroughputConfig = setting(factory=ThroughputConfig)
    linktype: LinktypeConfig = setting(factory=LinktypeConfig)
    daemon: DaemonConfig = setting(factory=DaemonConfig)
    usage: UsageConfig = setting(factory=UsageConfig)
    source: str = internal("")
    digest: str = internal("")

    def probe_context(self, interactive: bool = False) -> ProbeContext:
        """What a probe may know of this config beyond its own options."""
        return ProbeContext(
            state_dir=self.node.state_dir, linktype=self.linktype, throughput=self.throughput, interactive=interactive
        )

    def target(self, name: str) -> TargetConfig:
        for t in self.targets:
            if t.label == name:
                return t
        raise KeyError(name)


def build_target(data: Any, path: str, problems: list[Problem]) -> Optional[TargetConfig]:
    if not isinstance(data, dict):
        problems.append(Problem(path, f"expected a table, got {describe(data)}"))
        return None
    kinds = probes.kinds()
    kind = data.get("kind")
    if kind not in kinds:
        if "kind" in data:
            problems.append(Problem(f"{path}.kind", f"must be one of {', '.join(kinds)} (got {describe(kind)})"))
        else:
            problems.append(Problem(f"{path}.kind", f"missing; this key is required ({', '.join(kinds)})"))
        return None
    probe = probes.get(kind)
    option_keys = tuple(field_names(probe.options))
    common_keys = tuple(field_names(TargetConfig))
    before = len(problems)
    common = build(TargetConfig, data, path, problems, ignore=option_keys, extra_allowed=option_keys)
    options = build(
        probe.options,
        {k: v for k, v in data.items() if k in option_keys},
        path,
        problems,
        extra_allowed=common_keys,
    )
    if len(problems) > before or common is None:
        return None
    return dataclasses.replace(
        common,
        interval=common.interval or probe.interval_s,
        timeout=common.timeout or probe.timeout_s,
        options=options,
    )


def cross_checks(cfg: Config, problems: list[Problem]) -> None:
    problems.extend(cfg.mqtt.problems())
    seen: dict[str, int] = {}
    for i, t in enumerate(cfg.targets):
        path = f"targets[{i}]"
        if t.label in seen:
            problems.append(Problem(f"{path}.name", f"'{t.label}' is already used by targets[{seen[t.label]}]"))
        seen[t.label] = i
        if t.timeout >= t.interval:
            problems.append(
                Problem(f"{path}.timeout", f"must be shorter than interval ({t.interval:g} s) (got {t.timeout:g})")
            )


def parse_config(data: dict[str, Any], source: str = "", digest: str = "") -> Config:
    """Build a Config from parsed TOML; raises ConfigError listing every problem."""
    problems: list[Problem] = []
    data = with_profile(data)
    targets_data = data.get("targets", list(DEFAULT_TARGETS))
    cfg = build(Config, data, "", problems, ignore=("targets",))
    targets: list[TargetConfig] = []
    if not isinstance(targets_data, list):
        problems.append(Problem("targets", f"expected an array of tables ([[targets]]), got {describe(targets_data)}"))
    else:
        for i, item in enumerate(targets_data):
            t = build_target(item, f"targets[{i}]", problems)
            if t is not None:
                targets.append(t)
    if cfg is not None and not problems:
        cfg = dataclasses.replace(cfg, targets=targets, source=source, digest=digest)
        cross_checks(cfg, problems)
    if problems or cfg is None:
        raise ConfigError(problems, source)
    return cfg


def default_path() -> Optional[str]:
    path = os.environ.get(ENV_PATH) or DEFAULT_PATH
    return path if os.path.exists(path) else None


def load_config(path: Optional[str] = None) -> Config:
    """Load `path`, or the default file when it exists, or the embedded defaults."""
    path = path or default_path()
    if path is None:
        return parse_config({}, source="(built-in defaults)")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read config: {exc.strerror}")], path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([Problem("", "not UTF-8 text")], path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem("", f"invalid TOML: {exc}")], path) from None
    return parse_config(data, source=path, digest=hashlib.sha256(raw).hexdigest()[:12])
