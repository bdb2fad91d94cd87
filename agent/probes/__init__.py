"""The probe registry: every module in this package that defines `PROBE`.

Adding a probe means adding one module, named as its kind; nothing else needs
editing. A probe's module is imported when its kind is first asked for (a
configured target, `netprobe probe KIND`), so a daemon holds the code of the
probes it runs and no other: one without a `link` target never loads the link
type classifier. Modules keep heavy imports (scapy, speedtest) inside
functions, so even importing them stays cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from agent.probes.base import Probe


@cache
def kinds() -> tuple[str, ...]:
    """Every probe kind, from the package's module names, without importing any of them."""
    return tuple(
        sorted(
            info.name
            for info in pkgutil.iter_modules(__path__)
            if not info.name.startswith("_") and info.name != "base"
        )
    )


@cache
def get(kind: str) -> Probe:
    """The probe of `kind`, its module imported on first use; KeyError naming the known kinds otherwise."""
    if kind not in kinds():
        raise KeyError(f"unknown probe kind '{kind}'; known: {', '.join(kinds())}")
    probe = getattr(importlib.import_module(f"{__name__}.{kind}"), "PROBE", None)
    if not isinstance(probe, Probe) or probe.kind != kind:
        raise KeyError(f"agent/probes/{kind}.py must define PROBE = Probe(kind='{kind}', ...)")
    return probe


def registry() -> dict[str, Probe]:
    """Every probe, each module imported (the reference generator, the docs' tests)."""
    return {kind: get(kind) for kind in kinds()}
