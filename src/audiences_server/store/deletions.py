"""Profile deletions: the request records, and removing a profile's data (docs/operations.md).

A profile is removed with every profile merged into it (its "family"): their rows, identifiers,
traits, links, computed values and evaluator state, their change records and queued deliveries
in one job; their events afterwards, a bounded batch per job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apsw

from audiences_server.store import sync
from audiences_server.store.db import scalar
from audiences_server.store.sync import TAKEN


@dataclass(frozen=True)
class DeletionRow:
    """A stored deletion request."""

    deletion_id: int
    public_id: str
    space_id: int
    collection: str
    address: str
    profile_id: int
    profile_public_id: str
    suppress: bool
    state: str
    stage: str
    exits: dict[str, int]  # computation id (as text) → the last change record of its exits
    timeout_ms: int
    deadline_ms: int
    exits_recorded: int
    exits_undelivered: int
    events_deleted: int
    identifiers_suppressed: int
    requested_by: str
    created_ms: int
    completed_ms: int | None


_DELETION = (
    "SELECT deletion_id, public_id, space_id, collection, address, profile_id, profile_public_id, suppress, state,"
    " stage, exits, timeout_ms, deadline_ms, exits_recorded, exits_undelivered, events_deleted,"
    " identifiers_suppressed, requested_by, created_ms, completed_ms FROM profile_deletions"
)


def _deletion(row: Any) -> DeletionRow:
    values = list(row)
    values[7], values[10] = bool(values[7]), json.loads(values[10])
    return DeletionRow(*values)


def insert(conn: apsw.Connection, public_id: str, space_id: int, collection: str, address: str, profile_id: int,
           profile_public_id: str, suppress: bool, timeout_ms: int, requested_by: str, now_ms: int) -> int:
    """Records a new deletion request, PENDING at its first stage; returns its id."""
    conn.execute(
        "INSERT INTO profile_deletions (public_id, space_id, collection, address, profile_id, profile_public_id,"
        " suppress, state, stage, timeout_ms, deadline_ms, requested_by, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'PENDING', 'exits', ?, ?, ?, ?)",
        (public_id, space_id, collection, address, profile_id, profile_public_id, int(suppress), timeout_ms,
         now_ms + timeout_ms, requested_by, now_ms),
    )
    return int(conn.last_insert_rowid())


def by_public_id(conn: apsw.Connection, space_id: int, public_id: str) -> DeletionRow | None:
    """One deletion of a space by its id (`del_…`)."""
    row = conn.execute(f"{_DELETION} WHERE space_id = ? AND public_id = ?", (space_id, public_id)).fetchone()
    return _deletion(row) if row else None


def by_id(conn: apsw.Connection, deletion_id: int) -> DeletionRow | None:
    """One deletion by its row id."""
    row = conn.execute(f"{_DELETION} WHERE deletion_id = ?", (deletion_id,)).fetchone()
    return _deletion(row) if row else None


def pending_of_profile(conn: apsw.Connection, profile_id: int) -> DeletionRow | None:
    """The deletion under way for a profile, if any."""
    row = conn.execute(f"{_DELETION} WHERE state = 'PENDING' AND profile_id = ?", (profile_id,)).fetchone()
    return _deletion(row) if row else None


def being_deleted(conn: apsw.Connection, profile_ids: Iterable[int]) -> set[int]:
    """Which of the profiles a deletion under way is for (they merge with no other profile)."""
    return {int(r[0]) for r in conn.execute(
        "SELECT profile_id FROM profile_deletions WHERE state = 'PENDING'"
        " AND profile_id IN (SELECT value FROM json_each(?))", (json.dumps(sorted(set(profile_ids))),))}


def pending(conn: apsw.Connection) -> list[DeletionRow]:
    """Every deletion under way, oldest first."""
    return [_deletion(r) for r in conn.execute(f"{_DELETION} WHERE state = 'PENDING' ORDER BY deletion_id")]


def page(conn: apsw.Connection, space_id: int, before: int | None, limit: int) -> list[DeletionRow]:
    """A space's deletions below an id, newest first."""
    return [_deletion(r) for r in conn.execute(
        f"{_DELETION} WHERE space_id = ? AND deletion_id < ? ORDER BY deletion_id DESC LIMIT ?",
        (space_id, before if before is not None else 2**62, limit))]


