"""The probe registry: every module in this package that defines `PROBE`.

Adding a probe means adding one module; nothing else needs editing. Modules
keep heavy imports (scapy, speedtest) inside functions, so discovering them
stays cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from agent.probes.base import Probe


@cache
def registry() -> dict[str, Probe]:
    found: dict[str, Probe] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        probe = getattr(module, "PROBE", None)
        if isinstance(probe, Probe):
            found[probe.kind] = probe
    return dict(sorted(found.items()))


def get(kind: str) -> Probe:
    probes = registry()
    if kind not in probes:
        raise KeyError(f"unknown probe kind '{kind}'; known: {', '.join(probes)}")
    return probes[kind]
