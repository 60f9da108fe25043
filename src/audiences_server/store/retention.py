"""Retention: old events of spaces that keep them for a time, and old change-feed records.

Events are swept in arrival order, a window of `scan` arrivals per job, deleting those whose
space keeps events for a time and whose event time is older than it: no index on event time is
needed (every ingest would pay for one), and each job stays small whatever the table's size.
A feed is pruned from its oldest record forwards and stops at the first one still kept, so what
is left is always everything after a cursor: the newest pruned record id is kept, and a cursor
before it has missed records.
"""

from __future__ import annotations

import apsw

from audiences_server.store import sync
from audiences_server.store.db import scalar


def any_event_retention(conn: apsw.Connection) -> bool:
    """Whether some space keeps events for a limited time."""
    return bool(scalar(conn, "SELECT count(*) FROM spaces WHERE event_retention_ms IS NOT NULL"))


def sweep_events(conn: apsw.Connection, after_seq: int, scan: int, now_ms: int) -> tuple[int | None, int]:
    """Deletes the expired events among the `scan` arrivals after `after_seq`.

    Returns:
        Where the next window starts (None once the sweep passed the newest event), and how many
        events were deleted.
    """
    row = conn.execute("SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT 1 OFFSET ?",
                       (after_seq, scan - 1)).fetchone()
    upto = int(row[0]) if row else int(scalar(conn, "SELECT coalesce(max(seq), 0) FROM events"))
    conn.execute(
        "WITH kept(space_id, cutoff) AS (SELECT space_id, ? - event_retention_ms FROM spaces"
        " WHERE event_retention_ms IS NOT NULL)"
        " DELETE FROM events WHERE seq > ? AND seq <= ?"
        " AND ts < (SELECT cutoff FROM kept WHERE kept.space_id = events.space_id)",
        (now_ms, after_seq, upto),
    )
    return (upto if row else None), int(conn.changes())


def feeds(conn: apsw.Connection) -> list[tuple[int, int]]:
    """Every feed destination with how long it keeps records: (destination id, retention ms)."""
    return [(int(d), int(r)) for d, r in conn.execute(
        "SELECT destination_id, json_extract(config, '$.retention_ms') FROM destinations WHERE kind = 'grpc_feed'")]


def prune_feed(conn: apsw.Connection, destination_id: int, before_ms: int, limit: int) -> int:
    """Removes up to `limit` of a feed's oldest records created before `before_ms`, stopping at
    the first one still kept; returns how many were removed."""
    rows = list(conn.execute(
        "SELECT record_id, created_ms FROM feed_records WHERE destination_id = ? ORDER BY record_id LIMIT ?",
        (destination_id, limit)))
    expired = [record_id for record_id, created in _prefix(rows, before_ms)]
    if not expired:
        return 0
    sync.count_acknowledged_removal(conn, "f.destination_id = ? AND f.record_id <= ?", (destination_id, expired[-1]))
    # Unread records of a profile whose deletion waits for its exits will never be read: counted
    # as that deletion's undelivered exits now (its wait, which sees only records still there,
    # would end as if they had been read).
    conn.execute(
        "WITH RECURSIVE family(deletion_id, profile_id) AS (SELECT deletion_id, profile_id FROM profile_deletions"
        " WHERE state = 'PENDING' AND stage = 'exits' UNION SELECT f.deletion_id, m.merged_id FROM merges m"
        " JOIN family f ON m.survivor_id = f.profile_id),"
        " lost(deletion_id, n) AS (SELECT family.deletion_id, count(*) FROM feed_records r"
        " JOIN destinations d USING (destination_id) JOIN family ON r.profile_id = family.profile_id"
        " WHERE r.destination_id = ?1 AND r.record_id <= ?2 AND r.record_id > d.feed_acked GROUP BY family.deletion_id)"
        " UPDATE profile_deletions SET exits_undelivered = exits_undelivered + lost.n FROM lost"
        " WHERE profile_deletions.deletion_id = lost.deletion_id", (destination_id, expired[-1]))
    conn.execute("DELETE FROM feed_records WHERE destination_id = ? AND record_id <= ?", (destination_id, expired[-1]))
    conn.execute(
        "INSERT INTO feed_pruned (destination_id, through_record) VALUES (?, ?) ON CONFLICT (destination_id)"
        " DO UPDATE SET through_record = max(through_record, excluded.through_record)",
        (destination_id, expired[-1]))
    return len(expired)


def _prefix(rows: list[tuple[int, int]], before_ms: int) -> list[tuple[int, int]]:
    """The leading rows created before `before_ms`."""
    for index, (_, created) in enumerate(rows):
        if created >= before_ms:
            return rows[:index]
    return rows


def pruned_through(conn: apsw.Connection, destination_id: int) -> int:
    """The newest record retention removed from a feed, 0 if none."""
    row = conn.execute("SELECT through_record FROM feed_pruned WHERE destination_id = ?", (destination_id,)).fetchone()
    return int(row[0]) if row else 0
