"""What waits in the database, read when the metrics are scraped: the evaluator's and the destinations'."""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from audiences_server.store.db import scalar


def anything_waiting(conn: apsw.Connection, now_ms: int) -> bool:
    """Whether the evaluator has work now: a touched profile, a next change time come, or a
    backfill under way."""
    return bool(scalar(conn, "SELECT EXISTS (SELECT 1 FROM touches) OR EXISTS (SELECT 1 FROM due INDEXED BY due_by_time"
                             " WHERE due_ms <= ?) OR EXISTS (SELECT 1 FROM computations WHERE status = 'BACKFILLING'"
                             " AND enabled = 1)", (now_ms,)))


def due_waiting(conn: apsw.Connection, now_ms: int, space_id: int | None = None) -> int:
    """(Computation, profile) pairs whose next change time is at or before now (of one space's
    profiles, when given: the due table is keyed by profile)."""
    if space_id is None:
        return int(scalar(conn, "SELECT count(*) FROM due INDEXED BY due_by_time, json_each(due.times) AS t"
                                " WHERE due.due_ms <= ?1 AND t.value <= ?1", (now_ms,)))
    return int(scalar(conn, "SELECT count(*) FROM due AS d JOIN profiles AS p ON p.profile_id = d.profile_id,"
                            " json_each(d.times) AS t WHERE p.space_id = ?2 AND d.due_ms <= ?1 AND t.value <= ?1",
                      (now_ms, space_id)))


def oldest_due(conn: apsw.Connection, space_id: int | None = None) -> int | None:
    """The earliest stored due time (of one space's profiles, when given)."""
    if space_id is None:
        found = scalar(conn, "SELECT min(due_ms) FROM due")
    else:
        found = scalar(conn, "SELECT min(d.due_ms) FROM due AS d JOIN profiles AS p ON p.profile_id = d.profile_id"
                             " WHERE p.space_id = ?", (space_id,))
    return None if found is None else int(found)


def due_lag_ms(conn: apsw.Connection, now_ms: int, space_id: int | None = None) -> int:
    """How late the oldest waiting due pair is (0 when none waits; of one space, when given)."""
    oldest = oldest_due(conn, space_id)
    return 0 if oldest is None else max(0, now_ms - oldest)


@dataclass(frozen=True)
class DestinationBacklog:
    """What one destination has queued: not yet delivered (or read), parked, and the oldest's time."""

    space: str
    key: str
    kind: str
    waiting: int
    dead: int
    oldest_ms: int | None


# Webhook and Segment destinations queue `deliveries` (parked ones are dead letters); a feed's
# queue is its records after the last one a consumer read. CSV destinations have no queue.
_BACKLOGS = """
SELECT s.name, d.key, d.kind,
    CASE WHEN d.kind = 'grpc_feed'
        THEN (SELECT count(*) FROM feed_records f WHERE f.destination_id = d.destination_id
              AND f.record_id > d.feed_acked)
        ELSE (SELECT count(*) FROM deliveries l WHERE l.destination_id = d.destination_id AND l.state != 'dead')
    END,
    (SELECT count(*) FROM deliveries l WHERE l.destination_id = d.destination_id AND l.state = 'dead'),
    CASE WHEN d.kind = 'grpc_feed'
        THEN (SELECT min(f.created_ms) FROM feed_records f WHERE f.destination_id = d.destination_id
              AND f.record_id > d.feed_acked)
        ELSE (SELECT min(l.created_ms) FROM deliveries l WHERE l.destination_id = d.destination_id
              AND l.state != 'dead')
    END
FROM destinations d JOIN spaces s USING (space_id)
WHERE d.kind != 'csv'
ORDER BY s.name, d.key
"""


def destination_backlogs(conn: apsw.Connection) -> list[DestinationBacklog]:
    """Every queueing destination's backlog, by space and key."""
    return [
        DestinationBacklog(space, key, kind, int(waiting), int(dead), None if oldest is None else int(oldest))
        for space, key, kind, waiting, dead, oldest in conn.execute(_BACKLOGS)
    ]
