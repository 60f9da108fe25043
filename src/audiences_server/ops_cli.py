"""The operator's commands of `audiences-server` that need no running server: backup and
restore, looking into the database (`db`), and listing and revoking tokens.

`backup` and `db` run beside a serving server (they only read); `restore` refuses while one holds
the database.

Every command but `serve` and `restore` needs an existing database (`check_database`), and a
failure of SQLite's that is about the file (not a database, damaged, locked by another process)
is told in one line (`explain_sqlite`), never as a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import apsw

from audiences_server.security import InstanceLock
from audiences_server.settings import ADMIN_SETTINGS, Settings, add_arguments
from audiences_server.store import backup as backups
from audiences_server.store import inspect, migrations
from audiences_server.store.db import scratch_beside

COMMANDS = ("backup", "restore", "db")
TOKEN_ACTIONS = ("list", "revoke")
# `db rows --limit`: SQLite's LIMIT is a signed 64-bit integer (a larger one is "datatype mismatch").
MAX_LIMIT = 2**63 - 1
# The first 16 bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY = "the database is busy: another process holds its write lock; try again"
# SQLite's errors an operator can act on, by primary result code: the message says what to do.
# Any other error (a mistake of the program) keeps its traceback.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = (
    5, 6, 10, 11, 13, 14, 26)
_APSW_CODES: tuple[tuple[type[apsw.Error], int], ...] = (
    (apsw.BusyError, _SQLITE_BUSY), (apsw.LockedError, _SQLITE_LOCKED), (apsw.IOError, _SQLITE_IOERR),
    (apsw.CorruptError, _SQLITE_CORRUPT), (apsw.FullError, _SQLITE_FULL), (apsw.CantOpenError, _SQLITE_CANTOPEN),
    (apsw.NotADBError, _SQLITE_NOTADB),
)
_SQLITE_MESSAGES = {
    _SQLITE_BUSY: BUSY,
    _SQLITE_LOCKED: BUSY,
    _SQLITE_NOTADB: "{db} is not an SQLite database: file is not a database",
    _SQLITE_CORRUPT: "{db} is damaged: database disk image is malformed",
    _SQLITE_FULL: "database or disk is full",
    _SQLITE_CANTOPEN: "unable to open the database {db} (or its -wal, -shm files)",
    _SQLITE_IOERR: "disk I/O error on {db}",
}
SQLITE_ERRORS = (apsw.Error, sqlite3.Error)
# The log of the engine a command opens (`spaces`, `tokens`). Its only error lines are the
# writer's, each a failure the command is given too and reports in one line (or with its
# traceback): at `error`, a locked database printed a second traceback above that line.
LOG_LEVEL = "critical"
# Who the audit log names for an action of the local commands (`tokens create|revoke`, `spaces
# create`), which hold no token: the operator with the database file at hand.
LOCAL_ACTOR = "local: audiences-server"


def register(commands: Any, tokens: Any) -> None:
    """Adds `backup`, `restore`, `db tables|rows|export`, and `tokens list|revoke`."""
    backup = commands.add_parser("backup", help="copy the database while the server runs (SQLite's online backup)")
    backup.add_argument("path", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace an existing file")
    add_arguments(backup, ADMIN_SETTINGS)
    restore = commands.add_parser("restore", help="replace the database with a backup (the server must be stopped)")
    restore.add_argument("path", help="the backup file to read")
    add_arguments(restore, ADMIN_SETTINGS)
    db = commands.add_parser("db", help="look into the database, read-only").add_subparsers(dest="action",
                                                                                            required=True)
    add_arguments(db.add_parser("tables", help="each table with its row count and columns"), ADMIN_SETTINGS)
    rows = db.add_parser("rows", help="a table's rows as JSON lines (secrets blanked)")
    rows.add_argument("table")
    rows.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE", help="keep rows where the"
                      " column equals the value (as text); repeatable")
    rows.add_argument("--limit", type=_limit, default=100, help="at most this many rows (default 100; 0: all)")
    add_arguments(rows, ADMIN_SETTINGS)
    export = db.add_parser("export", help="a whole table as CSV, JSON or JSON lines (secrets blanked)")
    export.add_argument("table")
    export.add_argument("--format", choices=("csv", "json", "ndjson"), default="csv")
    export.add_argument("--output", "-o", help="write to this file, readable by its owner only (default: standard"
                        " output)")
    export.add_argument("--force", action="store_true", help="replace an existing --output file")
    add_arguments(export, ADMIN_SETTINGS)
    listing = tokens.add_parser("list", help="a space's tokens: id, scope, label, times, state; never the secret")
    listing.add_argument("--space", required=True)
    add_arguments(listing, ADMIN_SETTINGS)
    revoke = tokens.add_parser("revoke", help="revoke a token by its id (tok_…); a running server refuses it"
                               " within 5 seconds (at once through the API)")
    revoke.add_argument("token_id")
    add_arguments(revoke, ADMIN_SETTINGS)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a number of rows from 0 (all) to {MAX_LIMIT}, not {text!r}")
    return value


def check_database(db: Path, *, ours: bool = False, new: bool = False) -> None:
    """Refuses a `--db` that is not an existing SQLite database file (of this server, with `ours`).

    Run before a command opens the database: SQLite creates a missing file and the engine then
    migrates it, so a mistyped path would leave a new database behind, one that the first `serve`
    does not bootstrap if a space was created in it. With `ours` (commands that open the engine,
    which migrates), a database of another program is refused too, not migrated, and so is one
    with migrations still to apply: they apply when `serve` starts, after the operator's backup,
    not as a side effect of listing tokens beside a server of the version before. With `new`
    (`serve`), a missing or empty file, or an SQLite database with no table, passes: the server
    makes it a new database; one holding another program's tables is refused.

    Raises:
        FileNotFoundError, ValueError: says why.
    """
    if not db.exists():
        if new:
            return
        raise FileNotFoundError(f"no database at {db}")
    if not db.is_file():
        raise ValueError(f"{db} is {backups.kind(db)}, not a database")
    with open(db, "rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if new and not header:
        return
    if header != SQLITE_HEADER:
        raise ValueError(f"{db} is not an SQLite database: " + ("the file is empty" if not header
                                                                 else "file is not a database"))
    if ours or new:
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            conn.setbusytimeout(10_000)
            migrated = conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchall()
            empty = not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            done = {name for (name,) in conn.execute("SELECT name FROM _migrations")} if migrated else set()
        except SQLITE_ERRORS as failed:
            said = explain_sqlite(failed, db)
            if said is None:
                raise
            raise ValueError(said) from None
        finally:
            conn.close()
        if not migrated and not (new and empty):
            raise ValueError(f"{db} is not an Audiences database" + (
                ": it holds another program's tables, which a server would add its own to" if new else ""))
        if ours and migrated:
            migrations.check_known(done, str(db))
            pending = [name for name, _ in migrations.MIGRATIONS if name not in done]
            if pending:
                raise ValueError(f"{db} has {len(pending)} migration(s) of this version to apply (the first:"
                                 f" {pending[0]}): stop the server, take a backup (`audiences-server backup`), and"
                                 " start this version's server on it, which applies them; then run this again")


def explain_sqlite(error: Exception, db: Path) -> str | None:
    """A one-line message for an error of SQLite's (apsw's or sqlite3's) that is about the
    database file or another process holding it; None for any other error."""
    code = next((c for kind, c in _APSW_CODES if isinstance(error, kind)), None)
    if code is None and isinstance(error, sqlite3.Error):
        code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    message = _SQLITE_MESSAGES.get(code) if code is not None else None
    return None if message is None else message.format(db=db)


def handles(args: argparse.Namespace) -> bool:
    """Whether the command is one of these."""
    return args.command in COMMANDS or (args.command == "tokens" and args.action in TOKEN_ACTIONS)


def run(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> None:
    """Runs one of these commands, writing to `out` (standard output as it is when called).

    Raises:
        ValueError, OSError: the command was refused; the message says why.
        apsw.Error, sqlite3.Error: SQLite failed; `explain_sqlite` tells those about the file.
    """
    out = sys.stdout if out is None else out
    if args.command == "backup":
        out.write(_backup(settings.db, Path(args.path), args.force) + "\n")
    elif args.command == "restore":
        out.write(_restore(settings, Path(args.path)) + "\n")
    elif args.command == "db":
        _db(settings.db, args, out)
    else:
        out.write(_tokens(settings, args) + "\n")


def _backup(db: Path, target: Path, force: bool) -> str:
    _check_output(db, target, force, "a backup")
    with _stopped_by_sigterm():
        size = backups.backup(db, target)
    return f"backed up {db} to {target} ({size:,} bytes)"


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM (a supervisor's stop, `timeout`) raises SystemExit(143) meanwhile, as Ctrl-C raises
    KeyboardInterrupt, so that what is under way cleans up (a backup's partial file) before the
    process ends; it used to end at once, leaving the partial copy of the database behind."""
    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: nothing to catch
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _restore(settings: Settings, source: Path) -> str:
    if settings.db.exists() and not settings.db.is_file():
        raise ValueError(f"{settings.db} is {backups.kind(settings.db)}, not a database: --db names the database"
                         " file to restore into")
    # A restore replaces an Audiences database or makes a new one, never another program's file
    # (nor a file it cannot read: it may be another program's).
    try:
        check_database(settings.db, new=True)
    except ValueError as refused:
        raise ValueError(f"{refused}; a restore writes only over an Audiences database: move the file (and its"
                         " -wal and -shm files) aside, then restore into its place") from None
    # Before the lock, which creates the database (and its folders) when missing: a refused
    # backup leaves nothing behind.
    backups.check_backup(source)
    try:
        lock = InstanceLock.take(settings.db)
    except OSError as failed:
        if failed.errno is not None:  # the file or its folder could not be made; the lock says so without errno
            raise
        raise OSError(f"a server is running on {settings.db}; stop it before restoring") from None
    try:
        size = backups.restore(source, settings.db, settings.synchronous, checked=True)
    finally:
        lock.release()
    return f"restored {source} into {settings.db} ({size:,} bytes)"


