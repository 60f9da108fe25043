"""What sync reads and writes: destinations, connections, delivery queues, the feed, dead letters."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import apsw
import orjson

from audiences_server.store.db import keep_id_floor, next_id_sql, scalar

# How far a connection `c` (of destination `d`) has taken the outbox: a CSV connection takes a
# record when its file is written past it, the others when they queue it.
TAKEN = "CASE d.kind WHEN 'csv' THEN c.written_cursor ELSE c.cursor END"


@dataclass(frozen=True)
class DestinationRow:
    """A stored destination; `config` and `policy` hold secrets and must not be echoed as stored."""

    destination_id: int
    space_id: int
    key: str
    public_id: str
    name: str
    kind: str
    enabled: bool
    config: dict[str, Any]
    policy: dict[str, Any]
    feed_acked: int
    created_ms: int
    updated_ms: int
    feed_removed_through: int = 0  # the newest feed record a deletion or a disconnection removed


@dataclass(frozen=True)
class ConnectionRow:
    """A stored connection, with what it needs to know of its computation."""

    connection_id: int
    destination_id: int
    computation_id: int
    options: dict[str, Any]
    phase: str
    cursor: int
    snapshot_after: int
    delivered_count: int
    last_error: str
    last_error_ms: int | None
    last_delivery_ms: int | None
    written_cursor: int
    written_ms: int
    created_ms: int
    updated_ms: int


_DESTINATION = (
    "destination_id, space_id, key, public_id, name, kind, enabled, config, policy, feed_acked, created_ms, updated_ms,"
    " feed_removed_through"
)
_CONNECTION = (
    "connection_id, destination_id, computation_id, options, phase, cursor, snapshot_after, delivered_count,"
    " last_error, last_error_ms, last_delivery_ms, written_cursor, written_ms, created_ms, updated_ms"
)


def _destination(row: Sequence[Any]) -> DestinationRow:
    values = list(row)
    values[6] = bool(values[6])
    values[7], values[8] = json.loads(values[7]), json.loads(values[8])
    return DestinationRow(*values)


def _connection(row: Sequence[Any]) -> ConnectionRow:
    values = list(row)
    values[3] = json.loads(values[3])
    return ConnectionRow(*values)


# -- destinations -----------------------------------------------------------------------------


def destination(conn: apsw.Connection, space_id: int, key: str) -> DestinationRow | None:
    """One destination by key."""
    row = conn.execute(
        f"SELECT {_DESTINATION} FROM destinations WHERE space_id = ? AND key = ?", (space_id, key)
    ).fetchone()
    return _destination(row) if row else None


def destination_by_id(conn: apsw.Connection, destination_id: int) -> DestinationRow | None:
    """One destination by id."""
    row = conn.execute(
        f"SELECT {_DESTINATION} FROM destinations WHERE destination_id = ?", (destination_id,)
    ).fetchone()
    return _destination(row) if row else None


def destinations(conn: apsw.Connection, space_id: int, after_key: str, limit: int) -> list[DestinationRow]:
    """A space's destinations after a key, by key."""
    return [
        _destination(r)
        for r in conn.execute(
            f"SELECT {_DESTINATION} FROM destinations WHERE space_id = ? AND key > ? ORDER BY key LIMIT ?",
            (space_id, after_key, limit),
        )
    ]


def all_destinations(conn: apsw.Connection) -> list[DestinationRow]:
    """Every destination of every space (for the delivery workers)."""
    return [_destination(r) for r in conn.execute(f"SELECT {_DESTINATION} FROM destinations ORDER BY destination_id")]


def insert_destination(
    conn: apsw.Connection, space_id: int, key: str, public_id: str, name: str, kind: str, enabled: bool,
    config: dict[str, Any], policy: dict[str, Any], now_ms: int,
) -> None:
    """Stores a new destination; the caller checks the key is free."""
    conn.execute(
        "INSERT INTO destinations (space_id, key, public_id, name, kind, enabled, config, policy, created_ms,"
        " updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (space_id, key, public_id, name, kind, int(enabled), json.dumps(config), json.dumps(policy), now_ms, now_ms),
    )


def update_destination(conn: apsw.Connection, row: DestinationRow, now_ms: int) -> None:
    """Stores a destination's editable fields."""
    conn.execute(
        "UPDATE destinations SET name = ?, enabled = ?, config = ?, policy = ?, updated_ms = ?"
        " WHERE destination_id = ?",
        (row.name, int(row.enabled), json.dumps(row.config), json.dumps(row.policy), now_ms, row.destination_id),
    )


