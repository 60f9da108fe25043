"""Spaces (tenants) and their tokens. Only token hashes are stored."""

from __future__ import annotations

from dataclasses import dataclass

import apsw


@dataclass(frozen=True)
class Space:
    """A tenant."""

    space_id: int
    name: str


@dataclass(frozen=True)
class Grant:
    """What a token allows: one scope in one space."""

    space_id: int
    space_name: str
    scope: str
    label: str = ""


def create_space(conn: apsw.Connection, name: str, now_ms: int) -> Space:
    """Creates a space; the caller checks the name is free."""
    conn.execute("INSERT INTO spaces (name, created_ms) VALUES (?, ?)", (name, now_ms))
    return Space(conn.last_insert_rowid(), name)


def find_space(conn: apsw.Connection, name: str) -> Space | None:
    """The space of that name, if any."""
    row = conn.execute("SELECT space_id, name FROM spaces WHERE name = ?", (name,)).fetchone()
    return Space(row[0], row[1]) if row else None


def list_spaces(conn: apsw.Connection) -> list[Space]:
    """Every space, oldest first."""
    return [Space(r[0], r[1]) for r in conn.execute("SELECT space_id, name FROM spaces ORDER BY space_id")]


def add_token(conn: apsw.Connection, space_id: int, scope: str, token_hash: str, label: str, now_ms: int) -> None:
    """Records a token by its hash."""
    conn.execute(
        "INSERT INTO tokens (space_id, scope, token_hash, label, created_ms) VALUES (?, ?, ?, ?, ?)",
        (space_id, scope, token_hash, label, now_ms),
    )


def find_grant(conn: apsw.Connection, token_hash: str) -> Grant | None:
    """The space and scope a token hash grants, if it is known."""
    row = conn.execute(
        "SELECT t.space_id, s.name, t.scope, t.label FROM tokens t JOIN spaces s USING (space_id)"
        " WHERE t.token_hash = ?",
        (token_hash,),
    ).fetchone()
    return Grant(row[0], row[1], row[2], row[3]) if row else None


def server_key(conn: apsw.Connection, name: str) -> bytes:
    """A secret the server made for itself at its first migration (e.g. the page-token key)."""
    row = conn.execute("SELECT value FROM server_keys WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise LookupError(f"server key {name!r} is missing; the database was not migrated")
    return bytes(row[0])
