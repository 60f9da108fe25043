"""Versioned schema migrations, applied in order at start.

Each migration is a named function of a connection; it runs in the same transaction as the row
that records it, so a crash never leaves a half-applied migration behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import apsw
import structlog

from audiences_server.store.db import connect

log = structlog.get_logger(__name__)

Migration = Callable[[apsw.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(name: str) -> Callable[[Migration], Migration]:
    """Registers a migration; they run in the order they are declared."""

    def register(fn: Migration) -> Migration:
        MIGRATIONS.append((name, fn))
        return fn

    return register


@migration("0001_spaces_and_tokens")
def _spaces_and_tokens(conn: apsw.Connection) -> None:
    conn.execute("""
        CREATE TABLE spaces (
            space_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_ms INTEGER NOT NULL
        );
        CREATE TABLE tokens (
            token_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL REFERENCES spaces(space_id),
            scope TEXT NOT NULL CHECK (scope IN ('write', 'read', 'admin')),
            token_hash TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL
        );
    """)


@migration("0002_events")
def _events(conn: apsw.Connection) -> None:
    # `seq` is the arrival order. `profile_id` is filled in by identity resolution. The event
    # time `ts` and receive time are milliseconds since the epoch, UTC. `body` holds properties
    # (track, page, screen) or traits (identify, group) as JSON; `extra` the rest of the call.
    conn.execute("""
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            type TEXT NOT NULL,
            event TEXT,
            user_id TEXT,
            anonymous_id TEXT,
            group_id TEXT,
            profile_id INTEGER,
            ts INTEGER NOT NULL,
            received_ms INTEGER NOT NULL,
            body TEXT NOT NULL,
            context TEXT NOT NULL,
            extra TEXT NOT NULL
        );
        CREATE UNIQUE INDEX events_by_message ON events(space_id, message_id);
        CREATE INDEX events_by_profile ON events(profile_id, event, ts);
    """)


def applied(conn: apsw.Connection) -> set[str]:
    """Names of the migrations already applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_ms INTEGER NOT NULL)"
    )
    return {row[0] for row in conn.execute("SELECT name FROM _migrations")}


def migrate(conn: apsw.Connection, now_ms: int) -> list[str]:
    """Applies every migration not applied yet; returns their names."""
    done = applied(conn)
    ran = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with conn:
            fn(conn)
            conn.execute("INSERT INTO _migrations (name, applied_ms) VALUES (?, ?)", (name, now_ms))
        log.info("migration_applied", name=name)
        ran.append(name)
    return ran


def prepare(path: Path, synchronous: str, now_ms: int) -> list[str]:
    """Creates the database file if needed and brings its schema up to date."""
    conn = connect(path, synchronous=synchronous)
    try:
        return migrate(conn, now_ms)
    finally:
        conn.close()
