"""A damaged spool: how damage is noticed, and what can be saved from it.

A Pi's SD card loses power mid-write, or wears out, and a page of the spool is no longer what
SQLite wrote: SQLite then says "database disk image is malformed" (SQLITE_CORRUPT), or "file is
not a database" (SQLITE_NOTADB) when it is the header. Nothing mends such a file in place, and
every session of the publisher would stop at the same page while the appends fail once the spool
is full. So damage is noticed wherever a connection meets it (`Watched`, a connection factory
that tells the file's listeners) and at open (`check`, SQLite's quick_check), and the spool is
rebuilt: `salvage` copies every row that can still be read, with its id, seq and delivery state,
into a new spool, counts the rest as lost, and `move_aside` keeps the damaged file for a look.
`agent.publish.spool.rebuild` puts these together; the daemon runs it (docs/publishing.md).

Only SQLite's own sqlite3 module is used here, so this module knows nothing of the spool's
schema beyond its columns.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional, Union

log = logging.getLogger(__name__)

CORRUPT, NOTADB = 11, 26  # SQLite's primary result codes for a damaged file
COLUMNS = "id, topic, payload, node, seq, tries, first_sent, sent"


class Damaged(sqlite3.DatabaseError):
    """The spool opened, but SQLite's quick_check found pages that are not what it wrote."""


def is_damage(exc: BaseException) -> bool:
    """Whether an error means the file is damaged (not locked, full, read-only or of a newer schema)."""
    if isinstance(exc, Damaged):
        return True
    if type(exc) is not sqlite3.DatabaseError:  # OperationalError & co.: the file may be fine
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (CORRUPT, NOTADB)
    text = str(exc)
    return "malformed" in text or "not a database" in text


# -- noticing damage wherever it is met ---------------------------------------------------------------
Listener = Callable[[BaseException], None]
_listeners: dict[str, list[Listener]] = {}
_lock = threading.Lock()


def _key(path: str) -> str:
    return os.path.abspath(path)


def listen(path: str, listener: Listener) -> Callable[[], None]:
    """Call `listener(exc)` whenever any connection of this process meets damage in `path`
    (from that connection's thread). Returns the function that stops it."""
    with _lock:
        _listeners.setdefault(_key(path), []).append(listener)

    def stop() -> None:
        with _lock:
            found = _listeners.get(_key(path), [])
            if listener in found:
                found.remove(listener)

    return stop


def report(path: str, exc: BaseException) -> None:
    with _lock:
        found = list(_listeners.get(_key(path), []))
    for listener in found:
        try:
            listener(exc)
        except Exception:  # a listener's bug must not hide the error from the code that met it
            log.exception("a listener for damage in %s failed", path)


class _Cursor(sqlite3.Cursor):
    """Tells the file's listeners about damage met while a statement runs or its rows are read."""

    def _seen(self, exc: sqlite3.DatabaseError) -> None:
        if is_damage(exc):
            report(getattr(self.connection, "path", ""), exc)

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            super().execute(sql, parameters)
        except sqlite3.DatabaseError as exc:
            self._seen(exc)
            raise
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _Cursor:
        try:
            super().executemany(sql, seq_of_parameters)
        except sqlite3.DatabaseError as exc:
            self._seen(exc)
            raise
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as exc:
            self._seen(exc)
            raise

    def fetchmany(self, size: Optional[int] = 1) -> list[Any]:
        try:
            return super().fetchmany(size)
        except sqlite3.DatabaseError as exc:
            self._seen(exc)
            raise

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as exc:
            self._seen(exc)
            raise

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as exc:
            self._seen(exc)
            raise


