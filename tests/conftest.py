"""Fixtures shared across the suite. Feature fixtures live in tests/fixtures/<feature>.py
and are listed in pytest_plugins, one line each."""

from __future__ import annotations

pytest_plugins: list[str] = [
    "tests.fixtures.loopback",
    "tests.fixtures.mosquitto",
    "tests.fixtures.agentd",
    "tests.fixtures.collector",
    "tests.fixtures.testbed",
    "tests.fixtures.throughput",
    "tests.fixtures.packaging",
]
