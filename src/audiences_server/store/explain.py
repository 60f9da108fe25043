"""What an explanation reads: a profile's events with their message ids as they stood at a time,
and whether what it reads changed since then (so that an earlier time can be reproduced)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import apsw

from audiences_server.core.ql import Event
from audiences_server.store.db import scalar


def events_at(
    conn: apsw.Connection, profile_ids: Sequence[int], names: Iterable[str], since_ms: int | None, at_ms: int
) -> tuple[dict[int, list[Event]], dict[int, tuple[str, int]]]:
    """The profiles' events of these names stamped at or after `since_ms` and received by `at_ms`,
    and each event's message id and profile by arrival number (`seq`)."""
    sql = (
        "SELECT profile_id, event, ts, seq, body, context, source_id, message_id FROM events"
        " WHERE profile_id IN (SELECT value FROM json_each(?)) AND event IN (SELECT value FROM json_each(?))"
        " AND received_ms <= ?"
    )
    params: list[Any] = [json.dumps(list(profile_ids)), json.dumps(sorted(names)), at_ms]
    if since_ms is not None:
        sql += " AND ts >= ?"
        params.append(since_ms)
    found: dict[int, list[Event]] = defaultdict(list)
    messages: dict[int, tuple[str, int]] = {}
    for pid, name, ts, seq, body, context, source, message_id in conn.execute(sql, params):
        found[pid].append(Event(name, ts, json.loads(body), json.loads(context), source, seq))
        messages[int(seq)] = (message_id, int(pid))
    return found, messages


def merged_since(conn: apsw.Connection, profile_ids: Sequence[int], at_ms: int) -> bool:
    """Whether a profile was merged into one of these after `at_ms` (its events and traits moved)."""
    row = conn.execute(
        "SELECT 1 FROM merges WHERE survivor_id IN (SELECT value FROM json_each(?)) AND merged_ms > ? LIMIT 1",
        (json.dumps(list(profile_ids)), at_ms),
    ).fetchone()
    return row is not None


def traits_written_since(conn: apsw.Connection, profile_ids: Sequence[int], keys: Iterable[str], at_ms: int) -> bool:
    """Whether one of these custom traits of the profiles was set or removed by a call received after `at_ms`."""
    row = conn.execute(
        "SELECT 1 FROM traits AS t JOIN events AS e ON e.seq = t.seq WHERE t.profile_id IN (SELECT value FROM"
        " json_each(?)) AND t.key IN (SELECT value FROM json_each(?)) AND e.received_ms > ? LIMIT 1",
        (json.dumps(list(profile_ids)), json.dumps(sorted(keys)), at_ms),
    ).fetchone()
    return row is not None


def links_changed_since(conn: apsw.Connection, account_id: int, at_ms: int) -> bool:
    """Whether a group call naming the account (which may link or unlink a user) arrived after `at_ms`."""
    row = conn.execute(
        "SELECT 1 FROM identifiers AS i JOIN events AS e ON e.space_id = i.space_id AND e.group_id = i.id_value"
        " WHERE i.profile_id = ? AND i.id_type = 'group_id' AND e.received_ms > ? LIMIT 1",
        (account_id, at_ms),
    ).fetchone()
    return row is not None


def deletions_since(conn: apsw.Connection, space_id: int, at_ms: int) -> bool:
    """Whether a profile deletion of the space was asked for after `at_ms`."""
    row = conn.execute("SELECT 1 FROM profile_deletions WHERE space_id = ? AND created_ms > ? LIMIT 1",
                       (space_id, at_ms)).fetchone()
    return row is not None


def group_calls_since(conn: apsw.Connection, user_ids: Sequence[int], at_ms: int) -> bool:
    """Whether one of these users sent a group call (which may link or unlink it) after `at_ms`."""
    row = conn.execute(
        "SELECT 1 FROM events WHERE profile_id IN (SELECT value FROM json_each(?)) AND type = 'group'"
        " AND received_ms > ? LIMIT 1",
        (json.dumps(list(user_ids)), at_ms),
    ).fetchone()
    return row is not None


def known_at(conn: apsw.Connection, profile_ids: Sequence[int], at_ms: int) -> set[int]:
    """The profiles that held an identifier other than `anonymous_id` at `at_ms`."""
    return {
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT profile_id FROM identifiers WHERE profile_id IN (SELECT value FROM json_each(?))"
            " AND id_type != 'anonymous_id' AND added_ms <= ?",
            (json.dumps(list(profile_ids)), at_ms),
        )
    }


def created_at(conn: apsw.Connection, profile_id: int) -> int:
    """When the profile was first seen (its row created, at the time of the call that made it)."""
    return int(scalar(conn, "SELECT created_ms FROM profiles WHERE profile_id = ?", (profile_id,)))


def version_backfilled(conn: apsw.Connection, computation_id: int) -> int | None:
    """When the backfill of the computation's current version last finished (None: never yet)."""
    row = conn.execute(
        "SELECT v.backfilled_ms FROM definition_versions AS v JOIN computations AS c USING (computation_id)"
        " WHERE v.computation_id = ? AND v.version = c.version",
        (computation_id,),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
