"""Writing and reading stored tracking calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import apsw

from audiences_server.core.tracking import Call
from audiences_server.store.db import in_chunks, scalar

_INSERT = """
    INSERT INTO events (seq, space_id, message_id, type, event, user_id, anonymous_id, group_id,
                        profile_id, ts, received_ms, body, context, extra, source_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


@dataclass(frozen=True)
class StoredCalls:
    """What one insert job did: which positions were stored, which were duplicates, and which
    were dropped for carrying a suppressed identifier."""

    accepted: list[int]
    duplicates: list[int]
    suppressed: list[int] = field(default_factory=list)


def _existing_ids(conn: apsw.Connection, space_id: int, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for marks, chunk in in_chunks(ids):
        sql = f"SELECT message_id FROM events WHERE space_id = ? AND message_id IN ({marks})"
        found.update(row[0] for row in conn.execute(sql, (space_id, *chunk)))
    return found


def split_duplicates(conn: apsw.Connection, space_id: int, calls: Sequence[Call]) -> StoredCalls:
    """Sorts calls into new ones and duplicates, by `(space, messageId)`.

    A repeat of an id already stored, or of an earlier call in the same list, is a duplicate.
    """
    existing = _existing_ids(conn, space_id, [c.message_id for c in calls])
    accepted: list[int] = []
    duplicates: list[int] = []
    for index, call in enumerate(calls):
        if call.message_id in existing:
            duplicates.append(index)
        else:
            existing.add(call.message_id)
            accepted.append(index)
    return StoredCalls(accepted, duplicates)


def next_seq(conn: apsw.Connection) -> int:
    """The arrival number the next stored call gets (the writer is the only one inserting)."""
    return int(scalar(conn, "SELECT max(seq) FROM events") or 0) + 1


def insert_calls(
    conn: apsw.Connection,
    space_id: int,
    calls: Sequence[Call],
    profile_ids: Sequence[int | None],
    first_seq: int,
    source_id: str = "",
) -> None:
    """Stores calls with their resolved profiles and arrival numbers `first_seq`, `first_seq + 1`, …"""
    conn.executemany(
        _INSERT,
        [
            (
                first_seq + i,
                space_id,
                c.message_id,
                c.type,
                c.event,
                c.user_id,
                c.anonymous_id,
                c.group_id,
                profile_ids[i],
                c.timestamp_ms,
                c.received_ms,
                c.body_json,
                c.context_json,
                c.extra_json,
                source_id,
            )
            for i, c in enumerate(calls)
        ],
    )


def count_events(conn: apsw.Connection, space_id: int) -> int:
    """How many calls the space has stored."""
    row = conn.execute("SELECT count(*) FROM events WHERE space_id = ?", (space_id,)).fetchone()
    return int(row[0]) if row else 0
