"""A batch: many Readings in one MQTT message, compressed. The wire format both ends share.

On a metered VSAT or cellular plan, one publish per Reading costs ~660 bytes of
MQTT, TCP and IP for ~550 bytes of JSON; the Readings of a few minutes in one
zlib stream cost ~75 bytes each. Published on `.../{node}/batch` (the topic's
measurement level is `batch`), so nothing that reads single Readings sees one.

    payload = b"NPB" version(1 byte) zlib(JSON)          content marker, version, then the stream
    JSON    = {"c": {common keys}, "r": [reading, ...]}   each reading = common keys + its own

`c` holds the Reading keys every Reading of the batch shares (schema, node,
site, boot, clock_synced), written once; a reading is `{**c, **item}`, the
schema-1 Reading of docs/reading.md, judged on its own by the same contract
(`agent.reading.contract`) as a single one. The stream uses a preset
dictionary of typical Reading JSON (`DICTIONARY`, fixed for version 1), so a
batch of three Readings compresses nearly as well as one of forty.

Limits: a batch is at most `MAX_WIRE_BYTES` on the wire (the collector's
payload limit), decompresses to at most `MAX_RAW_BYTES` (decoding stops there:
a zip bomb costs the collector nothing) and holds at most `MAX_READINGS`.
`decode` never raises on hostile bytes except with `BatchError`; a reading with
a number or text the stores cannot hold is reported by `item_problem`, so one
bad Reading is rejected and the others of its batch are kept.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from agent.reading.contract import INT_MAX, INT_MIN

MAGIC = b"NPB"
VERSION = 1
HEADER = MAGIC + bytes([VERSION])
MEASUREMENT = "batch"  # the topic's measurement level
MAX_WIRE_BYTES = 64 * 1024  # the collector's default payload limit; the broker allows 256 KiB
MAX_RAW_BYTES = 256 * 1024  # decompressed JSON, at most
MAX_READINGS = 1000
COMMON_KEYS = ("schema", "node", "site", "boot", "clock_synced")

# Rejection kinds (the same words as agent.reading.validate's).
OVERSIZED, MALFORMED, UNKNOWN_SCHEMA, INVALID = "oversized", "malformed", "unknown_schema", "invalid"


def _dictionary() -> bytes:
    """Version 1's preset dictionary: typical Reading JSON, the most frequent kinds last (nearest).

    Frozen: a change here is a new VERSION, or batches written by older agents stop decoding.
    """
    site = {"kabupaten": "Musi Banyuasin", "kecamatan": "Sekayu", "desa": "Balai Agung", "lat": -2.88, "lon": 103.84}
    common = {"schema": 1, "node": "muba-sekayu-balai-agung-01", "site": site, "boot": "", "clock_synced": True}
    kinds: list[tuple[str, str, dict[str, Any]]] = [
        (
            "usage",
            "self",
            {
                "month_mb": 1.5,
                "day_mb": 0.1,
                "budget_mb": 10.0,
                "plan_mb": 1000.0,
                "level": "full",
                "profile": "metered",
                "period": "2026-01-01",
                "mb_report": 0.5,
                "mb_icmp": 0.5,
            },
        ),
        (
            "link",
            "1.1.1.1",
            {
                "link_type": "satellite-geo",
                "confidence": 0.97,
                "access": "",
                "backhaul": "",
                "access_ms": 1.2,
                "isp_min_ms": 601.5,
                "isp_hop": "",
                "idle_samples": 90,
                "samples": 90,
                "evidence": "geo_floor:min_ms=601.5,n=90,to=isp_hop",
                "iface": "eth0",
                "gateway": "192.168.1.1",
                "changed": False,
                "change": "",
                "previous": "fiber",
                "uplink": "eth0 via 192.168.1.1 hop ",
                "previous_uplink": "",
                "backup": False,
            },
        ),
        (
            "throughput",
            "http://",
            {
                "download_mbps": 9.5,
                "upload_mbps": 1.9,
                "bytes_used": 20000000,
                "duration_s": 20.0,
                "streams": 4,
                "backend": "http",
                "server": "http://",
                "stop_reason": "stable",
                "rtt_idle_ms": 600.0,
                "rtt_loaded_ms": 900.0,
                "bufferbloat_ms": 300.0,
                "bufferbloat_grade": "C",
                "rtt_method": "icmp",
                "budget_day_mb": 20.0,
                "budget_month_mb": 100.0,
            },
        ),
        (
            "host",
            "self",
            {
                "cpu_pct": 3.2,
                "load_1m": 0.05,
                "load_5m": 0.1,
                "load_15m": 0.1,
                "mem_total_mb": 3794.3,
                "mem_avail_mb": 3100.2,
                "mem_used_pct": 18.3,
                "disk_used_pct": 21.4,
                "disk_free_mb": 22000.1,
                "temp_c": 51.1,
                "uptime_s": 86400,
                "agent_rss_mb": 40.1,
                "agent_cpu_s": 12.34,
                "if_eth0_rx_bytes": 1000,
                "if_eth0_tx_bytes": 1000,
                "if_eth0_rx_packets": 10,
                "if_eth0_tx_packets": 10,
                "if_eth0_rx_errors": 0,
                "if_eth0_tx_errors": 0,
                "if_eth0_rx_dropped": 0,
                "if_eth0_tx_dropped": 0,
                "if_eth0_up": True,
                "if_eth0_speed_mbps": 1000,
                "if_wlan0_rx_bytes": 1000,
                "if_wlan0_tx_bytes": 1000,
            },
        ),
        (
            "http",
            "https://www.google.com/generate_204",
            {
                "dns_ms": 20.1,
                "connect_ms": 601.2,
                "tls_ms": 1203.4,
                "cert_days_left": 60.5,
                "ttfb_ms": 602.3,
                "total_ms": 2500.1,
                "status": 204,
                "bytes": 0,
                "tls_resumed": True,
                "wire_bytes": 1500,
            },
        ),
        (
            "dns",
            "google.com",
            {"query_ms": 601.2, "rcode": "NOERROR", "answers": 1, "record": "A", "server": "8.8.8.8", "tcp": False},
        ),
        (
            "tcp",
            "1.1.1.1:443",
            {
                "sent": 3,
                "received": 3,
                "loss_pct": 0.0,
                "connect_min_ms": 600.1,
                "connect_avg_ms": 601.2,
                "connect_max_ms": 603.4,
                "connect_mdev_ms": 1.2,
                "connect_p50_ms": 601.1,
                "connect_p90_ms": 603.1,
                "connect_p99_ms": 603.4,
                "jitter_ms": 1.5,
                "port": 443,
            },
        ),
        (
            "icmp",
            "gateway",
            {
                "sent": 5,
                "received": 5,
                "loss_pct": 0.0,
                "loss_burst_max": 1,
                "rtt_min_ms": 0.5,
                "rtt_avg_ms": 0.6,
                "rtt_max_ms": 0.8,
                "rtt_mdev_ms": 0.1,
                "rtt_p50_ms": 0.6,
                "rtt_p90_ms": 0.7,
                "rtt_p99_ms": 0.8,
                "jitter_ms": 0.1,
                "duplicates": 0,
                "late": 0,
                "socket": "dgram",
                "rx_time": "kernel",
            },
        ),
    ]
    items = []
    for measurement, target, fields in kinds:
        items.append({"id": "0123456789abcdef0123456789abcdef", "seq": 1000, "measurement": measurement,
                      "target": target, "ts": "2026-01-01T00:00:00.000Z", "mono_s": 1000.0, "duration_ms": 1000.0,
                      "ok": True, "error": None, "fields": fields})  # fmt: skip
    failed = {"ok": False, "error": {"code": "timeout", "message": "no reply from 8.8.8.8 to 5 echo requests"}}
    text = json.dumps({"c": common, "r": [{**items[-1], **failed}, *items]}, separators=(",", ":"))
    return text.encode("utf-8")


DICTIONARY = _dictionary()


class BatchError(ValueError):
    """The message as a whole is not a batch this collector reads; `kind` is a rejection kind."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind = kind
        self.why = why