def delete_destination(conn: apsw.Connection, destination_id: int) -> None:
    """Removes a destination with its connections, queues and feed."""
    for (connection_id,) in list(
        conn.execute("SELECT connection_id FROM connections WHERE destination_id = ?", (destination_id,))
    ):
        delete_connection(conn, connection_id)
    conn.execute("DELETE FROM destinations WHERE destination_id = ?", (destination_id,))


def ack_feed(conn: apsw.Connection, destination_id: int, record_id: int) -> None:
    """Records that a consumer read the feed up to a record."""
    conn.execute(
        "UPDATE destinations SET feed_acked = max(feed_acked, ?) WHERE destination_id = ?", (record_id, destination_id)
    )


# -- connections ------------------------------------------------------------------------------


def connection(conn: apsw.Connection, destination_id: int, computation_id: int) -> ConnectionRow | None:
    """One connection."""
    row = conn.execute(
        f"SELECT {_CONNECTION} FROM connections WHERE destination_id = ? AND computation_id = ?",
        (destination_id, computation_id),
    ).fetchone()
    return _connection(row) if row else None


def connection_by_id(conn: apsw.Connection, connection_id: int) -> ConnectionRow | None:
    """One connection by id."""
    row = conn.execute(f"SELECT {_CONNECTION} FROM connections WHERE connection_id = ?", (connection_id,)).fetchone()
    return _connection(row) if row else None


def connections_of(conn: apsw.Connection, destination_id: int) -> list[ConnectionRow]:
    """A destination's connections, oldest first."""
    return [
        _connection(r)
        for r in conn.execute(
            f"SELECT {_CONNECTION} FROM connections WHERE destination_id = ? ORDER BY connection_id", (destination_id,)
        )
    ]


def connections_of_space(conn: apsw.Connection, space_id: int) -> list[tuple[str, ConnectionRow]]:
    """A space's connections with their destination keys."""
    return [
        (r[0], _connection(r[1:]))
        for r in conn.execute(
            f"SELECT d.key, {', '.join('c.' + c.strip() for c in _CONNECTION.split(','))}"
            " FROM connections c JOIN destinations d USING (destination_id) WHERE d.space_id = ?",
            (space_id,),
        )
    ]


def insert_connection(
    conn: apsw.Connection, destination_id: int, computation_id: int, options: dict[str, Any], now_ms: int,
    connection_id: int | None = None,
) -> None:
    """Stores a new connection, reading the outbox from now on and snapshotting current values
    (with `connection_id` as its id, if given and free)."""
    cursor = latest_change(conn)
    if connection_id is not None and scalar(conn, "SELECT count(*) FROM connections WHERE connection_id = ?",
                                            (connection_id,)):
        connection_id = None
    if connection_id is None:
        # Past every id a connection ever had: a connection's id is in the message ids of what it
        # sends, so a reconnection given a removed one's id would send its first sync under the
        # ids the destination already has, and a receiver deduplicating on them drops it.
        connection_id = int(scalar(conn, "SELECT " + next_id_sql("connections", "connection_id")))
    conn.execute(
        "INSERT INTO connections (connection_id, destination_id, computation_id, options, phase, cursor, created_ms,"
        " updated_ms) VALUES (?, ?, ?, ?, 'INITIAL_SYNC', ?, ?, ?)",
        (connection_id, destination_id, computation_id, json.dumps(options), cursor, now_ms, now_ms),
    )


def update_connection_options(conn: apsw.Connection, connection_id: int, options: dict[str, Any], now_ms: int) -> None:
    """Stores what a connection sends."""
    conn.execute(
        "UPDATE connections SET options = ?, updated_ms = ? WHERE connection_id = ?",
        (json.dumps(options), now_ms, connection_id),
    )


def every_connection(conn: apsw.Connection) -> list[tuple[int, str, dict[str, Any], str, str]]:
    """Every connection of every space: its destination, the destination's kind and settings, and
    the connected computation's collection and key."""
    return [
        (destination_id, kind, json.loads(config), collection, key)
        for destination_id, kind, config, collection, key in conn.execute(
            "SELECT d.destination_id, d.kind, d.config, m.collection, m.key FROM connections AS c"
            " JOIN destinations AS d USING (destination_id) JOIN computations AS m USING (computation_id)"
        )
    ]


