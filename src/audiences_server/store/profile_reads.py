"""Reads behind ProfilesService: one profile's traits, events, identifiers, links, metadata.

Every listing is keyset-paged: it takes the sort key of the last row already returned (or
None) and returns the rows after it in its order, so that rows inserted while a client pages
never shift what it has not seen yet. Callers ask for one row more than a page to learn
whether another page follows.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw

from audiences_server.store.db import rows, scalar

# The order of trait classes under one key (a custom trait and a computed trait may share it).
CLASS_RANK = {"custom": 0, "computed_trait": 1, "audience": 2}


@dataclass(frozen=True)
class EventFilter:
    """What ListEvents asks for besides the profile: a time range, names and the order."""

    start: int | None = None
    end: int | None = None
    include: Sequence[str] = field(default_factory=tuple)
    exclude: Sequence[str] = field(default_factory=tuple)
    descending: bool = True


def by_public_id(conn: apsw.Connection, space_id: int, collection: str, public_id: str) -> tuple[int, str] | None:
    """The surviving profile behind a `prf_…` id, with its own public id (merges keep
    `merged_into` pointing at the survivor). A row merged into itself is a cluster shard's
    reference to a profile another shard keeps (store/cluster.py): it names no profile here."""
    row = conn.execute(
        "SELECT s.profile_id, s.public_id FROM profiles p"
        " JOIN profiles s ON s.profile_id = coalesce(p.merged_into, p.profile_id)"
        " WHERE p.space_id = ? AND p.collection = ? AND p.public_id = ?"
        " AND (s.merged_into IS NULL OR s.merged_into != s.profile_id)",
        (space_id, collection, public_id)).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def by_identifier(conn: apsw.Connection, space_id: int, collection: str, id_type: str,
                  value: str) -> tuple[int, str] | None:
    """The profile holding an identifier, with its public id (always a survivor: merges move identifiers)."""
    row = conn.execute(
        "SELECT i.profile_id, p.public_id FROM identifiers i JOIN profiles p ON p.profile_id = i.profile_id"
        " WHERE i.space_id = ? AND i.collection = ? AND i.id_type = ? AND i.id_value = ?",
        (space_id, collection, id_type, value)).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def merge_count(conn: apsw.Connection, profile_id: int) -> int:
    """How many profiles were merged into a profile."""
    return int(scalar(conn, "SELECT merge_count FROM profiles WHERE profile_id = ?", (profile_id,)) or 0)


def profile_row(conn: apsw.Connection, profile_id: int) -> dict[str, Any]:
    """A profile's own row, with the message id and source of its first and last stored call
    (the earliest and latest arrival at those event times; empty when the profile holds no call
    of that time, as for an account, whose calls are its users' group calls)."""
    row = rows(conn, "SELECT profile_id, public_id, collection, created_ms, updated_ms, first_message_ms,"
                     " last_message_ms FROM profiles WHERE profile_id = ?", (profile_id,))[0]
    for end, at, order in (("first", row["first_message_ms"], "ASC"), ("last", row["last_message_ms"], "DESC")):
        found = conn.execute(f"SELECT message_id, source_id FROM events WHERE profile_id = ? AND ts = ?"
                             f" ORDER BY seq {order} LIMIT 1", (profile_id, at)).fetchone()
        row[f"{end}_message_id"], row[f"{end}_source_id"] = found or ("", "")
    return row


def merged_public_ids(conn: apsw.Connection, profile_id: int) -> list[str]:
    """Public ids of every profile merged into this one, directly or through a chain, oldest merge first."""
    # A chain A←B←C logs C into B, then B into A; `merged_into` of C was moved to A by the
    # second merge, so it finds C, and the merge log gives each one's time.
    return [r[0] for r in conn.execute(
        "SELECT p.public_id FROM profiles p JOIN merges m ON m.merged_id = p.profile_id"
        " WHERE p.merged_into = ? GROUP BY p.profile_id ORDER BY min(m.merge_id)",
        (profile_id,))]


# Custom traits are the `traits` rows with a value (a NULL value is the tombstone of a trait
# removed by null); computed traits and memberships are the profile's `computed_values`.
_CUSTOM = """
    SELECT t.key AS key, 'custom' AS trait_class, t.value AS value, t.ts_ms AS updated_ms,
           coalesce(e.message_id, '') AS source_id, 0 AS rank
    FROM traits t LEFT JOIN events e ON e.seq = t.seq
    WHERE t.profile_id = :profile AND t.value IS NOT NULL"""
_COMPUTED = """
    SELECT c.key AS key, c.kind AS trait_class, v.value AS value, v.updated_ms AS updated_ms,
           c.public_id AS source_id, CASE c.kind WHEN 'computed_trait' THEN 1 ELSE 2 END AS rank
    FROM computed_values v JOIN computations c USING (computation_id)
    WHERE v.profile_id = :profile"""


@functools.lru_cache(maxsize=32)
def _traits_sql(trait_class: str | None, include: bool, after: bool) -> str:
    """The traits query with only the filters asked for: a query with every filter optional
    costs twice as much, and a read of all traits is the common case."""
    parts = []
    for base, key, classes in ((_CUSTOM, "t.key", {"custom"}), (_COMPUTED, "c.key", {"computed_trait", "audience"})):
        if trait_class is not None and trait_class not in classes:
            continue
        where = [base]
        if trait_class is not None and key == "c.key":
            where.append("c.kind = :class")
        if include:
            where.append(f"{key} IN (SELECT value FROM json_each(:include))")
        if after:
            where.append(f"{key} >= :after_key")
        parts.append(" AND ".join(where))
    keyset = " WHERE (key, rank) > (:after_key, :after_rank)" if after else ""
    return (f"SELECT key, trait_class, value, updated_ms, source_id, rank FROM ({' UNION ALL '.join(parts)})"
            f"{keyset} ORDER BY key, rank LIMIT :limit")


def traits_page(conn: apsw.Connection, profile_id: int, *, include: Sequence[str], trait_class: str | None,
                after: Sequence[Any] | None, limit: int) -> list[dict[str, Any]]:
    """Traits of every class by (key, class), after a `[key, rank]` cursor."""
    params: dict[str, Any] = {"profile": profile_id, "limit": limit}
    if trait_class is not None:
        params["class"] = trait_class
    if include:
        params["include"] = json.dumps(list(include))
    if after is not None:
        params["after_key"], params["after_rank"] = after
    return rows(conn, _traits_sql(trait_class, bool(include), after is not None), params)


def events_page(conn: apsw.Connection, profile_id: int, wanted: EventFilter,
                after: Sequence[Any] | None, limit: int) -> list[dict[str, Any]]:
    """A profile's track, page and screen events by (event time, message id), after such a cursor."""
    sql = ("SELECT seq, message_id, type, event, body, context, extra, user_id, anonymous_id, ts, received_ms,"
           " source_id FROM events WHERE profile_id = ? AND event IS NOT NULL")
    params: list[Any] = [profile_id]
    for clause, value, present in (
        (" AND ts >= ?", wanted.start, wanted.start is not None),
        (" AND ts < ?", wanted.end, wanted.end is not None),
        (" AND event IN (SELECT value FROM json_each(?))", json.dumps(list(wanted.include)), bool(wanted.include)),
        (" AND event NOT IN (SELECT value FROM json_each(?))", json.dumps(list(wanted.exclude)),
         bool(wanted.exclude)),
    ):
        if present:
            sql += clause
            params.append(value)
    order = "DESC" if wanted.descending else "ASC"
    if after is not None:
        sql += " AND (ts, message_id) < (?, ?)" if wanted.descending else " AND (ts, message_id) > (?, ?)"
        params += list(after)
    sql += f" ORDER BY ts {order}, message_id {order} LIMIT ?"
    params.append(limit)
    return rows(conn, sql, params)


def identifiers_page(conn: apsw.Connection, profile_id: int, after: Sequence[Any] | None,
                     limit: int, types: Sequence[str] = ()) -> list[dict[str, Any]]:
    """A profile's identifiers oldest first, by (added time, arrival, type, value), after such a
    cursor, each with the message id and source of the call that brought it; only those of
    `types` when some are given."""
    sql = ("SELECT i.id_type AS id_type, i.id_value AS id_value, i.added_ms AS added_ms, i.seq AS seq,"
           " coalesce(e.message_id, '') AS message_id,"
           " coalesce(e.source_id, '') AS source_id FROM identifiers i LEFT JOIN events e ON e.seq = i.seq"
           " WHERE i.profile_id = ?")
    params: list[Any] = [profile_id]
    if types:
        sql += " AND i.id_type IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(list(types)))
    if after is not None:
        sql += " AND (i.added_ms, i.seq, i.id_type, i.id_value) > (?, ?, ?, ?)"
        params += list(after)
    return rows(conn, sql + " ORDER BY i.added_ms, i.seq, i.id_type, i.id_value LIMIT ?", [*params, limit])


# The column naming the profile and the column naming the linked one, per collection.
_LINK_SIDES = {"users": ("user_id", "account_id"), "accounts": ("account_id", "user_id")}


def links_page(conn: apsw.Connection, profile_id: int, collection: str, after: Sequence[Any] | None,
               limit: int, until: int | None = None) -> list[dict[str, Any]]:
    """A user's accounts or an account's users, oldest link first, after a `[linked time, profile]`
    cursor, and, when `until` is given, made no later than the link it numbers (`latest_link`)."""
    mine, theirs = _LINK_SIDES[collection]
    sql = f"SELECT {theirs} AS profile_id, linked_ms FROM links WHERE {mine} = ?"
    params: list[Any] = [profile_id]
    if after is not None:
        sql += f" AND (linked_ms, {theirs}) > (?, ?)"
        params += list(after[:2])
    if until is not None:
        sql += " AND made <= ?"
        params.append(until)
    return rows(conn, sql + f" ORDER BY linked_ms, {theirs} LIMIT ?", [*params, limit])


def latest_link(conn: apsw.Connection, profile_id: int, collection: str) -> int | None:
    """The number (`made`, in the order links are made) of the latest link made of a user's
    accounts or an account's users (None without links)."""
    mine, _ = _LINK_SIDES[collection]
    found = scalar(conn, f"SELECT max(made) FROM links WHERE {mine} = ?", (profile_id,))
    return None if found is None else int(found)


def last_merge(conn: apsw.Connection) -> int:
    """The number of the latest merge of any profile (0 before the first)."""
    return int(scalar(conn, "SELECT max(merge_id) FROM merges") or 0)


def links_merged_since(conn: apsw.Connection, profile_id: int, collection: str, merge_id: int) -> bool:
    """Whether a profile linked to this one (on the other side) survived a merge after `merge_id`:
    such a merge may move its link earlier in the order, before where a reader has got to."""
    mine, theirs = _LINK_SIDES[collection]
    return bool(scalar(conn, f"SELECT EXISTS (SELECT 1 FROM merges AS m WHERE m.merge_id > ? AND EXISTS"
                             f" (SELECT 1 FROM links AS l WHERE l.{theirs} = m.survivor_id AND l.{mine} = ?))",
                       (merge_id, profile_id)))


def summaries(conn: apsw.Connection, profile_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Public id, collection and identifiers (oldest first, each with the message id and source of
    its call) of some profiles."""
    wanted = json.dumps(list(profile_ids))
    found = {int(r["profile_id"]): {**r, "identifiers": []} for r in rows(
        conn, "SELECT profile_id, public_id, collection FROM profiles"
              " WHERE profile_id IN (SELECT value FROM json_each(?))", (wanted,))}
    for row in rows(conn, "SELECT i.profile_id AS profile_id, i.id_type AS id_type, i.id_value AS id_value,"
                          " i.added_ms AS added_ms, coalesce(e.message_id, '') AS message_id,"
                          " coalesce(e.source_id, '') AS source_id FROM identifiers i LEFT JOIN events e"
                          " ON e.seq = i.seq WHERE i.profile_id IN (SELECT value FROM json_each(?))"
                          " ORDER BY i.profile_id, i.added_ms, i.seq, i.id_type, i.id_value", (wanted,)):
        found[int(row["profile_id"])]["identifiers"].append(row)
    return found


def memberships_page(conn: apsw.Connection, profile_id: int, after: str | None,
                     limit: int) -> list[dict[str, Any]]:
    """The audiences the profile is in now, by key, after a key."""
    return rows(conn,
                "SELECT c.key, c.public_id, c.name, v.updated_ms FROM computed_values v JOIN computations c"
                " USING (computation_id) WHERE v.profile_id = ? AND c.kind = 'audience' AND v.value = 'true'"
                " AND (? IS NULL OR c.key > ?) ORDER BY c.key LIMIT ?",
                (profile_id, after, after, limit))
