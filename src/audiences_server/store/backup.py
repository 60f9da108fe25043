"""Online backup and restore of the database file with SQLite's backup API.

A backup reads the live database from a connection of its own, in another process than the
server if need be: in WAL mode a reader never blocks the writer, and copying every page in one
step keeps one read snapshot from start to end (a copy made in several steps starts over each
time another connection writes). What the copy holds is exactly what was committed when it
started. It is written beside its target, made self-contained (no `-wal` file), synced, then
renamed over the target. A restore copies a backup into the database the same way, as one
transaction of the destination, so that SQLite handles the database's own `-wal` file.
"""

from __future__ import annotations

import os
from pathlib import Path

import apsw

from audiences_server.store.db import connect, create_private


def _copy(source: apsw.Connection, destination: apsw.Connection) -> None:
    with destination.backup("main", source, "main") as copy:
        copy.step(-1)


def _open_read_only(path: Path) -> apsw.Connection:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    conn.setbusytimeout(10_000)
    return conn


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(db: Path, target: Path) -> int:
    """Copies the database (as committed when the copy starts) to `target`; returns its size in bytes.

    Raises:
        FileNotFoundError: there is no database at `db`.
    """
    if not db.is_file():
        raise FileNotFoundError(f"no database at {db}")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private(partial)
    source, copy = _open_read_only(db), apsw.Connection(str(partial))
    try:
        _copy(source, copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    _fsync(partial)
    os.replace(partial, target)
    _fsync(target.parent)
    return target.stat().st_size


def check_backup(path: Path) -> None:
    """Refuses a file that is not a sound database of this project.

    Raises:
        ValueError: says why.
    """
    if not path.is_file():
        raise ValueError(f"no backup at {path}")
    try:
        conn = _open_read_only(path)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchall()
            migrated = conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchall()
        finally:
            conn.close()
    except apsw.Error as failed:
        raise ValueError(f"{path} is not an SQLite database: {failed}") from None
    if verdict != [("ok",)]:
        raise ValueError(f"{path} is damaged: {verdict[0][0]}")
    if not migrated:
        raise ValueError(f"{path} is not an Audiences database")


def restore(source: Path, db: Path, synchronous: str = "FULL") -> int:
    """Replaces the database's content with a backup's (the caller holds the instance lock);
    returns the database's size in bytes."""
    check_backup(source)
    backup_conn, live = _open_read_only(source), connect(db, synchronous=synchronous)
    try:
        _copy(backup_conn, live)
        live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        live.close()
        backup_conn.close()
    return db.stat().st_size
