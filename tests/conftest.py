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

# The environment a test needs, as a marker derived from the fixtures it uses, so that
# `-m "not testbed"` or `-m postgres` selects by need rather than by file name.
NEEDS: dict[str, tuple[str, ...]] = {
    "testbed": ("testbed",),
    "netns": ("root",),
    "pg_dsn": ("postgres",),
    "deb_installed": ("root",),
    "netprobe_deb": ("root",),
    "root_for": ("root",),
    "mosquitto": ("broker",),
    "broker": ("broker",),
}


def pytest_collection_modifyitems(items: list) -> None:  # type: ignore[type-arg]
    import pytest

    for item in items:
        marks = {m for name in getattr(item, "fixturenames", ()) for m in NEEDS.get(name, ())}
        if item.get_closest_marker("testbed"):
            marks.add("root")
        callspec = getattr(item, "callspec", None)  # a store parametrized over sqlite and postgresql
        if callspec is not None and "postgresql" in callspec.params.values():
            marks.add("postgres")
        for mark in sorted(marks):
            if not item.get_closest_marker(mark):
                item.add_marker(getattr(pytest.mark, mark))
