"""Where messages go: the broker URL and the topic template. Pure, no paho import.

Topics are built from a template; the default is
`netprobe/{kecamatan}/{desa}/{node}/{measurement}`. Placeholders:

- `{kabupaten}`, `{kecamatan}`, `{desa}`: from `[site]`, slugified;
- `{node}`: the node id (already topic-safe: a-z 0-9 . _ -);
- `{measurement}`: the probe kind (icmp, tcp, dns, http, host, throughput, ...),
  or `status` for the node's retained online/offline status.

A slug is the value in lower case with every run of characters outside a-z0-9
turned into one '-', trimmed of '-' at both ends: "Balai Agung" -> "balai-agung".
An empty value becomes "unknown", so a topic never has an empty level.

The collector's acknowledgements go to `netprobe/ack/{node}` (`ack_topic`): three
levels, so the collector's own `netprobe/+/+/+/+` never matches them, and outside
`netprobe/+/+/{node}/#`, so a node cannot forge one (docs/delivery.md).
"""

from __future__ import annotations

import dataclasses
import re
import string
import urllib.parse
from typing import Any, Optional

DEFAULT_TOPIC = "netprobe/{kecamatan}/{desa}/{node}/{measurement}"
PLACEHOLDERS = ("kabupaten", "kecamatan", "desa", "node", "measurement")
STATUS = "status"
ACK = "ack"
DEFAULT_ACK_TOPIC = "netprobe/ack/{node}"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# A node id goes into topics and file names: lower case, no spaces, no MQTT wildcards.
NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def check_node_id(value: str) -> Optional[str]:
    """Why `value` cannot be a node id, or None (empty is left to the caller)."""
    if value and not NODE_ID_RE.match(value):
        return "use 1-64 of a-z 0-9 . _ - (lower case, no spaces; it goes into MQTT topics)"
    return None


def slug(value: str) -> str:
    return _NOT_SLUG.sub("-", value.lower()).strip("-") or "unknown"


def check_template(template: str) -> Optional[str]:
    """Why `template` is unusable, or None."""
    try:
        names = [name for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return f"is not a valid template: {exc}"
    unknown = [n for n in names if n not in PLACEHOLDERS]
    if unknown:
        return f"unknown placeholder {{{unknown[0]}}}; use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
    if "measurement" not in names:
        return "must contain {measurement} (the status topic is the template with measurement 'status')"
    if "#" in template or "+" in template:
        return "must not contain the MQTT wildcards + or #"
    if template.startswith("/") or "//" in template:
        return "must not have empty topic levels"
    return None


def topic(template: str, node: str, site: dict[str, Any], measurement: str) -> str:
    values = {k: slug(str(site.get(k, ""))) for k in ("kabupaten", "kecamatan", "desa")}
    return template.format(node=node, measurement=measurement, **values)


def parse_topic(topic: str, prefix: str = "netprobe") -> Optional[tuple[str, str]]:
    """`prefix/{kecamatan}/{desa}/{node}/{measurement}` -> (node, measurement); None for any other shape.

    The collector reads the default layout only: a custom `mqtt.topic` template is for
    consumers that are not ours.
    """
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix or not all(parts):
        return None
    return parts[3], parts[4]


def status_topic(template: str, node: str, site: dict[str, Any]) -> str:
    return topic(template, node, site, STATUS)


def ack_topic(node: str, template: str = DEFAULT_ACK_TOPIC) -> str:
    """Where the collector says which of `node`'s Readings it has stored."""
    return template.format(node=node)


def collector_ack_topic(prefix: str, node: str) -> str:
    """The ack topic of `node` under the collector's `broker.topic_prefix`."""
    return f"{prefix}/{ACK}/{node}"


def parse_ack_topic(topic: str, prefix: str = "netprobe") -> Optional[str]:
    """`prefix/ack/{node}` -> node; None for any other shape."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != prefix or parts[1] != ACK or not NODE_ID_RE.match(parts[2]):
        return None
    return parts[2]


def check_ack_template(template: str) -> Optional[str]:
    """Why `template` cannot name a node's ack topic, or None."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return f"is not a valid template: {exc}"
    if names != ["node"]:
        return "must contain {node} once and no other placeholder"
    if "#" in template or "+" in template or template.startswith("/") or "//" in template:
        return "must not contain MQTT wildcards or empty levels"
    return None


@dataclasses.dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """mqtt://host[:port] or mqtts://host[:port]; raises ValueError with a readable reason."""
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError("must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("has no host name")
        if parts.username or parts.password:
            raise ValueError("must not contain a user or password (use mqtt.username and mqtt.password_file)")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError("must not have a path or query")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError("has an invalid port") from None
        return cls(parts.hostname, port, parts.scheme == "mqtts")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def check_broker(url: str) -> Optional[str]:
    if not url:
        return None
    try:
        BrokerUrl.parse(url)
    except ValueError as exc:
        return str(exc)
    return None