def connections_of_computation(conn: apsw.Connection, computation_id: int) -> list[tuple[int, str]]:
    """A computation's connections: (connection id, destination key), by destination key."""
    return [
        (int(connection_id), key)
        for connection_id, key in conn.execute(
            "SELECT c.connection_id, d.key FROM connections AS c JOIN destinations AS d"
            " ON d.destination_id = c.destination_id WHERE c.computation_id = ? ORDER BY d.key",
            (computation_id,),
        )
    ]


def delete_connection(conn: apsw.Connection, connection_id: int) -> None:
    """Removes a connection with its queue, dead letters and feed records."""
    conn.execute("DELETE FROM deliveries WHERE connection_id = ?", (connection_id,))
    note_feed_removal(conn, "connection_id = ?", (connection_id,))
    conn.execute("DELETE FROM feed_records WHERE connection_id = ?", (connection_id,))
    conn.execute("DELETE FROM connections WHERE connection_id = ?", (connection_id,))
    keep_id_floor(conn, "connections", connection_id)


def advance_connection(conn: apsw.Connection, connection_id: int, cursor: int, snapshot_after: int, live: bool) -> None:
    """Moves a connection's outbox cursor and snapshot position."""
    conn.execute(
        "UPDATE connections SET cursor = ?, snapshot_after = ?,"
        " phase = CASE WHEN ? THEN 'LIVE' ELSE phase END WHERE connection_id = ?",
        (cursor, snapshot_after, int(live), connection_id),
    )


def mark_written(conn: apsw.Connection, connection_id: int, cursor: int, now_ms: int) -> None:
    """Records that a CSV connection's file reflects the outbox up to `cursor`."""
    conn.execute(
        "UPDATE connections SET written_cursor = ?, written_ms = ?, phase = 'LIVE', last_delivery_ms = ?"
        " WHERE connection_id = ?",
        (cursor, now_ms, now_ms, connection_id),
    )


def write_failed(conn: apsw.Connection, connection_id: int, error: str, now_ms: int) -> None:
    """Records that writing a CSV connection's file failed: the error, and when it was tried, so
    the next attempt waits for the destination's interval."""
    conn.execute(
        "UPDATE connections SET last_error = ?, last_error_ms = ?, written_ms = ? WHERE connection_id = ?",
        (error, now_ms, now_ms, connection_id),
    )


# -- the outbox and current values ------------------------------------------------------------


def changes_after(
    conn: apsw.Connection, computation_id: int, after: int, upto: int, limit: int
) -> list[tuple[int, int, str, str | None, str | None, int, int | None]]:
    """A computation's change records in (after, upto], oldest first; the last field is the
    user of a link change (`user_linked`, `user_unlinked`)."""
    return [
        (int(r[0]), int(r[1]), r[2], r[3], r[4], int(r[5]), r[6])
        for r in conn.execute(
            "SELECT change_id, profile_id, change, old_value, new_value, at_ms, user_id FROM changes"
            " WHERE computation_id = ? AND change_id > ? AND change_id <= ? ORDER BY change_id LIMIT ?",
            (computation_id, after, upto, limit),
        )
    ]


def latest_change(conn: apsw.Connection) -> int:
    """The newest change record's id, 0 if none."""
    return int(scalar(conn, "SELECT coalesce(max(change_id), 0) FROM changes"))


def latest_change_of(conn: apsw.Connection, computation_id: int) -> int:
    """The newest change record of one computation, 0 if none."""
    return int(scalar(conn, "SELECT coalesce(max(change_id), 0) FROM changes WHERE computation_id = ?",
                      (computation_id,)))


def current_values(
    conn: apsw.Connection, computation_id: int, audience: bool, after: int, limit: int
) -> list[tuple[int, str, int]]:
    """Members (or profiles with a value) after a profile id: id, value, since when."""
    sql = "SELECT profile_id, value, updated_ms FROM computed_values WHERE computation_id = ? AND profile_id > ?"
    if audience:
        sql += " AND value = 'true'"
    sql += " ORDER BY profile_id LIMIT ?"
    return [(int(p), v, int(t)) for p, v, t in conn.execute(sql, (computation_id, after, limit))]


def space_name(conn: apsw.Connection, space_id: int) -> str:
    """A space's name."""
    return str(scalar(conn, "SELECT name FROM spaces WHERE space_id = ?", (space_id,)))


# -- queues -----------------------------------------------------------------------------------