def record_exits(conn: apsw.Connection, deletion_id: int, exits: dict[str, int], recorded: int) -> None:
    """Notes the exits a deletion wrote (more may follow if the profile entered again meanwhile)."""
    conn.execute(
        "UPDATE profile_deletions SET exits = ?, exits_recorded = exits_recorded + ? WHERE deletion_id = ?",
        (json.dumps(exits, sort_keys=True), recorded, deletion_id),
    )


def note_suppressed(conn: apsw.Connection, deletion_id: int, count: int) -> None:
    """Counts identifiers a deletion suppressed."""
    conn.execute("UPDATE profile_deletions SET identifiers_suppressed = identifiers_suppressed + ?"
                 " WHERE deletion_id = ?", (count, deletion_id))


def advance(conn: apsw.Connection, deletion_id: int, stage: str, undelivered: int = 0, events: int = 0,
            now_ms: int | None = None) -> None:
    """Moves a deletion on; at stage `done` it is COMPLETE at `now_ms`, and the record names the
    profile by its `prf_…` id instead of the identifier it was asked with (the person's data)."""
    conn.execute(
        "UPDATE profile_deletions SET stage = ?1, exits_undelivered = exits_undelivered + ?2,"
        " events_deleted = events_deleted + ?3, state = CASE WHEN ?1 = 'done' THEN 'COMPLETE' ELSE state END,"
        " completed_ms = CASE WHEN ?1 = 'done' THEN ?4 ELSE completed_ms END,"
        " address = CASE WHEN ?1 = 'done' THEN profile_public_id ELSE address END WHERE deletion_id = ?5",
        (stage, undelivered, events, now_ms, deletion_id),
    )


# -- the profile's data -----------------------------------------------------------------------


def family(conn: apsw.Connection, profile_id: int) -> list[int]:
    """The profile and every profile merged into it, directly or through a chain of merges."""
    return [int(r[0]) for r in conn.execute(
        "WITH RECURSIVE f(id) AS (SELECT ? UNION SELECT m.merged_id FROM merges m JOIN f ON m.survivor_id = f.id)"
        " SELECT id FROM f ORDER BY id", (profile_id,))]


def identifiers(conn: apsw.Connection, profile_ids: list[int]) -> list[tuple[str, str, str]]:
    """The identifiers the profiles hold, as (collection, type, value)."""
    return [(c, t, v) for c, t, v in conn.execute(
        "SELECT collection, id_type, id_value FROM identifiers WHERE profile_id IN (SELECT value FROM json_each(?))",
        (json.dumps(profile_ids),))]


def linked(conn: apsw.Connection, profile_id: int, collection: str) -> list[int]:
    """The accounts of a user, or the users of an account."""
    column, other = ("user_id", "account_id") if collection == "users" else ("account_id", "user_id")
    return [int(r[0]) for r in conn.execute(f"SELECT {other} FROM links WHERE {column} = ?", (profile_id,))]


def unlink_all(conn: apsw.Connection, profile_id: int) -> None:
    """Removes every link and link removal of a profile, as user or as account."""
    for table in ("links", "unlinks"):
        conn.execute(f"DELETE FROM {table} WHERE user_id = ? OR account_id = ?", (profile_id, profile_id))
    conn.execute("DELETE FROM pending_unlinks WHERE user_id = ?", (profile_id,))


def forget_evaluation(conn: apsw.Connection, profile_id: int) -> None:
    """Drops what the evaluator would do next for a profile: its touches and due times."""
    conn.execute("DELETE FROM touches WHERE profile_id = ?", (profile_id,))
    conn.execute("DELETE FROM due WHERE profile_id = ?", (profile_id,))


