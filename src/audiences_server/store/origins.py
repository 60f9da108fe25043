"""The web origins whose pages may send a space's tracking calls from a browser (CORS)."""

from __future__ import annotations

import apsw


def set_origins(conn: apsw.Connection, space_id: int, origins: list[str]) -> None:
    """Replaces the space's allowed origins."""
    conn.execute("DELETE FROM space_origins WHERE space_id = ?", (space_id,))
    conn.executemany("INSERT INTO space_origins (space_id, origin) VALUES (?, ?)",
                     [(space_id, origin) for origin in origins])


def space_origins(conn: apsw.Connection, space_id: int) -> list[str]:
    """The space's allowed origins, in order."""
    return [row[0] for row in conn.execute(
        "SELECT origin FROM space_origins WHERE space_id = ? ORDER BY origin", (space_id,))]


def all_origins(conn: apsw.Connection) -> list[tuple[int, str]]:
    """Every space's allowed origins, as (space id, origin)."""
    return [(row[0], row[1]) for row in conn.execute("SELECT space_id, origin FROM space_origins")]