def insert_items(
    conn: apsw.Connection, table: str, connection: ConnectionRow, items: list[tuple[int, str, dict[str, Any]]],
    now_ms: int,
) -> None:
    """Queues records (profile, message id, record) for a connection's destination.

    A delivery of a profile merged into another is queued as the survivor's, behind the
    survivor's own and those moved to it at the merge (`move_deliveries`): one queue per person.
    """
    if table == "deliveries":
        conn.executemany(
            "INSERT INTO deliveries (connection_id, destination_id, profile_id, message_id, record, state, next_ms,"
            " created_ms) VALUES (?1, ?2, coalesce((SELECT merged_into FROM profiles WHERE profile_id = ?3), ?3),"
            " ?4, ?5, 'pending', 0, ?6)",
            [(connection.connection_id, connection.destination_id, p, m, _text(r), now_ms) for p, m, r in items],
        )
    else:
        conn.executemany(
            "INSERT INTO feed_records (connection_id, destination_id, profile_id, message_id, record, created_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(connection.connection_id, connection.destination_id, p, m, _text(r), now_ms) for p, m, r in items],
        )


def _text(record: dict[str, Any]) -> str:
    """A record as stored: JSON text, by orjson (several times cheaper than json.dumps), or by
    json.dumps for what orjson refuses (integers past 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(record).decode()
    except orjson.JSONEncodeError:
        return json.dumps(record)


@dataclass(frozen=True)
class Delivery:
    """A queued delivery."""

    delivery_id: int
    connection_id: int
    profile_id: int
    message_id: str
    record: dict[str, Any]
    attempts: int
    first_attempt_ms: int | None
    created_ms: int
    next_ms: int = 0
    """When it is due; the deliveries of a write that failed share it (engine.sync.acks)."""


def move_deliveries(conn: apsw.Connection, survivor: int, merged: int) -> None:
    """A merged profile's queued deliveries become the survivor's, keeping their places (their
    ids): the survivor's later changes then wait behind them (`due_heads`), so a receiver gets
    the person's changes in order across the merge."""
    conn.execute(
        "UPDATE deliveries SET profile_id = ?1 WHERE connection_id IN (SELECT connection_id FROM connections)"
        " AND profile_id = ?2",
        (survivor, merged),
    )


def due_heads(conn: apsw.Connection, destination_id: int, now_ms: int, limit: int,
              skipped: Collection[int] = ()) -> list[Delivery]:
    """Due deliveries that are first in their profile's queue, oldest first, less `skipped`
    (those in flight, whose records are not decoded again).

    A delivery waits while an older one of the same connection and profile is queued, retrying
    or parked: that is what keeps each profile's changes in order. The queue is walked in order
    (deliveries_by_destination) and the walk stops at the limit, however long the queue. The
    deliveries of a write that failed, which share their next attempt's time (engine.sync.acks),
    are read whole, past the limit if need be (older ones, redriven say, may have filled it), so
    that a batching sink can send them again as they were.
    """
    select = ("SELECT d.delivery_id, d.connection_id, d.profile_id, d.message_id, d.record, d.attempts,"
              " d.first_attempt_ms, d.created_ms, d.next_ms FROM deliveries d")
    rows = list(conn.execute(
        f"{select} INDEXED BY deliveries_by_destination WHERE d.destination_id = ? AND d.state != 'dead'"
        f" AND d.next_ms <= ? AND {_FIRST_OF_ITS_PROFILE} ORDER BY d.delivery_id LIMIT ?",
        (destination_id, now_ms, limit),
    ))
    retried = next((r for r in rows if r[5] and r[0] not in skipped), None)
    if retried is not None and len(rows) == limit:
        read = {r[0] for r in rows}
        rows += [r for r in conn.execute(
            f"{select} WHERE d.destination_id = ? AND d.state = 'retrying' AND d.next_ms = ?"
            f" AND {_FIRST_OF_ITS_PROFILE}",
            (destination_id, retried[8]),
        ) if r[0] not in read]
        rows.sort(key=lambda r: int(r[0]))
    return [
        Delivery(int(r[0]), int(r[1]), int(r[2]), r[3], json.loads(r[4]), int(r[5]), r[6], int(r[7]), int(r[8]))
        for r in rows
        if r[0] not in skipped
    ]


# A delivery `d` that no older one of its connection and profile holds back (see `due_heads`).
_FIRST_OF_ITS_PROFILE = (
    "NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.connection_id = d.connection_id"
    " AND e.profile_id = d.profile_id AND e.delivery_id < d.delivery_id)"
)


