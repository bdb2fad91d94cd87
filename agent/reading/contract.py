"""The Reading contract: the rules every Reading meets, in one module both ends use.

The collector (`validate.check_message`) rejects a message that breaks them; the
agent (`conform`, in the runner before a Reading is spooled) makes every Reading
meet them, so what leaves a node is what the collector stores. Until both used
the same rules, a node could spool and send Readings the collector threw away
(a long `hops`, an uncapped error message), and a collector could accept values
its own database then refused, which stopped it on every re-delivery.

The rules bound each value to what both stores hold (finite numbers, 64-bit
integers, UTF-8 text without NUL) and to what is physically plausible (lat/lon
on the globe; durations, round trips, rates and byte counts not negative and
below generous maxima). Lengths are in characters.

What `conform` does where a Reading breaks a rule:

- text over its limit is cut to the limit, ending in "…"; NUL and characters
  UTF-8 cannot encode become U+FFFD;
- a field number that is not finite, does not fit 64 bits or is outside its
  field's range becomes null; a field value of another type becomes its text;
- fields beyond 64, and fields whose name is not text of at most 64
  characters, are dropped and counted in the field `fields_dropped`;
- site values are cut or dropped the same way (lat and lon go together);
- a Reading that still breaks the contract (e.g. over 64 KiB of JSON) becomes a
  failed Reading with code `internal` whose message says why: never lost silently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any, Optional

from agent.reading.model import INTERNAL, SCHEMA, Reading
from agent.reading.topics import NODE_ID_RE

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_TEXT = 512  # field text and error messages
MAX_TARGET = 256
MAX_PLACE = 128  # kabupaten, kecamatan, desa
MAX_SITE_TEXT = 256  # other site values (the free tags)
MAX_KEY = 64  # field names, site keys, error codes, boot ids
MAX_FIELDS = 64
MAX_SITE_KEYS = 64
SITE_CORE = ("kabupaten", "kecamatan", "desa", "lat", "lon")
MAX_TAGS = MAX_SITE_KEYS - len(SITE_CORE)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # BIGINT on PostgreSQL, INTEGER on SQLite
MAX_DURATION_MS = 7 * 86400 * 1000.0  # no probe runs for a week
MAX_MONO_S = 100 * 365.25 * 86400  # a century of uptime
MAX_RTT_MS = 3_600_000.0  # an hour: beyond any queue
MAX_MBPS = 1_000_000.0  # 1 Tbit/s
MAX_BYTES = 10**13  # 10 TB in one test
MAX_FUTURE_S = 600.0  # a synced Reading may be this far ahead of the collector's clock
ELLIPSIS = "…"
REPLACEMENT = "\ufffd"
DROPPED = "fields_dropped"

ID_RE = re.compile(r"^[0-9A-Za-z-]{8,64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LAT, LON = (-90.0, 90.0), (-180.0, 180.0)

# Fields the collector reads, and the families it knows, with their plausible range.
FIELD_RANGES: dict[str, tuple[float, float]] = {
    "loss_pct": (0.0, 100.0),
    "bytes_used": (0.0, float(MAX_BYTES)),
    "confidence": (0.0, 1.0),
    "jitter_ms": (0.0, MAX_RTT_MS),
}


def field_range(name: str) -> Optional[tuple[float, float]]:
    """The range a numeric field must lie in, or None when any finite number will do."""
    if name in FIELD_RANGES:
        return FIELD_RANGES[name]
    if name.endswith("_ms") and name.startswith(("rtt_", "connect_")):
        return (0.0, MAX_RTT_MS)
    if name.endswith("_mbps"):
        return (0.0, MAX_MBPS)
    return None


# -- values -----------------------------------------------------------------


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number_problem(value: Any, bounds: Optional[tuple[float, float]] = None) -> Optional[str]:
    """Why `value` is not a number the stores hold (and within `bounds`), or None."""
    if not is_number(value):
        return "is not a number"
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            return "does not fit 64 bits"
    elif not math.isfinite(value):
        return "is not finite"
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        return f"is outside {bounds[0]:g}..{bounds[1]:g}"
    return None


def text_problem(value: Any, limit: int) -> Optional[str]:
    """Why `value` is not text the stores hold of at most `limit` characters, or None."""
    if not isinstance(value, str):
        return "is not text"
    if len(value) > limit:
        return f"is longer than {limit} characters"
    if "\x00" in value:
        return "contains NUL"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode"
    return None


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def clean(value: Any, limit: int) -> str:
    """Text the stores hold: NUL and unencodable characters replaced, then clipped."""
    text = value if isinstance(value, str) else _as_text(value)
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, e.g. from a file name decoded with surrogateescape
            text = "".join(REPLACEMENT if "\ud800" <= c <= "\udfff" else c for c in text)
    return clip(text, limit)


def _as_text(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not cost the Reading
        return f"<{type(value).__name__}>"


def printable(value: Any, limit: int = MAX_TEXT) -> str:
    """Text safe for a terminal or a log line: control characters shown as escapes, clipped.

    Node-supplied strings (desa, link type, reasons) reach operators' terminals; an
    escape sequence in them must be shown, never obeyed.
    """
    text = value if isinstance(value, str) else _as_text(value)
    if text.isprintable():
        return clip(text, limit)
    return clip("".join(c if c.isprintable() else repr(c)[1:-1] for c in text), limit)


# -- JSON -------------------------------------------------------------------


class Unrepresentable(ValueError):
    """JSON that parses, but with a number or text the stores cannot hold."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Unrepresentable(f"the number {text[:24]} is out of range")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise Unrepresentable(f"the number {text[:24]}... does not fit 64 bits")
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise Unrepresentable(f"the number {text} does not fit 64 bits")
    return value


