"""Busy village traffic for the testbed: UDP bursts on an on/off pattern, from any namespace.

A village link is rarely idle: phones, CCTV, other users. Started in the node namespace the
traffic shows in the node's interface counters (another program on the Pi); started in the
gateway namespace it does not (other users behind the village router), yet it still crosses
the emulated uplink and keeps its cellular radio awake.

    python -m tests.testbed.traffic --to 203.0.113.18 --pattern 1.5:5.5,1.5:8 [--pps 50 --size 1000]

`--pattern` is busy:quiet pairs in seconds, repeated until the process is killed (the testbed
kills it at teardown). The first burst starts at once.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time

DISCARD_PORT = 9


def parse_pattern(text: str) -> list[tuple[float, float]]:
    pairs = []
    for part in text.split(","):
        busy, _, quiet = part.partition(":")
        pairs.append((float(busy), float(quiet or 0)))
    return pairs


def run(to: str, pattern: list[tuple[float, float]], pps: float, size: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"\x00" * size
    while True:
        for busy, quiet in pattern:
            end = time.monotonic() + busy
            while time.monotonic() < end:
                with contextlib.suppress(OSError):  # a full tbf queue: the burst goes on
                    sock.sendto(payload, (to, DISCARD_PORT))
                time.sleep(1.0 / pps)
            time.sleep(quiet)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", required=True)
    parser.add_argument("--pattern", default="1:0", help="busy:quiet seconds, comma separated, repeated")
    parser.add_argument("--pps", type=float, default=50.0)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    run(args.to, parse_pattern(args.pattern), args.pps, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
