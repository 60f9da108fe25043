"""Online backup and restore of the database file with SQLite's backup API.

A backup reads the live database from a connection of its own, in another process than the
server if need be: in WAL mode a reader never blocks the writer, and copying every page in one
step keeps one read snapshot from start to end (a copy made in several steps starts over each
time another connection writes). What the copy holds is exactly what was committed when it
started. It is written beside its target, made self-contained (no `-wal` file), synced, then
renamed over the target; on any failure the partial copy is removed, so a backup is whole or
absent. A restore copies a backup into the database the same way, as one
transaction of the destination, so that SQLite handles the database's own `-wal` file.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import apsw

from audiences_server.store import migrations
from audiences_server.store.db import connect, next_id_sql, scratch_beside


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


def kind(path: Path) -> str:
    """What a path that is not a regular file is, for a message: `a directory`, `a device`, …"""
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def check_target(target: Path) -> None:
    """Refuses a backup target that exists and is not a regular file (a directory, a device, …).

    The copy is renamed over the target at the end: that would replace a device node such as
    /dev/full with a regular file, and fail on a directory only after copying every page.

    Raises:
        ValueError: says what the target is.
    """
    if target.exists() and not target.is_file():
        raise ValueError(f"{target} is {kind(target)}: a backup is written to a file of its own")


def backup(db: Path, target: Path) -> int:
    """Copies the database (as committed when the copy starts) to `target`; returns its size in bytes.

    Raises:
        FileNotFoundError: there is no database at `db`.
        ValueError: `target` exists and is not a regular file (a directory, a device, …), or the
            copy fails SQLite's `quick_check` (the database is damaged).
    """
    if not db.is_file():
        raise FileNotFoundError(f"no database at {db}")
    check_target(target)
    partial = scratch_beside(target)
    try:
        source = _open_read_only(db)
        try:
            copy = apsw.Connection(str(partial))
            try:
                _copy(source, copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                # SQLite's backup copies pages as they are: a damaged database would make a
                # backup that `restore` refuses, found only on the day it is needed.
                verdict = copy.execute("PRAGMA quick_check").fetchall()
            finally:
                copy.close()
            if verdict != [("ok",)]:
                raise ValueError(f"{db} is damaged: {verdict[0][0]}; no backup was written")
        finally:
            source.close()
        _fsync(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)  # a backup is whole or absent, interrupted (Ctrl-C) too
        raise
    _fsync(target.parent)
    return target.stat().st_size


def check_backup(path: Path) -> None:
    """Refuses a file that is not a sound database of this project, or one a newer version wrote.

    Raises:
        ValueError: says why.
    """
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is {kind(path)}, not a backup file")
    if not path.is_file():
        raise ValueError(f"no backup at {path}")
    try:
        conn = _open_read_only(path)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchall()
            migrated = conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchall()
            done = migrations.applied(conn) if migrated else set()
        finally:
            conn.close()
    except apsw.CorruptError as failed:
        raise ValueError(f"{path} is damaged: {failed}") from None
    except apsw.Error as failed:
        raise ValueError(f"{path} is not an SQLite database: {failed}") from None
    if verdict != [("ok",)]:
        raise ValueError(f"{path} is damaged: {verdict[0][0]}")
    if not migrated:
        raise ValueError(f"{path} is not an Audiences database")
    # Refused here, before the database is overwritten: the server would refuse to start on it.
    migrations.check_known(done, str(path))


# How far a restore moves each id sequence on: past every id the server could have issued after
# the backup was taken (a million a second for twelve days), well inside 2^53, which JavaScript
# reads exactly, for thousands of restores.
RESTORE_ID_GAP = 1 << 40


def _past_what_was_issued(conn: apsw.Connection) -> None:
    """Moves every id sequence (change records, feed records, deliveries, connections) past what
    the server may have issued after the backup: change and connection ids make the message ids
    destinations deduplicate on, and feed record ids are consumers' cursors, so an id issued again
    would be a new change that a destination drops as a replay, or a record a consumer's cursor
    skips. A consumer's cursor from before the restore stays one the feed issued (read on from it,
    it gets the new records)."""
    with conn:
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT name, 0 FROM sqlite_master AS m WHERE type = 'table'"
            " AND sql LIKE '%AUTOINCREMENT%' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence AS s WHERE s.name = m.name)")
        conn.execute("UPDATE sqlite_sequence SET seq = seq + ?", (RESTORE_ID_GAP,))
        # Connection ids are in the message ids their deliveries carry (a first sync's among
        # them), and are given past `id_floors`, not by a sequence: moved on likewise.
        conn.execute(
            f"INSERT INTO id_floors (name, value) SELECT 'connections', {next_id_sql('connections', 'connection_id')}"
            " - 1 + ? ON CONFLICT (name) DO UPDATE SET value = excluded.value", (RESTORE_ID_GAP,))
        conn.execute("UPDATE destinations SET feed_removed_through = max(feed_removed_through,"
                      " (SELECT seq FROM sqlite_sequence WHERE name = 'feed_records'))")


def restore(source: Path, db: Path, synchronous: str = "FULL", *, checked: bool = False) -> int:
    """Replaces the database's content with a backup's (the caller holds the instance lock);
    returns the database's size in bytes.

    Args:
        checked: the caller already ran `check_backup` on `source` (its `quick_check` reads the
            whole file: not twice).
    """
    if not checked:
        check_backup(source)
    backup_conn, live = _open_read_only(source), connect(db, synchronous=synchronous)
    try:
        _copy(backup_conn, live)
        # A backup made by an older version is brought up to date first: the ids to move on
        # include those its migrations keep (`id_floors`), which a start would otherwise make
        # from the backup's ids alone, giving ids issued after the backup again.
        migrations.migrate(live, int(time.time() * 1000), path=str(db))
        _past_what_was_issued(live)
        live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        live.close()
        backup_conn.close()
    return db.stat().st_size