class Watched(sqlite3.Connection):
    """A connection (`sqlite3.connect(path, factory=Watched)`) whose statements report damage to
    the listeners of its file: the publisher's thread meets it, the daemon rebuilds the spool."""

    path = ""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor(_Cursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor(_Cursor).executemany(sql, parameters)


def watched(path: str, **kwargs: Any) -> sqlite3.Connection:
    db = sqlite3.connect(path, factory=Watched, **kwargs)
    db.path = path
    return db


def check(db: sqlite3.Connection) -> None:
    """Raise Damaged if SQLite's quick_check finds the file is not what it wrote (it reads every
    page: about a second for a full 50 MB spool on an SD card; done at open only)."""
    problems = [str(row[0]) for row in db.execute("PRAGMA quick_check").fetchall() if row[0] != "ok"]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise Damaged(f"quick_check: {'; '.join(problems[:3])}{more}")


# -- what can be saved ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Salvage:
    kept: int  # rows copied, with their id, seq and delivery state
    lost: int  # rows that could not be read (by the spool's own count when that could be read)
    unreadable: tuple[tuple[int, int], ...] = ()  # row id ranges that could not be read
    counted: bool = True  # False: the spool's counters were unreadable too, `lost` is a bound
    seqs_from: str = "spool"  # where each node's last seq came from: "spool", or "mark" (seq-hwm.json)

    def ranges(self) -> str:
        """The unreadable ids, e.g. "120-173, 400", for the one log line."""
        text = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in self.unreadable[:8])
        return text + (f" and {len(self.unreadable) - 8} more ranges" if len(self.unreadable) > 8 else "")


