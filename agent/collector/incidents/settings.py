"""`[incidents]` and `[notify]` in collector.toml: the rules' thresholds, groups, channels.

Built by `agent.schema` like every other section, so each problem is reported with its
key path and all of them at once. What one key cannot check alone (an `open_after`
larger than its `window`, a rule sending to a channel that is not configured) is checked
by `check_incidents` and `check_notify`, which the collector's config applies to the
whole section. Planned work is the collector's one calendar, `[[maintenance]]`
(`agent.collector.maintenance`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Optional

from agent.schema import setting

CRITICAL, WARNING = "critical", "warning"
SEVERITIES = (CRITICAL, WARNING)
CHANNELS = ("webhook", "telegram", "email", "whatsapp")
LANGS = ("id", "en")
DEFAULT_LATENCY_MS = {
    # What is slow depends on the link: 600 ms is normal on GEO and terrible on fiber.
    "fiber": 150.0,
    "cellular": 300.0,
    "satellite-leo": 200.0,
    "satellite-geo": 1000.0,
    "other": 400.0,
    "unknown": 400.0,
}


def check_zone(value: str) -> Optional[str]:
    try:
        load_zone(value)
    except (ValueError, KeyError, OSError):
        return 'not a known time zone; e.g. "Asia/Jakarta" (WIB), "Asia/Makassar" (WITA)'
    return None


def load_zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    if not name or ("/" not in name and name != "UTC"):
        raise ValueError(name)
    return ZoneInfo(name)


def check_recipients(value: list[str]) -> Optional[str]:
    problems = []
    for item in value:
        channel, _, address = item.partition(":")
        if channel not in CHANNELS:
            problems.append(f"'{item[:40]}': start with one of {', '.join(CHANNELS)}, e.g. \"telegram:-1001234\"")
        elif channel == "webhook" and address:
            problems.append('write just "webhook": its URL is [notify.webhook].url')
        elif channel != "webhook" and not address:
            problems.append(f"'{item[:40]}': needs an address after '{channel}:'")
        elif channel == "email" and "@" not in address:
            problems.append(f"'{item[:40]}': not an e-mail address")
    return "; ".join(problems) or None


def check_template(value: str) -> Optional[str]:
    if "{text}" not in value:
        return "the body template needs {text} (and usually {to})"
    return None


@dataclasses.dataclass(frozen=True)
class GroupSettings:
    name: str = setting(help='e.g. "hub-sekayu" or "pop-palembang": nodes behind one shared upstream')
    kecamatan: list[str] = setting(factory=list, help="every node of these kecamatan")
    desa: list[str] = setting(factory=list, help="every node of these desa")
    nodes: list[str] = setting(factory=list, help="these node ids")


@dataclasses.dataclass(frozen=True)
class IncidentSettings:
    enabled: bool = setting(True, help="run the incident engine beside `netprobe collect`, as its child process")
    interval_s: float = setting(60.0, above=0.0, help="one interval of the rules: the path probes' usual interval")
    window: int = setting(5, min=1, max=1000, help="M: the last intervals the opening rule looks at")
    open_after: int = setting(3, min=1, max=1000, help="N: bad intervals among the last M that open an incident")
    close_after: int = setting(5, min=1, max=1000, help="K: good intervals in a row that close it")
    gap_s: float = setting(240.0, above=0.0, help="no Reading taken for longer than this is dark (power or agent)")
    hold_s: float = setting(120.0, min=0.0, help="wait before telling of a desa, so an upstream incident can form")
    cause_settle_s: float = setting(
        600.0, min=0.0, help="a revised cause is told once it held this long (resolving first says it instead)"
    )
    evaluate_every_s: float = setting(30.0, above=0.0, help="seconds between evaluation passes")
    lookback_s: float = setting(3600.0, above=0.0, help="readings re-read when the engine starts")
    timezone: str = setting("Asia/Jakarta", check=check_zone, help="for times in messages")
    loss_pct: float = setting(10.0, above=0.0, max=100.0, help="degraded: mean loss to public targets at least this")
    latency_ms: dict[str, float] = setting(
        factory=lambda: dict(DEFAULT_LATENCY_MS), help="degraded: p50 RTT above this, per link type"
    )
    throughput_share: float = setting(
        0.5, above=0.0, max=1.0, help="degraded: download under this share of site tag contract_mbps"
    )
    throughput_tests: int = setting(2, min=1, max=20, help="...in this many tests in a row")
    clock_unsynced_s: float = setting(3600.0, above=0.0, help="degraded: clock unsynced for this long")
    upstream_min_nodes: int = setting(2, min=2, help="an upstream incident needs this many nodes dark together")
    upstream_min_share: float = setting(0.5, above=0.0, max=1.0, help="...and this share of its group")
    upstream_together_s: float = setting(300.0, min=0.0, help="dark within this many seconds of each other")
    infer_upstream: bool = setting(True, help="also group nodes that share an ISP hop (link Readings' isp_hop)")
    maintenance_overrun_s: float = setting(
        3600.0, min=0.0, help="still dark this long after a window ended: tell it once (0: never)"
    )
    groups: list[GroupSettings] = setting(factory=list, help="nodes behind one shared upstream")

    def latency_limit(self, link_type: str) -> float:
        return self.latency_ms.get(link_type, self.latency_ms.get("unknown", DEFAULT_LATENCY_MS["unknown"]))


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    url: str = setting("", help='POST JSON here; "" = no webhook')
    secret_file: str = setting("", help="HMAC-SHA256 key file: signs the body (X-Netprobe-Signature)")
    secret_env: str = setting("", help="or the environment variable holding it, e.g. NETPROBE_WEBHOOK_SECRET")


@dataclasses.dataclass(frozen=True)
class TelegramSettings:
    base_url: str = setting("https://api.telegram.org", help="the Bot API's address")
    token_file: str = setting("", help="file holding the bot token")
    token_env: str = setting("", help="or the environment variable holding it, e.g. NETPROBE_TELEGRAM_TOKEN")


@dataclasses.dataclass(frozen=True)
class EmailSettings:
    host: str = setting("", help='SMTP server; "" = no e-mail')
    port: int = setting(587, min=1, max=65535)
    starttls: bool = setting(True, help="upgrade with STARTTLS before logging in (verified)")
    ca_file: str = setting("", help='CA bundle for STARTTLS; "" = the system store')
    username: str = setting("")
    password_file: str = setting("", help="file holding the SMTP password")
    password_env: str = setting("", help="or the environment variable holding it")
    from_addr: str = setting("netprobe@localhost", help="the From: address")


@dataclasses.dataclass(frozen=True)
class WhatsappSettings:
    url: str = setting("", help='the WhatsApp gateway\'s HTTP endpoint; "" = none')
    body: str = setting(
        '{"to": "{to}", "text": "{text}"}', check=check_template, help="JSON template; {to} and {text} are escaped"
    )
    token_file: str = setting("", help="file holding the gateway's token")
    token_env: str = setting("", help="or the environment variable holding it")
    token_header: str = setting("Authorization", help="the header that carries it")
    token_prefix: str = setting("Bearer ", help="written before the token in that header")


@dataclasses.dataclass(frozen=True)
class RuleSettings:
    name: str = setting("", help="for the logs")
    kecamatan: list[str] = setting(factory=list, help="only incidents here; [] = every kecamatan")
    severity: list[str] = setting(factory=lambda: list(SEVERITIES), choices=SEVERITIES)
    causes: list[str] = setting(factory=list, help="only these causes (power, uplink, ...); [] = all")
    to: list[str] = setting(
        factory=list, check=check_recipients, help='"webhook", "telegram:CHAT", "email:ADDR", "whatsapp:NUMBER"'
    )
    lang: str = setting("id", choices=LANGS, help="language of the messages")


@dataclasses.dataclass(frozen=True)
class NotifySettings:
    timeout_s: float = setting(10.0, above=0.0, help="per delivery attempt")
    retry_min_s: float = setting(30.0, above=0.0, help="first retry after a failed delivery; doubles")
    retry_max_s: float = setting(1800.0, above=0.0, help="longest wait between retries")
    give_up_s: float = setting(172800.0, above=0.0, help="a message not delivered after this is dropped (logged)")
    send_every_s: float = setting(5.0, above=0.0, help="how often the outbox is looked at")
    webhook: WebhookSettings = setting(factory=WebhookSettings)
    telegram: TelegramSettings = setting(factory=TelegramSettings)
    email: EmailSettings = setting(factory=EmailSettings)
    whatsapp: WhatsappSettings = setting(factory=WhatsappSettings)
    rules: list[RuleSettings] = setting(factory=list, help="who is told what")

    def configured(self) -> set[str]:
        """The channels that have somewhere to send to."""
        found = set()
        if self.webhook.url:
            found.add("webhook")
        if self.telegram.token_file or self.telegram.token_env:
            found.add("telegram")
        if self.email.host:
            found.add("email")
        if self.whatsapp.url:
            found.add("whatsapp")
        return found


def check_incidents(s: IncidentSettings) -> Optional[str]:
    """What the keys cannot check one by one; all problems, joined."""
    problems = []
    if s.open_after > s.window:
        problems.append(f"open_after ({s.open_after}) must be at most window ({s.window})")
    names = [g.name for g in s.groups]
    for i, g in enumerate(s.groups):
        if not g.name:
            problems.append(f"groups[{i}].name: needed")
        elif names.count(g.name) > 1:
            problems.append(f"groups[{i}].name: '{g.name}' is used twice")
        if not (g.kecamatan or g.desa or g.nodes):
            problems.append(f"groups[{i}]: list its kecamatan, desa or nodes")
    return "; ".join(problems) or None


def check_notify(s: NotifySettings) -> Optional[str]:
    problems = []
    if s.retry_max_s < s.retry_min_s:
        problems.append(f"retry_max_s must be at least retry_min_s ({s.retry_min_s:g})")
    ready = s.configured()
    for i, rule in enumerate(s.rules):
        if not rule.to:
            problems.append(f"rules[{i}].to: name at least one recipient")
        for item in rule.to:
            channel = item.partition(":")[0]
            if channel in CHANNELS and channel not in ready:
                problems.append(f"rules[{i}].to: '{item[:40]}' but [notify.{channel}] is not configured")
    return "; ".join(problems) or None
