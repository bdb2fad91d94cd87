"""The incident vocabulary: kinds, causes, severities, and how a dark period's evidence picks its cause.

A dark period is made of bad intervals, each with what it showed (readings taken then
and replayed later, or none). The cause is the one most intervals support, "unknown"
while none has evidence yet (the node is silent and nothing was replayed).
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.collector.incidents.settings import CRITICAL, WARNING

DARK, DEGRADED = "dark", "degraded"

# Why a desa is dark; each has its own responder (see messages: next steps).
POWER = "power"  # no readings taken in the gap, and back with a new boot (or mono_s restarted)
UPLINK = "uplink"  # readings taken in the gap: the gateway answers, nothing beyond it
LAN = "lan"  # the gateway itself stopped answering
AGENT = "agent"  # no readings taken, same boot, mono_s continuous: the node ran, the agent did not
UPSTREAM = "upstream"  # several nodes behind one shared upstream went dark together
UNKNOWN = "unknown"  # dark, and no evidence has arrived yet
DARK_CAUSES = (POWER, UPLINK, LAN, AGENT, UPSTREAM, UNKNOWN)

# Degraded, not dark.
LOSS, LATENCY, THROUGHPUT, LINK_CHANGE, CLOCK, BUDGET = (
    "loss",
    "latency",
    "throughput",
    "link_change",
    "clock",
    "budget",
)
DEGRADED_CAUSES = (LOSS, LATENCY, THROUGHPUT, LINK_CHANGE, CLOCK, BUDGET)

SEVERITY = {DARK: CRITICAL, DEGRADED: WARNING}

# What one interval of a node showed, for the dark rule. GOOD and NEUTRAL are not bad;
# every code from BAD_UPLINK on is a bad interval and says which cause it supports.
GOOD, NEUTRAL = 0, 1
BAD_UPLINK, BAD_LAN, BAD_NO_GATEWAY, BAD_POWER, BAD_AGENT, BAD_GAP, BAD_SILENT = 2, 3, 4, 5, 6, 7, 8
BAD = 2  # the first bad code; also the one bad code of the degraded rules

CAUSE_OF_CODE = {BAD_UPLINK: UPLINK, BAD_LAN: LAN, BAD_POWER: POWER, BAD_AGENT: AGENT}
# On a tie the cause with the most specific responder wins.
PRIORITY = (POWER, LAN, UPLINK, AGENT)


def dark_cause(counts: Mapping[int, int]) -> str:
    """The cause most bad intervals support; unknown when none carries evidence."""
    votes: dict[str, int] = {}
    for code, n in counts.items():
        cause = CAUSE_OF_CODE.get(code)
        if cause and n > 0:
            votes[cause] = votes.get(cause, 0) + n
    if not votes:
        return UNKNOWN
    return max(votes, key=lambda c: (votes[c], -PRIORITY.index(c)))


def group_cause(member_causes: list[str]) -> str:
    """Upstream, unless most members were power cuts: then the area lost mains power."""
    power = sum(1 for c in member_causes if c == POWER)
    return POWER if power * 2 > len(member_causes) else UPSTREAM
