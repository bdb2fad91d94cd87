"""The agent's optional parts: what each adds, and the one lean command that installs it.

The default install leaves them out (on a metered link, python3-scapy with apt's
Recommends pulls in 188 MB). A probe that needs a missing part fails with code
`not_installed` and this command; `netprobe diagnose` lists what is missing.
Finding a part never imports it: `find_spec` only looks on the path.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Part:
    module: str  # the import name
    package: str  # Debian's package
    enables: str  # what a technician gains, in a few words (English; diagnose shows i18n "optional.<module>")

    @property
    def install(self) -> str:
        return f"sudo apt install --no-install-recommends {self.package}"


SCAPY = Part("scapy", "python3-scapy", "the path probe (traceroute, path MTU)")
SPEEDTEST = Part("speedtest", "speedtest-cli", "the speedtest throughput backend")
PARTS: tuple[Part, ...] = (SCAPY, SPEEDTEST)


def installed(part: Part) -> bool:
    try:
        return importlib.util.find_spec(part.module) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules (None)
        return False


def missing_message(part: Part) -> Optional[str]:
    """None when `part` is installed, else one line naming it and the command that adds it."""
    if installed(part):
        return None
    return f"{part.module} is not installed ({part.enables}); add it with: {part.install}"


def missing_parts() -> list[Part]:
    return [p for p in PARTS if not installed(p)]