def count_changes_since(conn: apsw.Connection, after: int) -> int:
    """How many change records were written after `after` (by the current job)."""
    return int(scalar(conn, "SELECT count(*) FROM changes WHERE change_id > ?", (after,)))


def changes_since(conn: apsw.Connection, after: int) -> dict[str, int]:
    """Per computation, the newest change record written after `after` (by the current job)."""
    return {str(c): int(m) for c, m in conn.execute(
        "SELECT computation_id, max(change_id) FROM changes WHERE change_id > ? GROUP BY computation_id", (after,))}


_IN = "IN (SELECT value FROM json_each(?))"


def unqueued(conn: apsw.Connection, exits: dict[str, int]) -> int:
    """Connections that have not yet taken a deletion's exits from the outbox (a CSV connection
    takes them when it rewrites its file)."""
    return sum(int(scalar(
        conn, "SELECT count(*) FROM connections c JOIN destinations d USING (destination_id)"
        f" WHERE c.computation_id = ? AND {TAKEN} < ?",
        (int(computation_id), change_id))) for computation_id, change_id in exits.items())


def _naming_users(table: str, own: bool) -> str:
    """The rows of `table` (deliveries or feed records) of the accounts the users are, or were,
    linked to, that name one of the users (in `users`, with its identifiers): `own`, those that
    carry the user's own change (a user joining or leaving a member account is queued under the
    account as that user's entry or exit: `users_only`, the user named first); else the account's
    own changes that list the user among its users. Its four parameters are the users (JSON)."""
    accounts = (f"SELECT profile_id FROM changes WHERE user_id {_IN} UNION SELECT account_id FROM links"
                f" WHERE user_id {_IN} UNION SELECT account_id FROM unlinks WHERE user_id {_IN}")
    # Deliveries are indexed by connection, then profile.
    rows = (f"connections AS c CROSS JOIN {table} AS q ON q.connection_id = c.connection_id" if table == "deliveries"
            else f"{table} AS q")
    named = f"(SELECT public_id FROM profiles WHERE profile_id {_IN})"
    if own:
        return (f"SELECT q.rowid FROM {rows} WHERE q.profile_id IN ({accounts}) AND q.record ->> '$.users_only'"
                f" AND q.record ->> '$.users[0].profile' IN {named}")
    return (f"SELECT q.rowid FROM {rows} WHERE q.profile_id IN ({accounts}) AND NOT q.record ->> '$.users_only'"
            f" AND EXISTS (SELECT 1 FROM json_each(q.record, '$.users') AS u WHERE u.value ->> 'profile' IN {named})")


def undelivered(conn: apsw.Connection, space_id: int, profile_ids: list[int]) -> int:
    """The profiles' queued deliveries (dead letters included), and their feed records that no
    consumer has read yet: their own, and the users' own entries and exits on accounts."""
    ids = json.dumps(profile_ids)
    queued = scalar(conn, "SELECT count(*) FROM connections c JOIN destinations d USING (destination_id)"
                          f" JOIN deliveries l ON l.connection_id = c.connection_id AND l.profile_id {_IN}"
                          " WHERE d.space_id = ?", (ids, space_id))
    unread = scalar(conn, f"SELECT count(*) FROM feed_records f JOIN destinations d USING (destination_id)"
                          f" WHERE f.profile_id {_IN} AND f.record_id > d.feed_acked", (ids,))
    # An account is in one space, as its users are.
    users_queued = scalar(conn, f"SELECT count(*) FROM ({_naming_users('deliveries', own=True)})", (ids,) * 4)
    users_unread = scalar(conn, f"SELECT count(*) FROM feed_records f JOIN destinations d USING (destination_id)"
                                f" WHERE f.rowid IN ({_naming_users('feed_records', own=True)})"
                                " AND f.record_id > d.feed_acked", (ids,) * 4)
    return int(queued) + int(unread) + int(users_queued) + int(users_unread)


