"""The collector's acknowledgement: which of a node's Readings it has stored (docs/delivery.md).

Published retained at QoS 1 on `netprobe/ack/{node}` after the transaction that
stored them committed. Compact JSON, because a satellite node pays for every byte:

    {"upto":1042}                          seq 1..1042 are all stored
    {"upto":1042,"also":[[1050,1060]]}     ... and 1050..1060 (1043..1049 are missing)

`upto` is the highest seq below which nothing is missing, counted from 1 (0:
seq 1 itself is missing); `also` lists stored ranges above it, so one gap does not
hold back everything after it. An ack only ever states facts ("these are
stored"), never retracts one, so a node may apply any ack it receives, in any
order, as a union. Pure: no I/O; `decode` never raises on hostile bytes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any, Optional

Range = tuple[int, int]

WIRE_RANGES = 8  # ranges one ack carries at most: bounds its size (~160 bytes)
STATE_RANGES = 1000  # ranges the collector keeps per node; beyond this the lowest go
MAX_SEQ = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class Ack:
    upto: int
    also: tuple[Range, ...] = ()

    def covers(self, seq: int) -> bool:
        return seq <= self.upto or any(a <= seq <= b for a, b in self.also)

    @property
    def top(self) -> int:
        """The highest seq this ack says is stored (0: none)."""
        return max([self.upto, *(b for _, b in self.also)])

    def encode(self) -> bytes:
        body: dict[str, Any] = {"upto": self.upto}
        if self.also:
            body["also"] = [list(r) for r in self.also]
        return json.dumps(body, separators=(",", ":")).encode()


def _seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEQ


def decode(payload: bytes) -> Optional[Ack]:
    """The Ack in `payload`, or None when it is not one (unknown keys are ignored)."""
    if len(payload) > 64 * 1024:
        return None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not _seq(data.get("upto")):
        return None
    also = data.get("also", [])
    if not isinstance(also, list) or len(also) > STATE_RANGES:
        return None
    ranges: list[Range] = []
    for r in also:
        if not (isinstance(r, list) and len(r) == 2 and _seq(r[0]) and _seq(r[1]) and 1 <= r[0] <= r[1]):
            return None
        ranges.append((r[0], r[1]))
    return Ack(int(data["upto"]), tuple(ranges))


def merge(upto: int, ranges: Sequence[Range], seqs: Iterable[int]) -> tuple[int, list[Range]]:
    """The stored set `upto` + `ranges` with `seqs` added, normalised: sorted, disjoint, none touching `upto`."""
    spans = sorted([*ranges, *((s, s) for s in set(seqs) if s > upto)])
    out: list[Range] = []
    for a, b in spans:
        if b <= upto:
            continue
        a = max(a, upto + 1)
        if a == upto + 1 and not out:
            upto = b
        elif out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
        if out and out[0][0] == upto + 1:
            upto = out.pop(0)[1]
    return upto, out[-STATE_RANGES:]


def select(upto: int, ranges: Sequence[Range], wanted: Iterable[int], limit: int = WIRE_RANGES) -> Ack:
    """The ack to send: `upto`, the ranges holding any of `wanted` (the seqs just stored), then the
    highest others, `limit` ranges at most. Whoever re-sends an old Reading is answered about it."""
    want = sorted(set(wanted))
    chosen: list[Range] = []
    rest: list[Range] = []
    i = 0
    for a, b in ranges:
        while i < len(want) and want[i] < a:
            i += 1
        (chosen if i < len(want) and want[i] <= b else rest).append((a, b))
    picked = chosen[-limit:]
    picked += rest[len(rest) - (limit - len(picked)) :] if len(picked) < limit else []
    return Ack(upto, tuple(sorted(picked)))