def loads(payload: bytes) -> Any:
    """Strict JSON: no NaN or Infinity, numbers the stores hold, text without NUL.

    Raises Unrepresentable for numbers or text the stores cannot hold, ValueError
    (or RecursionError) for anything that is not JSON.
    """
    data = json.loads(payload, parse_constant=_no_constant, parse_float=_float, parse_int=_int)
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or (not item.isascii() and text_problem(item, len(item))):
                raise Unrepresentable("text with NUL or invalid Unicode")
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return data


# -- the checks (the collector rejects what they name) -----------------------


def parse_ts(text: Any) -> Optional[float]:
    """Epoch seconds of an ISO 8601 time, or None when it is not one the stores can date."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    try:
        value = stamp.timestamp()
        dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)  # the store files it by month
    except (OverflowError, ValueError, OSError):
        return None
    return value


def site_problem(site: Any) -> Optional[str]:
    if not isinstance(site, dict) or len(site) > MAX_SITE_KEYS:
        return f"site must be an object of at most {MAX_SITE_KEYS} keys"
    for key in ("kecamatan", "desa"):
        if text_problem(site.get(key), MAX_PLACE):
            return f"site.{key} must be text of at most {MAX_PLACE} characters"
    if "kabupaten" in site and text_problem(site["kabupaten"], MAX_PLACE):
        return f"site.kabupaten must be text of at most {MAX_PLACE} characters"
    for key, bounds in (("lat", LAT), ("lon", LON)):
        if site.get(key) is not None and number_problem(site[key], bounds):
            return f"site.{key} {number_problem(site[key], bounds)}"
    for key, value in site.items():
        if text_problem(key, MAX_KEY):
            return f"site keys must be text of at most {MAX_KEY} characters"
        if value is None or isinstance(value, bool):
            continue
        problem = number_problem(value) if is_number(value) else text_problem(value, MAX_SITE_TEXT)
        if problem:
            return f"site.{key} {problem}"
    return None


def field_problem(name: str, value: Any) -> Optional[str]:
    if value is None or isinstance(value, bool):
        return None
    if is_number(value):
        return number_problem(value, field_range(name))
    if isinstance(value, str):
        return text_problem(value, MAX_TEXT)
    return "must be a number, boolean, text or null"


def fields_problem(fields: Any) -> Optional[str]:
    if not isinstance(fields, dict) or len(fields) > MAX_FIELDS:
        return f"fields must be an object of at most {MAX_FIELDS} keys"
    for name, value in fields.items():
        if text_problem(name, MAX_KEY):
            return f"field names must be text of at most {MAX_KEY} characters"
        problem = field_problem(name, value)
        if problem:
            return f"fields.{name} {problem}"
    return None


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


CHECKS: tuple[tuple[str, Any], ...] = (
    ("id", lambda v: isinstance(v, str) and ID_RE.match(v)),
    ("node", lambda v: isinstance(v, str) and NODE_ID_RE.match(v)),
    ("seq", lambda v: v is None or _int_in(v, 0, INT_MAX)),
    ("measurement", lambda v: isinstance(v, str) and NAME_RE.match(v)),
    ("target", lambda v: not text_problem(v, MAX_TARGET) and v),
    ("clock_synced", lambda v: isinstance(v, bool)),
    ("mono_s", lambda v: v is None or not number_problem(v, (0.0, MAX_MONO_S))),
    ("boot", lambda v: v is None or not text_problem(v, MAX_KEY)),
    ("duration_ms", lambda v: not number_problem(v, (0.0, MAX_DURATION_MS))),
    ("ok", lambda v: isinstance(v, bool)),
)


def reading_problem(data: Mapping[str, Any]) -> Optional[str]:
    """The reason a parsed object is not a schema-1 Reading, or None (the time is the collector's to judge)."""
    for key, good in CHECKS:
        if key not in data:
            return f"missing '{key}'"
        if not good(data[key]):
            return f"bad '{key}'"
    if parse_ts(data.get("ts")) is None:
        return "bad 'ts'"
    error = data.get("error")
    if error is not None and not (
        isinstance(error, dict)
        and not text_problem(error.get("code"), MAX_KEY)
        and not text_problem(error.get("message", ""), MAX_TEXT)
    ):
        return "bad 'error'"
    if data["ok"] is False and error is None:
        return "a failed Reading needs an 'error'"
    return site_problem(data.get("site")) or fields_problem(data.get("fields"))


def payload_problem(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Optional[str]:
    """Why these bytes are not a Reading the collector stores, or None (the topic and clock aside)."""
    if len(payload) > max_bytes:
        return f"{len(payload)} bytes of JSON, over the {max_bytes} the collector takes"
    try:
        data = loads(payload)
    except (ValueError, RecursionError) as exc:
        return f"not contract JSON: {exc}"
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return "not a schema-1 Reading"
    return reading_problem(data)


# -- the agent's side: make a Reading meet the rules ---------------------------


def conform_value(name: str, value: Any) -> Any:
    """A field value the contract allows: text cut, impossible numbers null, other types as text."""
    if value is None or isinstance(value, bool):
        return value
    if is_number(value):
        return None if number_problem(value, field_range(name)) else value
    return clean(value, MAX_TEXT)


def conform_fields(fields: Mapping[Any, Any]) -> dict[str, Any]:
    kept: list[tuple[str, Any]] = []
    dropped = 0
    for name, value in fields.items():
        if text_problem(name, MAX_KEY):
            dropped += 1
            continue
        kept.append((name, conform_value(name, value)))
    if len(kept) + (1 if dropped else 0) > MAX_FIELDS:
        dropped += len(kept) - (MAX_FIELDS - 1)
        kept = kept[: MAX_FIELDS - 1]
    out = dict(kept)
    if dropped:
        out[DROPPED] = dropped
    return out


def conform_site(site: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("kabupaten", "kecamatan", "desa"):
        if key in site or key != "kabupaten":
            value = site.get(key)
            out[key] = clean("" if value is None else value, MAX_PLACE)
    lat, lon = site.get("lat"), site.get("lon")
    if not number_problem(lat, LAT) and not number_problem(lon, LON):
        out["lat"], out["lon"] = lat, lon
    for key, value in site.items():
        if key in SITE_CORE or text_problem(key, MAX_KEY) or len(out) >= MAX_SITE_KEYS:
            continue
        if value is None or isinstance(value, bool):
            out[key] = value
        elif is_number(value):
            out[key] = None if number_problem(value) else value
        else:
            out[key] = clean(value, MAX_SITE_TEXT)
    return out


def _bounded(value: Any, low: float, high: float) -> Optional[float]:
    return float(value) if not number_problem(value, (low, high)) else None


def _conformed(r: Reading) -> Reading:
    error = r.error
    if error is not None or not r.ok:
        error = error if isinstance(error, Mapping) else {}
        error = {
            "code": clean(error.get("code") or INTERNAL, MAX_KEY),
            "message": clean(error.get("message") or "the probe failed without saying why", MAX_TEXT),
        }
    seq = r.seq if r.seq is None or _int_in(r.seq, 0, INT_MAX) else None
    duration = _bounded(r.duration_ms, 0.0, MAX_DURATION_MS)
    if duration is None:  # a clock that jumped mid-run: the longest plausible run says least
        duration = MAX_DURATION_MS if is_number(r.duration_ms) and r.duration_ms > 0 else 0.0
    return dataclasses.replace(
        r,
        site=conform_site(r.site if isinstance(r.site, Mapping) else {}),
        target=clean(r.target, MAX_TARGET) or "-",
        mono_s=_bounded(r.mono_s, 0.0, MAX_MONO_S),  # type: ignore[arg-type]
        boot=clean(r.boot or "", MAX_KEY),
        duration_ms=duration,
        seq=seq,
        error=error,
        fields=conform_fields(r.fields if isinstance(r.fields, Mapping) else {"fields": r.fields}),
    )


def conform(reading: Reading, max_bytes: int = MAX_PAYLOAD_BYTES) -> Reading:
    """The Reading as the contract allows it; one that cannot be made valid becomes a failed `internal` one."""
    try:
        fixed = _conformed(reading)
        why = payload_problem(fixed.to_json().encode("utf-8"), max_bytes)
    except Exception as exc:  # a bug here must still leave a Reading behind
        log.exception("the Reading of %s %s could not be checked", reading.measurement, reading.target)
        fixed, why = reading, f"{type(exc).__name__}: {exc}"
    if why is None:
        return fixed
    log.warning(
        "the Reading of %s %s broke the contract: %s",
        printable(reading.measurement, MAX_KEY),
        printable(reading.target, MAX_KEY),
        why,
    )
    failed = dataclasses.replace(
        fixed,
        ok=False,
        error={"code": INTERNAL, "message": clean(f"the Reading broke the contract: {why}", MAX_TEXT)},
        fields={},
    )
    try:
        failed = _conformed(failed)
    except Exception:  # the site or target itself is what breaks: keep what is certain
        failed = dataclasses.replace(failed, site={"kecamatan": "", "desa": ""}, target="-", mono_s=None, boot="")  # type: ignore[arg-type]
    problem = payload_problem(failed.to_json().encode("utf-8"), max_bytes)
    if problem:  # only an invalid node id or measurement name gets here: the config prevents both
        log.error("a Reading of %s cannot meet the contract (%s); the collector will reject it", failed.node, problem)
    return failed
