"""The PostgreSQL store (psycopg 3, imported only when a DSN is configured).

Readings go in with one `INSERT ... SELECT FROM unnest(...) ON CONFLICT (id)
DO NOTHING RETURNING id` per batch: one round trip however large the batch,
and the returned ids say which rows were new. Several collectors may share
one database; the unique key settles races between them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Optional

from agent.collector.store.base import READING_COLUMNS, Store, StoreDown, StoreRefused, schema_sql

log = logging.getLogger(__name__)

# Array types of the `readings` columns, in READING_COLUMNS order.
ARRAY_TYPES = (
    "text", "text", "bigint", "text", "text", "float8", "float8", "bool", "bool", "float8", "text",
    "float8", "bool", "text", "text", "jsonb", "float8",
)  # fmt: skip
FLOATS = {i for i, t in enumerate(ARRAY_TYPES) if t == "float8"}


def redact(dsn: str) -> str:
    """A DSN fit for a log line: no password."""
    import re

    dsn = re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)


class PostgresStore(Store):
    placeholder = "%s"
    greatest = "GREATEST"
    least = "LEAST"
    lock_rows = " FOR UPDATE"

    def __init__(self, dsn: str, schema: str = "netprobe", connect_timeout_s: int = 5) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError:
            raise StoreDown("PostgreSQL needs psycopg 3: pip install 'netprobe-agent[collector]'") from None
        self.psycopg = psycopg
        self.dsn, self.schema, self.timeout = dsn, schema, connect_timeout_s
        self.conn: Optional[Any] = None
        self._connect(create=True)

    def _connect(self, create: bool = False) -> Any:
        if self.conn is not None and not self.conn.closed:
            return self.conn
        psycopg = self.psycopg
        from psycopg import sql

        try:
            conn = psycopg.connect(self.dsn, connect_timeout=self.timeout, autocommit=True)
            with conn.transaction():
                # Collectors starting together would race on CREATE ... IF NOT EXISTS: take turns.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('netprobe-collector-schema'))")
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
                if create:
                    for statement in schema_sql("DOUBLE PRECISION", "BIGINT", "BOOLEAN", "JSONB"):
                        conn.execute(statement)
            conn.autocommit = False
        except psycopg.Error as exc:
            raise StoreDown(f"PostgreSQL {redact(self.dsn)}: {str(exc).strip().splitlines()[0]}") from None
        self.conn = conn
        return conn

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Any]:
        psycopg = self.psycopg
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
            self._drop()
            raise StoreDown(f"PostgreSQL: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}") from None
        except psycopg.InterfaceError as exc:
            self._drop()
            raise StoreDown(f"PostgreSQL connection lost: {exc}") from None
        except (psycopg.DataError, psycopg.IntegrityError, OverflowError, ValueError) as exc:
            # A value PostgreSQL will not take (NUL in text, a number out of range, a constraint): the
            # transaction is rolled back and the connection is fine; the batch is the problem.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreRefused(f"PostgreSQL refused a value: {first}") from None

    def _drop(self) -> None:
        if self.conn is not None:
            with suppress(Exception):  # already broken; nothing more to learn
                self.conn.close()
        self.conn = None

    def _insert_readings(self, cur: Any, rows: list[tuple[Any, ...]]) -> set[str]:
        columns = [list(col) for col in zip(*rows)]
        for i in FLOATS:
            columns[i] = [None if v is None else float(v) for v in columns[i]]
        arrays = ", ".join(f"%s::{t}[]" for t in ARRAY_TYPES)

        cur.execute(
            f"INSERT INTO readings ({READING_COLUMNS}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            columns,
        )
        return {row[0] for row in cur.fetchall()}

    def close(self) -> None:
        self._drop()