def next_due_ms(conn: apsw.Connection, destination_id: int, in_flight: Collection[int] = ()) -> int | None:
    """When the destination's next delivery may be attempted: the earliest of those first in
    their profile's queue, as `due_heads` reads them, but those `in_flight`. One held behind an
    older one is not counted: behind a retry it is due after it, behind a write in flight once
    its answer comes (which wakes the worker), and behind a dead letter not until the letter is
    redriven or removed (which wakes it too). So a destination whose only queued changes are held
    or in flight sleeps instead of reading the queue again and again meanwhile."""
    flying = json.dumps(sorted(in_flight))
    # Per state, in the order of deliveries_due: the walk stops at the first delivery not held.
    found = [int(row[0]) for state in ("pending", "retrying") for row in conn.execute(
        "SELECT d.next_ms FROM deliveries d INDEXED BY deliveries_due WHERE d.destination_id = ? AND d.state = ?"
        f" AND {_FIRST_OF_ITS_PROFILE} AND d.delivery_id NOT IN (SELECT value FROM json_each(?))"
        " ORDER BY d.next_ms LIMIT 1", (destination_id, state, flying))]
    return min(found, default=None)


def delivered(conn: apsw.Connection, deliveries: Sequence[Delivery], now_ms: int) -> None:
    """Removes delivered deliveries and counts them on their connections."""
    conn.executemany("DELETE FROM deliveries WHERE delivery_id = ?", [(d.delivery_id,) for d in deliveries])
    counts: dict[int, int] = {}
    for d in deliveries:
        counts[d.connection_id] = counts.get(d.connection_id, 0) + 1
    conn.executemany(
        "UPDATE connections SET delivered_count = delivered_count + ?, last_delivery_ms = ? WHERE connection_id = ?",
        [(n, now_ms, c) for c, n in counts.items()],
    )


def failed(
    conn: apsw.Connection, delivery: Delivery, error: str, now_ms: int, next_ms: int | None
) -> None:
    """Records a failed attempt: retried at `next_ms`, or parked when that is None."""
    state = "dead" if next_ms is None else "retrying"
    conn.execute(
        "UPDATE deliveries SET state = ?, attempts = attempts + 1, next_ms = ?, last_error = ?,"
        " first_attempt_ms = coalesce(first_attempt_ms, ?), dead_ms = ? WHERE delivery_id = ?",
        (state, next_ms or 0, error, now_ms, now_ms if next_ms is None else None, delivery.delivery_id),
    )
    conn.execute(
        "UPDATE connections SET last_error = ?, last_error_ms = ? WHERE connection_id = ?",
        (error, now_ms, delivery.connection_id),
    )


def delivery_counts(conn: apsw.Connection, connection_id: int, now_ms: int) -> dict[str, int]:
    """A connection's queue by state, and the creation time of its oldest live delivery."""
    out = {"pending": 0, "retrying": 0, "dead": 0}
    for state, count in conn.execute(
        "SELECT state, count(*) FROM deliveries WHERE connection_id = ? GROUP BY state", (connection_id,)
    ):
        out[state] = int(count)
    oldest = scalar(
        conn, "SELECT min(created_ms) FROM deliveries WHERE connection_id = ? AND state != 'dead'", (connection_id,)
    )
    out["lag_ms"] = 0 if oldest is None else max(0, now_ms - int(oldest))
    return out


def feed_counts(conn: apsw.Connection, connection_id: int, acked: int, now_ms: int) -> tuple[int, int, int]:
    """A feed connection's records acknowledged and not yet acknowledged (of those kept: the
    connection's `delivered_count` holds the acknowledged ones removed since), and the age of its
    oldest record not yet acknowledged (0 when none waits)."""
    done = int(scalar(conn, "SELECT count(*) FROM feed_records WHERE connection_id = ? AND record_id <= ?",
                      (connection_id, acked)))
    row = conn.execute("SELECT count(*), min(created_ms) FROM feed_records WHERE connection_id = ? AND record_id > ?",
                       (connection_id, acked)).fetchone()
    waiting, oldest = row if row is not None else (0, None)
    return done, int(waiting), max(0, now_ms - oldest) if oldest is not None else 0


# -- dead letters -----------------------------------------------------------------------------


