"""What every probe shares: its declaration, its outcome and its error codes.

A probe module defines `PROBE = Probe(...)`; the registry finds it. The
module's docstring and its `Options` dataclass are its documentation, in the
way a Telegraf plugin's sample config is.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Awaitable
from typing import Any, Callable, Optional, Union

FieldValue = Union[int, float, str, bool, None]

# Error codes are part of the Reading contract: the collector counts them.
TIMEOUT = "timeout"
REFUSED = "refused"
UNREACHABLE = "unreachable"
RESOLVE_FAILED = "resolve_failed"
NO_ROUTE = "no_route"
PERMISSION = "permission"
NXDOMAIN = "nxdomain"
SERVFAIL = "servfail"
DNS_ERROR = "dns_error"
TLS_ERROR = "tls_error"
HTTP_ERROR = "http_error"
PROTOCOL_ERROR = "protocol_error"
BAD_TARGET = "bad_target"
SKIPPED = "skipped"
INTERNAL = "internal"


@dataclasses.dataclass(frozen=True)
class ProbeError:
    code: str
    message: str


@dataclasses.dataclass
class Outcome:
    """What one probe run found; a Reading wraps it with identity and time."""

    ok: bool
    fields: dict[str, FieldValue] = dataclasses.field(default_factory=dict)
    error: Optional[ProbeError] = None

    @classmethod
    def failed(cls, code: str, message: str, **fields: FieldValue) -> Outcome:
        return cls(ok=False, fields=dict(fields), error=ProbeError(code, message))


@dataclasses.dataclass(frozen=True)
class ProbeContext:
    """Run-time facts a probe may need beyond its own options."""

    state_dir: str = ""
    config: Any = None
    interactive: bool = False


Runner = Callable[[str, Any, float, ProbeContext], Awaitable[Outcome]]


@dataclasses.dataclass(frozen=True)
class Probe:
    kind: str
    summary: str
    options: type
    run: Runner
    interval_s: float
    timeout_s: float
    heavy: bool = False  # heavy probes never run at the same time (the daemon's heavy lock)
    # Optional own schedule, e.g. randomized exponential gaps for throughput tests:
    # (target, random source) -> seconds until the next run. None: the target's interval.
    next_interval: Optional[Callable[[Any, random.Random], float]] = None


class ProbeFailure(Exception):
    """Raised inside a probe's I/O part; turned into a failed Outcome."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
