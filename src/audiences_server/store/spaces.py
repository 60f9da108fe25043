"""Spaces (tenants) and their tokens. Only token hashes are stored."""

from __future__ import annotations

from dataclasses import dataclass

import apsw


@dataclass(frozen=True)
class Space:
    """A tenant, with its settings."""

    space_id: int
    name: str
    created_ms: int = 0
    event_retention_ms: int | None = None  # None: events are kept for ever


@dataclass(frozen=True)
class Grant:
    """What a token allows: one scope in one space, until it expires (if it does)."""

    space_id: int
    space_name: str
    scope: str
    label: str = ""
    token_id: int = 0
    expires_ms: int | None = None
    revoked_ms: int | None = None


_SPACE = "SELECT space_id, name, created_ms, event_retention_ms FROM spaces"


def create_space(conn: apsw.Connection, name: str, now_ms: int) -> Space:
    """Creates a space; the caller checks the name is free."""
    conn.execute("INSERT INTO spaces (name, created_ms) VALUES (?, ?)", (name, now_ms))
    return Space(conn.last_insert_rowid(), name, now_ms)


def find_space(conn: apsw.Connection, name: str) -> Space | None:
    """The space of that name, if any."""
    row = conn.execute(f"{_SPACE} WHERE name = ?", (name,)).fetchone()
    return Space(*row) if row else None


def space_by_id(conn: apsw.Connection, space_id: int) -> Space | None:
    """The space of that id, if any."""
    row = conn.execute(f"{_SPACE} WHERE space_id = ?", (space_id,)).fetchone()
    return Space(*row) if row else None


def list_spaces(conn: apsw.Connection, after_id: int = 0, limit: int = -1) -> list[Space]:
    """Spaces after an id, oldest first (every one without a limit)."""
    return [Space(*r) for r in conn.execute(f"{_SPACE} WHERE space_id > ? ORDER BY space_id LIMIT ?",
                                            (after_id, limit))]


def set_event_retention(conn: apsw.Connection, space_id: int, retention_ms: int | None) -> None:
    """How long a space keeps events (None: for ever)."""
    conn.execute("UPDATE spaces SET event_retention_ms = ? WHERE space_id = ?", (retention_ms, space_id))


def add_token(conn: apsw.Connection, space_id: int, scope: str, token_hash: str, label: str, now_ms: int,
              public_id: str, expires_ms: int | None = None) -> None:
    """Records a token by its hash."""
    conn.execute(
        "INSERT INTO tokens (space_id, scope, token_hash, label, created_ms, public_id, expires_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (space_id, scope, token_hash, label, now_ms, public_id, expires_ms),
    )


def find_grant(conn: apsw.Connection, token_hash: str) -> Grant | None:
    """The space and scope a token hash grants, if it is known (revoked or expired included)."""
    row = conn.execute(
        "SELECT t.space_id, s.name, t.scope, t.label, t.token_id, t.expires_ms, t.revoked_ms"
        " FROM tokens t JOIN spaces s USING (space_id) WHERE t.token_hash = ?",
        (token_hash,),
    ).fetchone()
    return Grant(*row) if row else None


def server_key(conn: apsw.Connection, name: str) -> bytes:
    """A secret the server made for itself at its first migration (e.g. the page-token key)."""
    row = conn.execute("SELECT value FROM server_keys WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise LookupError(f"server key {name!r} is missing; the database was not migrated")
    return bytes(row[0])