def dead_letters(
    conn: apsw.Connection, space_id: int, destination_id: int | None, connection_id: int | None, after: int,
    limit: int,
) -> list[tuple[Any, ...]]:
    """Parked deliveries, the oldest parked first (by id within the same time)."""
    sql = (
        "SELECT l.delivery_id, d.key, c.computation_id, l.profile_id, l.message_id, l.record, l.attempts,"
        " l.last_error, l.first_attempt_ms, l.dead_ms, l.connection_id FROM deliveries l"
        " JOIN connections c USING (connection_id) JOIN destinations d ON d.destination_id = l.destination_id"
        " WHERE d.space_id = ? AND l.state = 'dead' AND l.delivery_id > ?"
    )
    params: list[Any] = [space_id, after]
    if destination_id is not None:
        sql += " AND l.destination_id = ?"
        params.append(destination_id)
    if connection_id is not None:
        sql += " AND l.connection_id = ?"
        params.append(connection_id)
    sql += " ORDER BY l.delivery_id LIMIT ?"
    params.append(limit)
    return list(conn.execute(sql, params))


def redrive(conn: apsw.Connection, delivery_ids: Sequence[int]) -> int:
    """Puts parked deliveries back in the queue with a fresh count of attempts; returns how many."""
    moved = 0
    # One statement per id, counted one by one: after `executemany` the connection's change
    # count is only the last statement's.
    for delivery_id in dict.fromkeys(delivery_ids):
        conn.execute(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_ms = 0, dead_ms = NULL,"
            " first_attempt_ms = NULL WHERE delivery_id = ? AND state = 'dead'",
            (delivery_id,),
        )
        moved += int(conn.changes())
    return moved


# -- the feed ---------------------------------------------------------------------------------


def feed_after(conn: apsw.Connection, destination_id: int, after: int, limit: int) -> list[tuple[Any, ...]]:
    """Feed records after a record id: id, computation id, profile id, message id, record."""
    return list(
        conn.execute(
            "SELECT f.record_id, c.computation_id, f.profile_id, f.message_id, f.record FROM feed_records f"
            " JOIN connections c USING (connection_id) WHERE f.destination_id = ? AND f.record_id > ?"
            " ORDER BY f.record_id LIMIT ?",
            (destination_id, after, limit),
        )
    )


def feed_latest(conn: apsw.Connection, destination_id: int) -> int:
    """The feed's newest record id, 0 if none."""
    return int(scalar(conn, "SELECT coalesce(max(record_id), 0) FROM feed_records WHERE destination_id = ?",
                      (destination_id,)))


def feed_record_destination(conn: apsw.Connection, record_id: int) -> int | None:
    """The destination a kept feed record is of (None: no such record kept)."""
    found = conn.execute("SELECT destination_id FROM feed_records WHERE record_id = ?", (record_id,)).fetchone()
    return None if found is None else int(found[0])


def feed_oldest(conn: apsw.Connection, destination_id: int) -> int:
    """The feed's oldest kept record id, 0 if none."""
    return int(scalar(conn, "SELECT coalesce(min(record_id), 0) FROM feed_records WHERE destination_id = ?",
                      (destination_id,)))


def count_acknowledged_removal(conn: apsw.Connection, condition: str, params: tuple[Any, ...]) -> None:
    """Before feed records that match `condition` are removed (by retention, a deletion): their
    connections keep the count of those their consumer had acknowledged, so that a feed's
    `delivered_count` (those kept and acknowledged, and these) counts since connected and never
    goes down."""
    conn.execute(
        "UPDATE connections SET delivered_count = delivered_count + gone.acknowledged FROM (SELECT f.connection_id,"
        " count(*) AS acknowledged FROM feed_records AS f JOIN destinations AS d USING (destination_id)"
        f" WHERE {condition} AND f.record_id <= d.feed_acked GROUP BY f.connection_id) AS gone"
        " WHERE connections.connection_id = gone.connection_id", params)


def note_feed_removal(conn: apsw.Connection, condition: str, params: tuple[Any, ...]) -> None:
    """Before feed records that match `condition` are removed (by a deletion or a disconnection,
    not retention, which `feed_pruned` counts): each feed keeps the newest id it loses, so that a
    consumer's cursor naming it is still one the feed issued (`Feed.check_issued`), and their
    connections count those acknowledged (`count_acknowledged_removal`)."""
    count_acknowledged_removal(conn, condition, params)
    conn.execute(
        "UPDATE destinations SET feed_removed_through = max(feed_removed_through, removed.newest)"
        f" FROM (SELECT destination_id, max(record_id) AS newest FROM feed_records WHERE {condition}"
        " GROUP BY destination_id) AS removed WHERE destinations.destination_id = removed.destination_id", params)
