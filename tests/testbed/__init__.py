"""The testbed: emulated village uplinks in network namespaces (see README.md, "## Testbed").

    from tests.testbed import Testbed, PROFILES, Direction
    with Testbed(PROFILES["geo"]) as tb:
        tb.agent(["probe", "icmp", tb.server_ip])

Tests use the `testbed` fixture (tests/fixtures/testbed.py) instead, which also skips where
namespaces are unavailable.
"""

from tests.testbed.bed import Testbed
from tests.testbed.profiles import PROFILES, Direction, GilbertElliott, Handover, IdlePenalty, Profile

__all__ = ["PROFILES", "Direction", "GilbertElliott", "Handover", "IdlePenalty", "Profile", "Testbed"]
