"""Opening and configuring SQLite connections (apsw's bundled SQLite).

Every connection of the process is made by `connect`, so that all of them run with the same
settings. The write connection is owned by the writer thread; each reading thread gets its own
connection from `Readers`.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw

from audiences_server.errors import Unavailable

# Why these settings (see docs/operations.md):
# - WAL: readers never block the writer and the writer never blocks readers.
# - synchronous: FULL by default so that an acknowledged call survives power loss too; with
#   group commit the fsync is paid once per transaction, not per call. NORMAL survives a crash
#   of the process and is offered as a setting.
# - a 64 MiB page cache and a 20k-page autocheckpoint keep B-tree maintenance of the event
#   indexes in memory between checkpoints.
_PRAGMAS = (
    ("foreign_keys", "ON"),
    ("cache_size", "-65536"),
    ("temp_store", "MEMORY"),
    ("wal_autocheckpoint", "20000"),
    ("mmap_size", "268435456"),
)


# Prepared statements kept per connection (apsw's default is 100). Each compiled definition has a
# query of its own (store/sql/plans.py), and a job runs every definition a change reaches: with a
# few hundred definitions a smaller cache prepares each again at every job (~90 µs each).
STATEMENT_CACHE = 1024


def connect(path: Path | str, *, synchronous: str = "FULL", readonly: bool = False,
            create: bool = True) -> apsw.Connection:
    """Opens a connection to the database file with the project's settings.

    Args:
        path: the SQLite file; it is created when missing, with its folders (see `create_private`),
            unless `create` is false or `readonly`.
        synchronous: SQLite's `synchronous` setting, FULL or NORMAL.
        readonly: open for reading only.
        create: make the file when it is missing.

    Returns:
        The configured connection.
    """
    path = Path(path)
    if readonly:
        flags = apsw.SQLITE_OPEN_READONLY
    else:
        flags = apsw.SQLITE_OPEN_READWRITE | (apsw.SQLITE_OPEN_CREATE if create else 0)
    if not readonly and create:
        create_private(path)
    conn = apsw.Connection(str(path), flags=flags, statementcachesize=STATEMENT_CACHE)
    conn.setbusytimeout(10_000)
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={_checked_synchronous(synchronous)}")
    for name, value in _PRAGMAS:
        conn.execute(f"PRAGMA {name}={value}")
    return conn


def create_private(path: Path) -> None:
    """Creates the database file, and each missing folder above it, readable by the owner only.

    The file holds every profile and the token hashes. SQLite creates a missing file 0644 and
    gives its `-wal` and `-shm` files the mode of the database file, so creating the file 0600
    first makes all three private. Existing files and folders are left as they are.
    """
    _make_folders(path)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def _make_folders(path: Path) -> None:
    """Creates each missing folder above a file, readable by the owner only."""
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    for folder in reversed(missing):
        # mkdir's mode passes through the umask, which may only take rights away: 0700 at most.
        folder.mkdir(mode=0o700, exist_ok=True)


def scratch_beside(target: Path) -> Path:
    """A new empty file beside `target` (its missing folders made), readable by the owner only,
    under a name no file had (`.NAME.<random>.partial`), to write `target` through and rename over
    it: creating it never replaces or removes another file, the database among them."""
    _make_folders(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    return Path(name)


def _checked_synchronous(value: str) -> str:
    if value.upper() not in {"FULL", "NORMAL", "EXTRA"}:
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {value!r}")
    return value.upper()


class DatabaseGone(Unavailable):
    """The database file was removed or replaced under the running server."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"the database file {path} was removed or replaced while the server ran; nothing more is"
                         " stored: stop the server and restore the file (or a backup)", reason="DATABASE_GONE")


class Readers:
    """One read connection per thread, opened on first use and closed together."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._local = threading.local()
        self._all: list[apsw.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> apsw.Connection:
        """Returns this thread's read connection."""
        conn: apsw.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Never created here: a database file removed under the server is not made anew, empty.
            try:
                conn = connect(self._path, synchronous=self._synchronous, create=False)
            except apsw.CantOpenError:
                if self._path.exists():
                    raise
                raise DatabaseGone(self._path) from None
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[apsw.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        conn = self.get()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def private_snapshot(self) -> Iterator[apsw.Connection]:
        """A read transaction on a connection of its own, closed at the end.

        For a read that spans many steps which may run on different threads (a streamed
        export): a snapshot on a thread's shared connection would stay open between the steps
        and be seen by every other request that thread serves.
        """
        conn = connect(self._path, synchronous=self._synchronous, readonly=True)
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        finally:
            conn.close()

    def close(self) -> None:
        """Closes every reader connection."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def rows(conn: apsw.Connection, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    """Runs a query and returns its rows as dicts keyed by column name."""
    cursor = conn.execute(sql, params)
    try:
        names = [d[0] for d in cursor.getdescription()]
    except apsw.ExecutionCompleteError:
        return []
    return [dict(zip(names, row, strict=True)) for row in cursor]


def in_chunks(values: Sequence[Any], size: int = 512) -> Iterator[tuple[str, list[Any]]]:
    """The values in chunks for `IN (…)`: per chunk, its placeholders and its values.

    SQLite allows 32k bound variables; a chunk stays well under it. Each chunk is padded to a
    power of two by repeating its last value (which `IN` ignores), so that the statements stay
    few and each is prepared once and cached by the connection, whatever the number of values.
    """
    for start in range(0, len(values), size):
        chunk = list(values[start : start + size])
        padded = chunk + chunk[-1:] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))
        yield ",".join("?" * len(padded)), padded


def scalar(conn: apsw.Connection, sql: str, params: Any = ()) -> Any:
    """The first column of the first row of a query that always returns one (count, max, …)."""
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise LookupError(f"query returned no row: {sql}")
    return row[0]


def next_id_sql(table: str, column: str) -> str:
    """SQL for the next id of a table whose ids are never given twice: past its greatest and past
    every id it ever gave (`id_floors`, kept under the table's name: `keep_id_floor`).

    An insert takes it as `INSERT … SELECT`, not `VALUES`: SQLite runs a one-row `VALUES` insert
    without a statement journal, so a full disk (SQLITE_FULL) rolls back the whole transaction,
    the writer's savepoint for the job with it, instead of the one statement."""
    return (f"max(coalesce((SELECT max({column}) FROM {table}), 0),"
            f" coalesce((SELECT value FROM id_floors WHERE name = '{table}'), 0)) + 1")


def keep_id_floor(conn: apsw.Connection, table: str, removed_id: int) -> None:
    """Notes that an id of the table is gone, so that `next_id_sql` never gives it again."""
    conn.execute("INSERT INTO id_floors (name, value) VALUES (?, ?)"
                 " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)", (table, removed_id))
