"""Suppressed identifiers: calls carrying one are dropped at ingest (docs/operations.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import apsw

# (collection, id type, id value)
SuppressedId = tuple[str, str, str]


@dataclass(frozen=True)
class SuppressionRow:
    """One suppressed identifier and the deletion that suppressed it."""

    collection: str
    id_type: str
    id_value: str
    created_ms: int
    deletion_public_id: str


def of_space(conn: apsw.Connection, space_id: int) -> frozenset[SuppressedId]:
    """Every suppressed identifier of a space (the ingest check holds them in memory)."""
    return frozenset(
        (c, t, v) for c, t, v in conn.execute(
            "SELECT collection, id_type, id_value FROM suppressions WHERE space_id = ?", (space_id,))
    )


def add(conn: apsw.Connection, space_id: int, ids: Iterable[SuppressedId], deletion_id: int, now_ms: int) -> int:
    """Suppresses identifiers (one already suppressed keeps its first deletion); returns how many are new."""
    added = 0
    for collection, id_type, value in ids:
        conn.execute(
            "INSERT OR IGNORE INTO suppressions (space_id, collection, id_type, id_value, deletion_id, created_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (space_id, collection, id_type, value, deletion_id, now_ms),
        )
        added += int(conn.changes())
    return added


def page(conn: apsw.Connection, space_id: int, after: SuppressedId | None, limit: int) -> list[SuppressionRow]:
    """A space's suppressions after one, by collection, type and value."""
    collection, id_type, value = after or ("", "", "")
    return [SuppressionRow(*r) for r in conn.execute(
        "SELECT s.collection, s.id_type, s.id_value, s.created_ms, coalesce(d.public_id, '') FROM suppressions s"
        " LEFT JOIN profile_deletions d USING (deletion_id) WHERE s.space_id = ?"
        " AND (s.collection, s.id_type, s.id_value) > (?, ?, ?)"
        " ORDER BY s.collection, s.id_type, s.id_value LIMIT ?",
        (space_id, collection, id_type, value, limit))]


def remove(conn: apsw.Connection, space_id: int, suppressed: SuppressedId) -> bool:
    """Lifts one suppression; returns whether there was one."""
    conn.execute("DELETE FROM suppressions WHERE space_id = ? AND collection = ? AND id_type = ? AND id_value = ?",
                 (space_id, *suppressed))
    return bool(conn.changes())
