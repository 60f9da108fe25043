"""Reads behind ProfilesService: one profile's traits, events, identifiers, links, metadata."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import apsw

from audiences_server.store.db import rows


def survivor(conn: apsw.Connection, profile_id: int) -> int:
    """The profile a (possibly merged-away) profile now lives in."""
    row = conn.execute("SELECT coalesce(merged_into, profile_id) FROM profiles WHERE profile_id = ?",
                       (profile_id,)).fetchone()
    return int(row[0]) if row else profile_id


def by_public_id(conn: apsw.Connection, space_id: int, collection: str, public_id: str) -> int | None:
    """The surviving profile behind a `prf_…` id."""
    row = conn.execute(
        "SELECT coalesce(merged_into, profile_id) FROM profiles"
        " WHERE space_id = ? AND collection = ? AND public_id = ?",
        (space_id, collection, public_id)).fetchone()
    return int(row[0]) if row else None


def by_identifier(conn: apsw.Connection, space_id: int, collection: str, id_type: str, value: str) -> int | None:
    """The profile holding an identifier."""
    row = conn.execute(
        "SELECT profile_id FROM identifiers WHERE space_id = ? AND collection = ? AND id_type = ? AND id_value = ?",
        (space_id, collection, id_type, value)).fetchone()
    return int(row[0]) if row else None


def profile_row(conn: apsw.Connection, profile_id: int) -> dict[str, Any]:
    """A profile's own row."""
    return rows(conn, "SELECT profile_id, public_id, collection, created_ms, updated_ms, first_message_ms,"
                      " last_message_ms FROM profiles WHERE profile_id = ?", (profile_id,))[0]


def merged_public_ids(conn: apsw.Connection, profile_id: int) -> list[str]:
    """Public ids of every profile merged into this one, in the order they merged."""
    return [r[0] for r in conn.execute(
        "SELECT p.public_id FROM profiles p JOIN merges m ON m.merged_id = p.profile_id"
        " WHERE m.survivor_id = ? OR p.merged_into = ? GROUP BY p.profile_id ORDER BY min(m.merge_id)",
        (profile_id, profile_id))]


def custom_traits(conn: apsw.Connection, profile_id: int) -> list[tuple[str, str, int, str]]:
    """(key, value JSON, event time, message id) of each visible custom trait."""
    return [(k, v, ts, m or "") for k, v, ts, m in conn.execute(
        "SELECT t.key, t.value, t.ts_ms, e.message_id FROM traits t LEFT JOIN events e ON e.seq = t.seq"
        " WHERE t.profile_id = ? AND t.value IS NOT NULL", (profile_id,))]


def computed_traits(conn: apsw.Connection, profile_id: int) -> list[tuple[str, str, str, int, str]]:
    """(key, kind, value JSON, time, public id) of each computed value of the profile."""
    return [tuple(r) for r in conn.execute(
        "SELECT c.key, c.kind, v.value, v.updated_ms, c.public_id FROM computed_values v"
        " JOIN computations c USING (computation_id) WHERE v.profile_id = ?", (profile_id,))]


def events_page(conn: apsw.Connection, profile_id: int, *, start: int | None, end: int | None,
                include: Sequence[str], exclude: Sequence[str], descending: bool,
                after: tuple[int, int] | None, limit: int) -> list[dict[str, Any]]:
    """One page of a profile's events in (time, arrival) order, after a keyset cursor."""
    sql = ("SELECT seq, message_id, type, event, body, context, user_id, anonymous_id, ts, received_ms"
           " FROM events WHERE profile_id = ? AND event IS NOT NULL")
    params: list[Any] = [profile_id]
    if start is not None:
        sql += " AND ts >= ?"
        params.append(start)
    if end is not None:
        sql += " AND ts < ?"
        params.append(end)
    if include:
        sql += " AND event IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(list(include)))
    if exclude:
        sql += " AND event NOT IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(list(exclude)))
    if after is not None:
        sql += " AND (ts, seq) < (?, ?)" if descending else " AND (ts, seq) > (?, ?)"
        params += list(after)
    order = "DESC" if descending else "ASC"
    sql += f" ORDER BY ts {order}, seq {order} LIMIT ?"
    params.append(limit)
    return rows(conn, sql, params)


def identifiers(conn: apsw.Connection, profile_id: int) -> list[tuple[str, str, int]]:
    """(type, value, added time) of a profile's identifiers, oldest first."""
    return [(t, v, a) for t, v, a in conn.execute(
        "SELECT id_type, id_value, added_ms FROM identifiers WHERE profile_id = ?"
        " ORDER BY added_ms, seq, id_type, id_value", (profile_id,))]


def linked(conn: apsw.Connection, profile_id: int, collection: str) -> list[tuple[int, int]]:
    """(linked profile, linked time): a user's accounts or an account's users, by profile id."""
    if collection == "users":
        sql = "SELECT account_id, linked_ms FROM links WHERE user_id = ? ORDER BY account_id"
    else:
        sql = "SELECT user_id, linked_ms FROM links WHERE account_id = ? ORDER BY user_id"
    return [(int(p), int(t)) for p, t in conn.execute(sql, (profile_id,))]


def memberships(conn: apsw.Connection, profile_id: int) -> list[tuple[str, str, str, int]]:
    """(key, public id, name, entered) of the audiences the profile is in, by key."""
    return [tuple(r) for r in conn.execute(
        "SELECT c.key, c.public_id, c.name, v.updated_ms FROM computed_values v JOIN computations c"
        " USING (computation_id) WHERE v.profile_id = ? AND c.kind = 'audience' AND v.value = 'true'"
        " ORDER BY c.key", (profile_id,))]
