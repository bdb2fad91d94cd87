"""Where Readings are kept: one SQL design (`base`), SQLite by default, PostgreSQL when a DSN is given."""

from __future__ import annotations

from agent.collector.store.base import Store, StoreDown
from agent.collector.store.sqlite import SQLiteStore

__all__ = ["Store", "StoreDown", "open_store"]


def open_store(
    dsn: str = "", path: str = "", pg_schema: str = "netprobe", readonly: bool = False, busy_timeout_s: float = 5.0
) -> Store:
    """PostgreSQL when a DSN is given (psycopg is then imported), else the SQLite file at `path`."""
    if dsn:
        from agent.collector.store.postgres import PostgresStore

        return PostgresStore(dsn, pg_schema)
    return SQLiteStore(path, busy_timeout_s, readonly=readonly)
