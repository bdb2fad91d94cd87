"""Small pieces every page uses: escaping, number and time formats, links that keep the language.

Why its own `esc`: what nodes send (desa names, targets, error text) may carry
markup or terminal escape sequences; both must show as text. Control
characters become visible `\\xNN` escapes, then HTML is escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from typing import Any, Optional
from urllib.parse import quote, urlencode

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_TEXT = 4096


def visible(value: Any, limit: int = MAX_TEXT) -> str:
    """Text with control and bidi-override characters shown as escapes, cut to `limit`."""
    s = value if isinstance(value, str) else "" if value is None else str(value)
    if len(s) > limit:
        s = s[:limit] + "…"
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", s)


def esc(value: Any) -> str:
    return html.escape(visible(value), quote=True)


def num(value: Any) -> Optional[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            f = float(value)
        except OverflowError:
            return None
        return f if math.isfinite(f) else None
    return None


def fmt(value: Any, digits: int = 1, suffix: str = "") -> str:
    v = num(value)
    return "–" if v is None else f"{v:.{digits}f}{suffix}"


def pct(share: Optional[float], digits: int = 2) -> str:
    """A 0..1 share as a percentage."""
    return "–" if share is None else f"{share * 100:.{digits}f}%"


def minutes(seconds: Optional[float]) -> str:
    return "–" if seconds is None else f"{seconds / 60.0:,.0f}"


def local(ts: Optional[float], tz: dt.tzinfo, with_date: bool = True) -> str:
    if ts is None or num(ts) is None:
        return "–"
    try:
        stamp = dt.datetime.fromtimestamp(float(ts), tz)
    except (OverflowError, ValueError, OSError):
        return "–"
    return stamp.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def zone_name(tz: dt.tzinfo, at: float) -> str:
    return dt.datetime.fromtimestamp(at, tz).tzname() or ""


def seg(name: str) -> str:
    """One path segment, quoted whole (a kecamatan may hold spaces or a slash)."""
    return quote(name, safe="")


def href(path: str, lang: str, **params: Any) -> str:
    """A link within the site that keeps the language; segments in `path` are already quoted (`seg`)."""
    query = {k: v for k, v in params.items() if v not in (None, "")}
    query["lang"] = lang
    return path + "?" + urlencode(query)
