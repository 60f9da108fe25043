"""Tokens as operators see them: listed without their secrets, revoked, stamped when used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import apsw


@dataclass(frozen=True)
class TokenRow:
    """A stored token, its hash left out."""

    token_id: int
    public_id: str
    space_id: int
    space_name: str
    scope: str
    label: str
    created_ms: int
    expires_ms: int | None
    revoked_ms: int | None
    last_used_ms: int | None


_SELECT = (
    "SELECT t.token_id, t.public_id, t.space_id, s.name, t.scope, t.label, t.created_ms, t.expires_ms,"
    " t.revoked_ms, t.last_used_ms FROM tokens t JOIN spaces s USING (space_id)"
)


def tokens_of(conn: apsw.Connection, space_id: int, after_id: int, limit: int) -> list[TokenRow]:
    """A space's tokens after an id, oldest first."""
    return [TokenRow(*r) for r in conn.execute(
        f"{_SELECT} WHERE t.space_id = ? AND t.token_id > ? ORDER BY t.token_id LIMIT ?", (space_id, after_id, limit))]


def token(conn: apsw.Connection, public_id: str) -> TokenRow | None:
    """One token by its public id (`tok_…`)."""
    row = conn.execute(f"{_SELECT} WHERE t.public_id = ?", (public_id,)).fetchone()
    return TokenRow(*row) if row else None


def standing(conn: apsw.Connection, token_id: int) -> tuple[int | None, int | None] | None:
    """A token's revocation and expiry times by its internal id; None once it is gone."""
    row = conn.execute("SELECT revoked_ms, expires_ms FROM tokens WHERE token_id = ?", (token_id,)).fetchone()
    return None if row is None else (row[0], row[1])


def revoke(conn: apsw.Connection, token_id: int, now_ms: int) -> None:
    """Marks a token revoked, keeping the first revocation time."""
    conn.execute("UPDATE tokens SET revoked_ms = coalesce(revoked_ms, ?) WHERE token_id = ?", (now_ms, token_id))


def mark_used(conn: apsw.Connection, used: Mapping[int, int]) -> None:
    """Records when tokens were last used (each only moves forwards)."""
    conn.executemany(
        "UPDATE tokens SET last_used_ms = max(coalesce(last_used_ms, 0), ?) WHERE token_id = ?",
        [(at, token_id) for token_id, at in used.items()],
    )


def labelled(conn: apsw.Connection, label: str) -> list[int]:
    """The tokens with this label that are not revoked."""
    return [int(r) for (r,) in conn.execute(
        "SELECT token_id FROM tokens WHERE label = ? AND revoked_ms IS NULL ORDER BY token_id", (label,))]


def relabel(conn: apsw.Connection, old: str, new: str) -> None:
    """Gives the tokens labelled `old` the label `new`."""
    conn.execute("UPDATE tokens SET label = ? WHERE label = ?", (new, old))