def unname(conn: apsw.Connection, profile_ids: list[int]) -> None:
    """Takes the users out of the `users` of their accounts' own changes still queued (or parked,
    or in a feed), which keep the accounts' other users: once gone, nothing sends the users'
    identifiers. Done when a deletion starts, while the users' links still lead to every account
    they were linked to (one no longer a member has no change naming them), and again when it
    ends."""
    ids = json.dumps(profile_ids)
    for table in ("deliveries", "feed_records"):
        conn.execute(
            # A subquery's value loses its JSON subtype: json() gives it back, or it would be a string.
            f"UPDATE {table} SET record = json_set(record, '$.users', json((SELECT json_group_array(json(u.value))"
            " FROM json_each(record, '$.users') AS u WHERE u.value ->> 'profile' NOT IN (SELECT public_id FROM"
            f" profiles WHERE profile_id {_IN})))) WHERE rowid IN ({_naming_users(table, own=False)})",
            (ids, ids, ids, ids, ids))


def purge(conn: apsw.Connection, space_id: int, profile_ids: list[int]) -> None:
    """Removes everything of the profiles but their events: rows, identifiers, traits, links,
    values, evaluator state, change records (which are its membership history), queued deliveries and feed
    records (a size series keeps its counts, which name no one)."""
    ids = json.dumps(profile_ids)
    # The users' own entries and exits on accounts first: they are found through the change
    # records and links removed below.
    users_own = [(table, [int(r) for (r,) in conn.execute(_naming_users(table, own=True), (ids,) * 4)])
                 for table in ("deliveries", "feed_records")]
    for table, rows in users_own:
        if rows and table == "feed_records":
            sync.note_feed_removal(conn, f"record_id {_IN}", (json.dumps(rows),))
        if rows:
            conn.execute(f"DELETE FROM {table} WHERE rowid {_IN}", (json.dumps(rows),))
    unname(conn, profile_ids)
    sync.note_feed_removal(conn, f"profile_id {_IN}", (ids,))
    conn.execute("UPDATE id_floors SET value = max(value, (SELECT coalesce(max(profile_id), 0) FROM profiles))"
                 " WHERE name = 'profiles'")
    for table, column in (("identifiers", "profile_id"), ("traits", "profile_id"), ("computed_values", "profile_id"),
                          ("member_results", "user_id"), ("touches", "profile_id"), ("due", "profile_id"),
                          ("changes", "profile_id"), ("changes", "user_id"), ("feed_records", "profile_id"),
                          ("merges", "survivor_id"), ("merges", "merged_id"), ("links", "user_id"),
                          ("links", "account_id"), ("unlinks", "user_id"), ("unlinks", "account_id"),
                          ("pending_unlinks", "user_id")):
        conn.execute(f"DELETE FROM {table} WHERE {column} {_IN}", (ids,))
    conn.execute(
        "DELETE FROM deliveries WHERE delivery_id IN (SELECT l.delivery_id FROM connections c"
        f" JOIN destinations d USING (destination_id) JOIN deliveries l ON l.connection_id = c.connection_id"
        f" AND l.profile_id {_IN} WHERE d.space_id = ?)", (ids, space_id))
    # Merged profiles point at their survivor: they go first.
    conn.execute(f"DELETE FROM profiles WHERE profile_id {_IN} AND merged_into IS NOT NULL", (ids,))
    conn.execute(f"DELETE FROM profiles WHERE profile_id {_IN}", (ids,))


def delete_events(conn: apsw.Connection, profile_ids: list[int], limit: int) -> int:
    """Deletes up to `limit` events of the profiles; returns how many."""
    conn.execute(f"DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE profile_id {_IN} LIMIT ?)",
                 (json.dumps(profile_ids), limit))
    return int(conn.changes())
