"""How a technician asked for the diagnosis, and the one deadline every check keeps."""

from __future__ import annotations

import dataclasses

# The promise: an answer within 20 s, even on a dead uplink. The last second is for printing.
DEADLINE_S = 19.0
# The latency probes stop this long before the deadline, so the link look still gets a few seconds.
LATER_CHECKS_S = 2.0


@dataclasses.dataclass(frozen=True)
class DiagnoseOptions:
    lang: str = "en"  # en | id
    as_json: bool = False  # --json: no progress line on the terminal
    throughput: bool = True  # --no-throughput turns the test (and its data cost) off