def is_batch(payload: bytes) -> bool:
    return payload[: len(MAGIC)] == MAGIC


def body(readings: Sequence[Mapping[str, Any]]) -> bytes:
    """The uncompressed JSON of a batch: the keys every reading shares written once."""
    common: dict[str, Any] = {}
    if readings:
        first = readings[0]
        for key in COMMON_KEYS:
            if key in first and all(key in r and r[key] == first[key] for r in readings):
                common[key] = first[key]
    items = [{k: v for k, v in r.items() if k not in common} for r in readings]
    return json.dumps({"c": common, "r": items}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def compress(raw: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
    return HEADER + packer.compress(raw) + packer.flush()


def encode(readings: Sequence[Mapping[str, Any]]) -> bytes:
    """Readings (as their JSON dicts) in one batch payload."""
    return compress(body(readings))


def inflate(payload: bytes, max_wire: int = MAX_WIRE_BYTES, max_raw: int = MAX_RAW_BYTES) -> bytes:
    """The batch's JSON bytes; BatchError for anything that is not a whole, bounded version-1 stream."""
    if len(payload) > max_wire:
        raise BatchError(OVERSIZED, f"{len(payload)} bytes > {max_wire}")
    if not is_batch(payload) or len(payload) < len(HEADER):
        raise BatchError(MALFORMED, "not a netprobe batch (no NPB marker)")
    version = payload[len(MAGIC)]
    if version != VERSION:
        raise BatchError(UNKNOWN_SCHEMA, f"batch version {version} (this collector reads {VERSION})")
    unpacker = zlib.decompressobj(15, DICTIONARY)
    try:
        raw = unpacker.decompress(payload[len(HEADER) :], max_raw + 1)
    except zlib.error as exc:
        raise BatchError(MALFORMED, f"not a zlib stream: {exc}") from None
    if len(raw) > max_raw or unpacker.unconsumed_tail:
        raise BatchError(OVERSIZED, f"decompresses to more than {max_raw} bytes")
    if not unpacker.eof:
        raise BatchError(MALFORMED, "the zlib stream is cut short")
    if unpacker.unused_data:
        raise BatchError(MALFORMED, "bytes after the end of the zlib stream")
    return raw


class _Bad:
    """A JSON value the stores cannot hold (NaN, Infinity): kept to reject its reading alone."""

    def __init__(self, text: str) -> None:
        self.text = text


def _float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _Bad(text)


def _int(text: str) -> Any:
    if len(text.lstrip("-")) > 19:
        return _Bad(text[:24])
    value = int(text)
    return value if INT_MIN <= value <= INT_MAX else _Bad(text)


def decode(
    payload: bytes, max_wire: int = MAX_WIRE_BYTES, max_raw: int = MAX_RAW_BYTES, max_readings: int = MAX_READINGS
) -> list[Any]:
    """The readings of a batch, each `{**common, **item}` (an item that is not an object is returned
    as it is, for the caller to reject). BatchError when the message as a whole is unusable."""
    raw = inflate(payload, max_wire, max_raw)
    try:
        data = json.loads(raw, parse_constant=_Bad, parse_float=_float, parse_int=_int)
    except (ValueError, RecursionError) as exc:
        raise BatchError(MALFORMED, f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("r"), list):
        raise BatchError(MALFORMED, 'not a batch object {"c": {...}, "r": [...]}')
    common = data.get("c", {})
    if not isinstance(common, dict):
        raise BatchError(MALFORMED, "'c' is not an object")
    problem = item_problem(common)
    if problem:
        raise BatchError(INVALID, f"the common keys: {problem}")
    items = data["r"]
    if len(items) > max_readings:
        raise BatchError(OVERSIZED, f"{len(items)} readings > {max_readings}")
    return [{**common, **item} if isinstance(item, dict) else item for item in items]


def item_problem(value: Any) -> Optional[str]:
    """Why one decoded reading holds a value the stores cannot (as `contract.loads` would refuse), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Bad):
            return f"the number {item.text} is out of range"
        if isinstance(item, str):
            if "\x00" in item:
                return "text with NUL"
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return "text that is not valid Unicode"
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def wire_size(topic: str, payload: bytes) -> int:
    """Bytes of the MQTT PUBLISH (QoS 1) carrying `payload` on `topic`, before TCP/IP."""
    remaining = 2 + len(topic.encode()) + 2 + len(payload)
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16384 else 3 if remaining < 2097152 else 4
    return 1 + length_bytes + remaining