def _db(db: Path, args: argparse.Namespace, out: TextIO) -> None:
    database = inspect.open_read_only(db)
    if args.action == "tables":
        for name, count, columns in inspect.tables(database):
            out.write(f"{name}\t{count}\t{', '.join(columns)}\n")
        return
    if args.action == "rows":
        equal = dict(_pair(text) for text in args.where)
        for row in inspect.rows(database, args.table, equal, args.limit or None):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    found, columns = inspect.rows(database, args.table), inspect.columns(database, args.table)
    if args.output:
        with _written(db, Path(args.output), args.force) as handle:
            _export(found, columns, args.format, handle)
    else:
        _export(found, columns, args.format, out)


@contextlib.contextmanager
def _written(db: Path, target: Path, force: bool) -> Iterator[TextIO]:
    """A text file to write `target` through: a new file beside it, readable by its owner only
    (an export holds every profile's data), renamed over it once written, removed if the writing
    fails, so that a failed export leaves what was there (`_check_output`)."""
    _check_output(db, target, force, "an export")
    partial = scratch_beside(target)
    try:
        with open(partial, "w", newline="", encoding="utf-8") as handle:
            yield handle
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _check_output(db: Path, target: Path, force: bool, what: str) -> None:
    """Refuses a file to write `what` (a backup, an export) to: the database or one of its -wal,
    -shm, -journal files, a folder or device (whatever `force` says), or an existing file
    without `force`."""
    resolved = db.resolve()
    if target.resolve() in {resolved, *(resolved.with_name(resolved.name + s) for s in ("-wal", "-shm", "-journal"))}:
        raise ValueError(f"{what} cannot be written over the database or its files")
    if target.exists() and not target.is_file():
        raise ValueError(f"{target} is {backups.kind(target)}: {what} is written to a file of its own")
    if target.exists() and not force:
        raise ValueError(f"{target} exists; choose another name or say --force")


