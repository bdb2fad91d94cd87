"""The collector's side of delivery: which nodes are owed an acknowledgement, and when to send it.

After a batch commits, its readings are noted here per node; the ack itself is
built from the database's state (`Store.ack_states`), so any collector sharing
the database acks the same facts. It goes out retained at QoS 1 on
`<topic_prefix>/ack/<node>`, at most once per `acks.min_gap_s` per node, when

- the oldest reading noted has waited `acks.max_delay_s` (live traffic: one ack a
  minute covers the ~5 readings a node sends in it at the default schedule);
- `BURST` readings are noted (a replay: about one ack a `min_gap_s`, each covering many);
- a node that was replaying pauses for `min_gap_s` (the tail of a replay is not
  held back for `max_delay_s`).

A satellite node pays for every byte of these: docs/delivery.md measures them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Callable, Protocol

from agent.collector.settings import AckSettings
from agent.reading import acks
from agent.reading.topics import collector_ack_topic
from agent.reading.validate import Record

BURST = 20
CHECK_S = 0.1  # how often the owed nodes are looked through (thousands of nodes: not after every batch)


class AckStates(Protocol):
    def ack_states(self, nodes: list[str]) -> dict[str, tuple[int, list[tuple[int, int]]]]: ...


@dataclasses.dataclass
class _Owed:
    first: float  # when the oldest reading not yet acknowledged was noted
    last: float  # when the newest was
    seqs: set[int]


def wire_bytes(topic: str, payload: bytes) -> int:
    """Bytes of the PUBLISH a node receives for one ack (QoS 0 subscription, MQTT 3.1.1)."""
    remaining = 2 + len(topic.encode()) + len(payload)
    return 1 + (1 if remaining < 128 else 2 if remaining < 16384 else 3) + remaining


class AckBook:
    def __init__(self, settings: AckSettings, prefix: str) -> None:
        self.settings = settings
        self.prefix = prefix
        self.owed: dict[str, _Owed] = {}
        self.sent_at: dict[str, float] = {}
        self.burst_at: dict[str, float] = {}
        self.published = 0
        self.bytes = 0  # what the acks cost the nodes' links
        self._next_check = float("-inf")

    def note(self, records: Iterable[Record], now: float) -> None:
        """These are committed: their nodes are owed an ack."""
        if not self.settings.enabled:
            return
        for r in records:
            if r.seq is None:
                continue
            owed = self.owed.get(r.node)
            if owed is None:
                owed = self.owed[r.node] = _Owed(now, now, set())
            owed.seqs.add(r.seq)
            owed.last = now

    def due(self, now: float, force: bool = False) -> list[str]:
        s = self.settings
        out = []
        for node, owed in self.owed.items():
            if force:
                out.append(node)
                continue
            if now - self.sent_at.get(node, float("-inf")) < s.min_gap_s:
                continue
            if len(owed.seqs) >= BURST:
                self.burst_at[node] = now
                out.append(node)
            elif now - owed.first >= s.max_delay_s or (
                now - self.burst_at.get(node, float("-inf")) < s.max_delay_s and now - owed.last >= s.min_gap_s
            ):
                out.append(node)
        return sorted(out)

    def flush(self, store: AckStates, publish: Callable[[str, bytes], bool], now: float, force: bool = False) -> int:
        """Publish the acks that are due; returns how many. Raises StoreDown (they stay owed)."""
        if not force and now < self._next_check:
            return 0
        self._next_check = now + CHECK_S
        nodes = self.due(now, force)
        if not nodes:
            return 0
        states = store.ack_states(nodes)
        sent = 0
        for node in nodes:
            owed = self.owed[node]
            upto, ranges = states.get(node, (0, []))
            ack = acks.select(upto, ranges, owed.seqs)
            topic = collector_ack_topic(self.prefix, node)
            payload = ack.encode()
            if not publish(topic, payload):
                continue
            sent += 1
            self.sent_at[node] = now
            self.published += 1
            self.bytes += wire_bytes(topic, payload)
            # Seqs stored but left out of this ack (more ranges than one ack carries) go in the next one.
            state = acks.Ack(upto, tuple(ranges))
            left = {q for q in owed.seqs if state.covers(q) and not ack.covers(q)}
            if left:
                owed.seqs, owed.first = left, now
            else:
                del self.owed[node]
        return sent
