"""Writing and reading stored tracking calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import apsw

from audiences_server.core.tracking import Call

_INSERT = """
    INSERT INTO events (space_id, message_id, type, event, user_id, anonymous_id, group_id,
                        ts, received_ms, body, context, extra)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# SQLite allows 32k bound variables; stay well under it when asking which ids exist.
_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class StoredCalls:
    """What one insert job did: which positions were stored and which were duplicates."""

    accepted: list[int]
    duplicates: list[int]


def _existing_ids(conn: apsw.Connection, space_id: int, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start:start + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT message_id FROM events WHERE space_id = ? AND message_id IN ({marks})"
        found.update(row[0] for row in conn.execute(sql, (space_id, *chunk)))
    return found


def insert_calls(conn: apsw.Connection, space_id: int, calls: Sequence[Call]) -> StoredCalls:
    """Stores the calls that are not duplicates, by `(space, messageId)`.

    A repeat of an id already stored, or of an earlier call in the same list, is a duplicate.
    Runs inside the writer's transaction.
    """
    existing = _existing_ids(conn, space_id, [c.message_id for c in calls])
    accepted: list[int] = []
    duplicates: list[int] = []
    rows = []
    for index, call in enumerate(calls):
        if call.message_id in existing:
            duplicates.append(index)
            continue
        existing.add(call.message_id)
        accepted.append(index)
        rows.append((
            space_id, call.message_id, call.type, call.event, call.user_id, call.anonymous_id,
            call.group_id, call.timestamp_ms, call.received_ms, call.body_json, call.context_json,
            call.extra_json,
        ))
    conn.executemany(_INSERT, rows)
    return StoredCalls(accepted, duplicates)


def count_events(conn: apsw.Connection, space_id: int) -> int:
    """How many calls the space has stored."""
    row = conn.execute("SELECT count(*) FROM events WHERE space_id = ?", (space_id,)).fetchone()
    return int(row[0]) if row else 0