def _pair(text: str) -> tuple[str, str]:
    column, equals, value = text.partition("=")
    if not equals or not column:
        raise ValueError(f"--where takes COLUMN=VALUE, not {text!r}")
    return column, value


def _export(found: Iterator[dict[str, Any]], columns: list[str], form: str, out: TextIO) -> None:
    if form == "json":
        out.write(json.dumps(list(found), ensure_ascii=False) + "\n")
    elif form == "ndjson":
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in found)
    else:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(found)


def _tokens(settings: Settings, args: argparse.Namespace) -> str:
    from audiences_server import logs
    from audiences_server.engine.engine import Engine

    logs.configure("console", LOG_LEVEL)
    engine = Engine(settings, saved_clock=True)  # the server's time, a manual clock's too
    try:
        if args.action == "revoke":
            row = engine.auth.revoke(args.token_id)
            engine.versions.record(row.space_id, LOCAL_ACTOR, "revoke", "token", row.public_id,
                                   {"scope": row.scope, "label": row.label})
            return f"revoked {row.public_id} ({row.scope} token of {row.space_name})"
        now = engine.clock.now_ms()
        lines = [f"{t.public_id}\t{t.scope}\t{t.label or '-'}\tcreated {_time(t.created_ms)}\texpires"
                 f" {_time(t.expires_ms)}\tlast used {_time(t.last_used_ms)}\t{_state(t, now)}"
                 for t in engine.auth.tokens(args.space, 0, -1)]
        return "\n".join(lines) or f"space {args.space} has no token"
    finally:
        engine.close()


def _time(ms: int | None) -> str:
    return "never" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _state(token: Any, now_ms: int) -> str:
    if token.revoked_ms is not None:
        return "revoked"
    return "expired" if token.expires_ms is not None and now_ms >= token.expires_ms else "active"
