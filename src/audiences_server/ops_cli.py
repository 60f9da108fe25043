"""The operator's commands of `audiences-server` that need no running server: backup and
restore, looking into the database (`db`), and listing and revoking tokens.

`backup` and `db` run beside a serving server (they only read); `restore` refuses while one holds
the database.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from audiences_server.security import InstanceLock
from audiences_server.settings import Settings, add_arguments
from audiences_server.store import backup as backups
from audiences_server.store import inspect

COMMANDS = ("backup", "restore", "db")
TOKEN_ACTIONS = ("list", "revoke")


def register(commands: Any, tokens: Any) -> None:
    """Adds `backup`, `restore`, `db tables|rows|export`, and `tokens list|revoke`."""
    backup = commands.add_parser("backup", help="copy the database while the server runs (SQLite's online backup)")
    backup.add_argument("path", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace an existing file")
    add_arguments(backup)
    restore = commands.add_parser("restore", help="replace the database with a backup (the server must be stopped)")
    restore.add_argument("path", help="the backup file to read")
    add_arguments(restore)
    db = commands.add_parser("db", help="look into the database, read-only").add_subparsers(dest="action",
                                                                                            required=True)
    add_arguments(db.add_parser("tables", help="each table with its row count and columns"))
    rows = db.add_parser("rows", help="a table's rows as JSON lines (secrets blanked)")
    rows.add_argument("table")
    rows.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE", help="keep rows where the"
                      " column equals the value (as text); repeatable")
    rows.add_argument("--limit", type=int, default=100, help="at most this many rows (default 100; 0: all)")
    add_arguments(rows)
    export = db.add_parser("export", help="a whole table as CSV, JSON or JSON lines (secrets blanked)")
    export.add_argument("table")
    export.add_argument("--format", choices=("csv", "json", "ndjson"), default="csv")
    export.add_argument("--output", "-o", help="write to this file (default: standard output)")
    add_arguments(export)
    listing = tokens.add_parser("list", help="a space's tokens: id, scope, label, times, state; never the secret")
    listing.add_argument("--space", required=True)
    add_arguments(listing)
    revoke = tokens.add_parser("revoke", help="revoke a token by its id (tok_…); a running server refuses it"
                               " within 5 seconds (at once through the API)")
    revoke.add_argument("token_id")
    add_arguments(revoke)


def handles(args: argparse.Namespace) -> bool:
    """Whether the command is one of these."""
    return args.command in COMMANDS or (args.command == "tokens" and args.action in TOKEN_ACTIONS)


def run(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
    """Runs one of these commands.

    Raises:
        ValueError, OSError: the command was refused; the message says why.
    """
    if args.command == "backup":
        out.write(_backup(settings.db, Path(args.path), args.force) + "\n")
    elif args.command == "restore":
        out.write(_restore(settings, Path(args.path)) + "\n")
    elif args.command == "db":
        _db(settings.db, args, out)
    else:
        out.write(_tokens(settings, args) + "\n")


def _backup(db: Path, target: Path, force: bool) -> str:
    if target.resolve() in {db.resolve(), *(db.resolve().with_name(db.name + s) for s in ("-wal", "-shm"))}:
        raise ValueError("the backup cannot be written over the database itself")
    if target.exists() and not force:
        raise ValueError(f"{target} exists; choose another name or say --force")
    size = backups.backup(db, target)
    return f"backed up {db} to {target} ({size:,} bytes)"


def _restore(settings: Settings, source: Path) -> str:
    try:
        lock = InstanceLock.take(settings.db)
    except OSError:
        raise OSError(f"a server is running on {settings.db}; stop it before restoring") from None
    try:
        size = backups.restore(source, settings.db, settings.synchronous)
    finally:
        lock.release()
    return f"restored {source} into {settings.db} ({size:,} bytes); start the server to apply any newer migrations"


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
        with open(args.output, "w", newline="", encoding="utf-8") as handle:
            _export(found, columns, args.format, handle)
    else:
        _export(found, columns, args.format, out)


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

    logs.configure("console", "warning")
    engine = Engine(settings)
    try:
        if args.action == "revoke":
            row = engine.auth.revoke(args.token_id)
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
