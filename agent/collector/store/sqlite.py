"""The SQLite store: one file, WAL, the collector's default (no server to run)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from agent.collector.store.base import READING_COLUMNS, Store, StoreDown, StoreRefused, schema_sql

# What SQLite (or its binding) raises for a value it will not take: the data's fault, not the file's.
REFUSED = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, OverflowError, ValueError)


class SQLiteStore(Store):
    """The embedded default: one file, WAL, no server. Several collectors may share it."""

    def __init__(self, path: str, busy_timeout_s: float = 5.0, readonly: bool = False) -> None:
        super().__init__()
        self.path = path
        if readonly and not os.path.exists(path):
            raise StoreDown(f"no collector database at {path}")
        try:
            if not readonly and os.path.dirname(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            if not readonly:
                for statement in schema_sql("REAL", "INTEGER", "INTEGER", "TEXT"):
                    self.conn.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise StoreDown(f"cannot open {path}: {exc}") from None

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Any]:
        cur = self.conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise StoreDown(f"{self.path}: {exc}") from None
        try:
            yield cur
            cur.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._rollback(cur)
            raise StoreDown(f"{self.path}: {exc}") from None
        except REFUSED as exc:
            self._rollback(cur)
            raise StoreRefused(f"{self.path}: {type(exc).__name__}: {exc}") from None
        except BaseException:
            self._rollback(cur)
            raise

    @staticmethod
    def _rollback(cur: Any) -> None:
        with suppress(sqlite3.Error):
            cur.execute("ROLLBACK")

    def _insert_readings(self, cur: Any, rows: list[tuple[Any, ...]]) -> set[str]:
        sql = f"INSERT OR IGNORE INTO readings ({READING_COLUMNS}) VALUES ({', '.join('?' * 17)})"
        new = set()
        for row in rows:
            cur.execute(sql, row)
            if cur.rowcount == 1:
                new.add(row[0])
        return new

    def close(self) -> None:
        self.conn.close()