def _try(db: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> Optional[list[Any]]:
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.DatabaseError:
        return None


def _valid(row: tuple[Any, ...]) -> bool:
    """A row worth keeping: its topic is text and its payload a JSON object (a Reading)."""
    rid, topic, payload, node, seq, tries = row[:6]
    if not isinstance(rid, int) or not isinstance(topic, str) or not isinstance(payload, (bytes, str)):
        return False
    if (node is not None and not isinstance(node, str)) or (seq is not None and not isinstance(seq, int)):
        return False
    if not isinstance(tries, int):
        return False
    try:
        return isinstance(json.loads(payload), dict)
    except ValueError:
        return False


def readable_rows(db: sqlite3.Connection, top: int) -> Iterator[Union[tuple[Any, ...], int]]:
    """Every readings row that can be read, in id order; an int for each id up to `top` whose page
    cannot be read. A damaged page ends a range scan: the ids after it are looked up one at a time
    until the scan can resume past it (a lookup that finds no row proves its page readable)."""
    after = 0
    while True:
        try:
            for row in db.execute(f"SELECT {COLUMNS} FROM readings WHERE id > ? ORDER BY id", (after,)):
                after = int(row[0])
                yield tuple(row)
            return
        except sqlite3.DatabaseError:
            pass
        while True:  # step over the damaged page
            after += 1
            if after > top:
                return
            try:
                row = db.execute(f"SELECT {COLUMNS} FROM readings WHERE id = ?", (after,)).fetchone()
            except sqlite3.DatabaseError:
                yield after
                continue
            if row is not None:
                yield tuple(row)
            break


def _top(db: sqlite3.Connection, counters: Optional[tuple[int, int, int]]) -> int:
    """The highest row id the spool can have held: its largest id, its AUTOINCREMENT counter, or
    every row it ever took (rows + dropped + confirmed), whichever can be read."""
    found = [0]
    for sql in ("SELECT max(id) FROM readings", "SELECT seq FROM sqlite_sequence WHERE name = 'readings'"):
        rows = _try(db, sql)
        if rows and rows[0][0] is not None:
            found.append(int(rows[0][0]))
    if counters is not None:
        found.append(sum(counters))
    return max(found)


def salvage(source: str, dst: sqlite3.Connection, marks: Mapping[str, int]) -> Salvage:
    """Copy what can be read of the spool `source` into `dst`, a new, empty spool (same schema), in
    one transaction: every readable Reading (id, topic, payload, node, seq, tries, first_sent,
    sent), the per-node seqs, the counters and the meta rows. Where the seqs cannot be read, a node
    continues above its high-water mark (`marks`, from seq-hwm.json): every seq up to it may have
    been issued, and a seq must never repeat. Rows that cannot be read add to `dropped`."""
    try:
        uri = f"file:{urllib.parse.quote(source)}?mode=rw"  # never create it
        src = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
    except sqlite3.Error as exc:
        log.error("cannot open the damaged spool %s at all (%s): nothing can be copied from it", source, exc)
        return Salvage(0, 0, counted=False, seqs_from="mark")
    try:
        _try(src, "PRAGMA cell_size_check = ON")  # a damaged cell is an error, not garbage read as a row
        return _copy(src, dst, marks)
    finally:
        src.close()


def _copy(src: sqlite3.Connection, dst: sqlite3.Connection, marks: Mapping[str, int]) -> Salvage:
    unreadable_ids: list[int]
    top_seq: dict[str, int]
    stats = _try(src, "SELECT rows, dropped, confirmed FROM stats WHERE k = 0")
    counters = (int(stats[0][0]), int(stats[0][1]), int(stats[0][2])) if stats else None
    seq_rows = _try(src, "SELECT node, last, floor FROM seqs")
    meta = _try(src, "SELECT k, v FROM meta")
    kept, unreadable_ids, top_seq = 0, [], {}
    dst.execute("BEGIN IMMEDIATE")
    try:
        for item in readable_rows(src, _top(src, counters)):
            if isinstance(item, int):
                unreadable_ids.append(item)
                continue
            if not _valid(item):
                unreadable_ids.append(int(item[0]) if isinstance(item[0], int) else 0)
                continue
            payload = item[2].encode("utf-8") if isinstance(item[2], str) else item[2]
            dst.execute(
                f"INSERT INTO readings ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*item[:2], payload, *item[3:])
            )
            kept += 1
            node, seq = item[3], item[4]
            if node is not None and seq is not None:
                top_seq[node] = max(top_seq.get(node, 0), int(seq))
        last: dict[str, tuple[int, int]] = {}
        if seq_rows is not None:
            for node, n, floor in seq_rows:
                last[str(node)] = (int(n), int(floor))
        else:  # every seq up to the mark may have been used
            for node, mark in marks.items():
                last[node] = (mark, 0)
        for node, seq in top_seq.items():
            n, floor = last.get(node, (0, 0))
            last[node] = (max(n, seq), floor)
        dst.executemany(
            "INSERT INTO seqs (node, last, floor) VALUES (?, ?, ?) ON CONFLICT (node) DO UPDATE "
            "SET last = max(last, excluded.last), floor = max(floor, excluded.floor)",
            [(node, n, floor) for node, (n, floor) in sorted(last.items())],
        )
        if meta is not None:
            dst.execute("DELETE FROM meta")
            dst.executemany("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", [(str(k), str(v)) for k, v in meta])
        if counters is not None:
            lost = max(0, counters[0] - kept)
            dst.execute("UPDATE stats SET dropped = ?, confirmed = ? WHERE k = 0", (counters[1] + lost, counters[2]))
        else:
            lost = len(unreadable_ids)
            dst.execute("UPDATE stats SET dropped = dropped + ? WHERE k = 0", (lost,))
        dst.execute("COMMIT")
    except BaseException:
        dst.execute("ROLLBACK")
        raise
    return Salvage(
        kept, lost, tuple(_ranges(unreadable_ids)), counted=counters is not None,
        seqs_from="spool" if seq_rows is not None else "mark",
    )  # fmt: skip


def _ranges(ids: list[int]) -> Iterator[tuple[int, int]]:
    start = prev = None
    for i in sorted(set(ids)):
        if start is None or prev is None or i != prev + 1:
            if start is not None and prev is not None:
                yield (start, prev)
            start = i
        prev = i
    if start is not None and prev is not None:
        yield (start, prev)


# -- keeping the damaged file for a look -------------------------------------------------------------------
def aside_name(path: str, now: Optional[float] = None) -> str:
    """`spool.sqlite3.damaged-<epoch>`, made unique if one was set aside in the same second."""
    base = f"{path}.damaged-{int(time.time() if now is None else now)}"
    name, n = base, 1
    while any(os.path.lexists(name + suffix) for suffix in ("", "-wal", "-shm")):
        n += 1
        name = f"{base}.{n}"
    return name


def move_aside(path: str, aside: str) -> None:
    """Keep the damaged file as `aside`, its -wal and -shm beside it. The main file is hard-linked
    first, so a spool stays at `path` until the caller replaces it; its -wal must go before a new
    file takes the name, or SQLite would read one database's log into the other."""
    try:
        os.link(path, aside)
    except FileNotFoundError:
        pass
    except OSError:  # no hard links here (a FAT card): a plain move
        os.replace(path, aside)
    for suffix in ("-wal", "-shm", "-journal"):
        if os.path.lexists(path + suffix):
            os.replace(path + suffix, aside + suffix)


def fsync_dir(directory: str) -> None:
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
