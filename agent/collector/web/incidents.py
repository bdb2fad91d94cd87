"""Incidents for the pages and the SLA, from the incidents engine (`agent.collector.incidents`) when it is there.

The HOOK: when the engine is not installed every function here returns None: the
pages say "not available", and the SLA finds power cuts by boot ids alone
(docs/sla.md). When it is, this module uses from `agent.collector.incidents.store`:

- ``open_incidents(store) -> [dict]``          the overview's open incidents;
- ``listing(store, False, since) -> [Incident]`` a node's recent incidents, and for the
  SLA the dark incidents whose cause is ``power`` (off time, excluded).

Items may be objects or dicts with node, kind, cause, start, end (None while open).
The module is looked up at run time, not imported at the top, because it may be
absent; nothing else in `agent/` does this.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Iterable
from types import ModuleType
from typing import Any, Optional

from agent.collector.sla import Window
from agent.collector.store import Store

log = logging.getLogger(__name__)

ENGINE = "agent.collector.incidents.store"
POWER = "power"
MAX_ITEMS = 200


@dataclasses.dataclass(frozen=True)
class Incident:
    node: str
    kind: str
    start: Optional[float]
    stop: Optional[float]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def engine() -> Optional[ModuleType]:
    try:
        return importlib.import_module(ENGINE)
    except ImportError:
        return None


def _get(item: Any, *names: str) -> Any:
    for name in names:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value is not None:
            return value
    return None


def _time(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _convert(items: Iterable[Any]) -> list[Incident]:
    out = []
    for item in items:
        out.append(
            Incident(
                node=str(_get(item, "node") or ""),
                kind=" · ".join(str(x) for x in (_get(item, "kind"), _get(item, "cause")) if x),
                start=_time(_get(item, "start", "started")),
                stop=_time(_get(item, "end", "stop", "ended")),
                summary=" / ".join(str(x) for x in (_get(item, "kecamatan"), _get(item, "desa")) if x),
            )
        )
        if len(out) >= MAX_ITEMS:
            break
    return out


def _call(name: str, *args: Any) -> Optional[Any]:
    module = engine()
    fn = getattr(module, name, None) if module is not None else None
    if not callable(fn):
        return None
    try:
        return fn(*args)
    except Exception:  # the engine's failure must not take a page down
        log.debug("incidents engine: %s failed", name, exc_info=True)
        return None


def open_incidents(store: Store) -> Optional[list[Incident]]:
    items = _call("open_incidents", store)
    return None if items is None else _convert(items)


def node_incidents(store: Store, node: str, since: float) -> Optional[list[Incident]]:
    items = _call("listing", store, False, since)
    return None if items is None else _convert(i for i in items if _get(i, "node") == node)


def power_periods(store: Store, since: float, until: float) -> Optional[dict[str, list[Window]]]:
    """Per node, the power cuts the engine found in [since, until) (an open one runs to `until`)."""
    items = _call("listing", store, False, since)
    if items is None:
        return None
    out: dict[str, list[Window]] = {}
    for item in items:
        node, start, end = _get(item, "node"), _time(_get(item, "start")), _time(_get(item, "end"))
        if node and _get(item, "cause") == POWER and start is not None and start < until:
            out.setdefault(str(node), []).append((max(start, since), min(end if end is not None else until, until)))
    return out
