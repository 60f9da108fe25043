"""Profiles, identifiers, traits, links, merges and identity-rule violations in SQLite.

Every function here runs inside the writer's transaction (or a reader's snapshot for reads).
Profile ids are the integer rowids; `public_id` (`prf_…`) is what the API shows.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import apsw

from audiences_server.core.identity import (
    ExternalId,
    HeldId,
    IdentityRules,
    ProfileState,
    TraitValue,
    Violation,
)
from audiences_server.core.identity.rules import STORED_PATTERNS
from audiences_server.store import sync
from audiences_server.store.db import in_chunks, next_id_sql

_SAMPLES_KEPT = 20
Touch = tuple[int, str, str]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def find_holders(
    conn: apsw.Connection, space_id: int, collection: str, ids: Iterable[ExternalId]
) -> dict[ExternalId, int]:
    """Which profile holds each of the ids that is held (always a survivor: merges move
    identifiers); one query per id type and chunk of values."""
    values_by_type: dict[str, list[str]] = {}
    for external_id in ids:
        values_by_type.setdefault(external_id.type, []).append(external_id.value)
    found: dict[ExternalId, int] = {}
    for id_type, values in values_by_type.items():
        for marks, chunk in in_chunks(values):
            cursor = conn.execute(
                "SELECT id_value, profile_id FROM identifiers WHERE space_id = ? AND collection = ? AND id_type = ?"
                f" AND id_value IN ({marks})",
                (space_id, collection, id_type, *chunk),
            )
            found.update((ExternalId(id_type, value), int(profile_id)) for value, profile_id in cursor)
    return found


def load_states(conn: apsw.Connection, profile_ids: Iterable[int]) -> list[ProfileState]:
    """The planner's view of stored profiles."""
    states = []
    for profile_id in sorted(profile_ids):
        row = conn.execute(
            "SELECT created_ms, merge_count FROM profiles WHERE profile_id = ?", (profile_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"profile {profile_id} holds identifiers but has no row")
        created, merges = row
        held = tuple(
            HeldId(t, v, a)
            for t, v, a in conn.execute(
                "SELECT id_type, id_value, added_ms FROM identifiers WHERE profile_id = ?", (profile_id,)
            )
        )
        states.append(ProfileState(profile_id, created, held, merges))
    return states


def create_profile(conn: apsw.Connection, space_id: int, collection: str, now_ms: int) -> int:
    """A new, empty profile; returns its id, past every id a profile ever had (`id_floors`: a
    deleted profile's id keys its events until they are gone)."""
    conn.execute(
        "INSERT INTO profiles (profile_id, space_id, collection, public_id, created_ms, updated_ms)"
        f" SELECT {next_id_sql('profiles', 'profile_id')}, ?, ?, ?, ?, ?",
        (space_id, collection, "prf_" + secrets.token_hex(12), now_ms, now_ms),
    )
    return int(conn.last_insert_rowid())


def add_identifiers(
    conn: apsw.Connection,
    space_id: int,
    collection: str,
    profile_id: int,
    ids: Sequence[ExternalId],
    now_ms: int,
    seq: int,
) -> None:
    """Gives the profile new identifiers."""
    conn.executemany(
        "INSERT INTO identifiers (space_id, collection, id_type, id_value, profile_id, added_ms, seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(space_id, collection, i.type, i.value, profile_id, now_ms, seq) for i in ids],
    )


def load_traits(conn: apsw.Connection, profile_id: int, keys: Iterable[str] | None = None) -> dict[str, TraitValue]:
    """A profile's stored trait entries (tombstones included), all or only some keys."""
    if keys is None:
        cursor = conn.execute("SELECT key, value, ts_ms, seq FROM traits WHERE profile_id = ?", (profile_id,))
    else:
        wanted = list(keys)
        cursor = conn.execute(
            f"SELECT key, value, ts_ms, seq FROM traits WHERE profile_id = ? AND key IN ({_marks(len(wanted))})",
            (profile_id, *wanted),
        )
    return {k: TraitValue(None if v is None else json.loads(v), ts, seq) for k, v, ts, seq in cursor}


def write_traits(conn: apsw.Connection, profile_id: int, entries: dict[str, TraitValue], keys: Iterable[str]) -> None:
    """Stores the given keys of a trait map."""
    conn.executemany(
        "INSERT OR REPLACE INTO traits (profile_id, key, value, ts_ms, seq) VALUES (?, ?, ?, ?, ?)",
        [
            (
                profile_id,
                k,
                None if entries[k].value is None else json.dumps(entries[k].value),
                entries[k].ts_ms,
                entries[k].seq,
            )
            for k in keys
        ],
    )


def move_profile(
    conn: apsw.Connection, space_id: int, survivor: int, merged: int, message_id: str, now_ms: int
) -> list[tuple[int, int]]:
    """Moves everything of `merged` to `survivor` (traits are merged by the caller) and logs it;
    returns the (user, account) links the merge removed: one profile's link that the other
    profile's removal, at or after it, ends (as on one profile, last write wins by event time)."""
    conn.execute("UPDATE identifiers SET profile_id = ? WHERE profile_id = ?", (survivor, merged))
    conn.execute("UPDATE events SET profile_id = ? WHERE profile_id = ?", (survivor, merged))
    sync.move_deliveries(conn, survivor, merged)
    conn.execute("DELETE FROM traits WHERE profile_id = ?", (merged,))
    for column, other in (("user_id", "account_id"), ("account_id", "user_id")):
        # A link both profiles had keeps the earlier of its first times and the later of its
        # last times; a removal both had keeps the later time.
        conn.execute(
            f"UPDATE links SET linked_ms = min(links.linked_ms, m.linked_ms),"
            f" last_linked_ms = max(links.last_linked_ms, m.last_linked_ms)"
            f" FROM links m WHERE m.{column} = ? AND m.{other} = links.{other}"
            f" AND links.{column} = ?",
            (merged, survivor),
        )
        conn.execute(f"UPDATE OR IGNORE links SET {column} = ? WHERE {column} = ?", (survivor, merged))
        conn.execute(f"DELETE FROM links WHERE {column} = ?", (merged,))
        conn.execute(
            f"UPDATE unlinks SET unlinked_ms = max(unlinks.unlinked_ms, m.unlinked_ms) FROM unlinks m"
            f" WHERE m.{column} = ? AND m.{other} = unlinks.{other} AND unlinks.{column} = ?",
            (merged, survivor),
        )
        conn.execute(f"UPDATE OR IGNORE unlinks SET {column} = ? WHERE {column} = ?", (survivor, merged))
        conn.execute(f"DELETE FROM unlinks WHERE {column} = ?", (merged,))
    conn.execute(
        "INSERT INTO pending_unlinks (user_id, id_type, id_value, unlinked_ms) SELECT ?, id_type, id_value,"
        " unlinked_ms FROM pending_unlinks WHERE user_id = ? ON CONFLICT (user_id, id_type, id_value)"
        " DO UPDATE SET unlinked_ms = max(unlinked_ms, excluded.unlinked_ms)", (survivor, merged))
    conn.execute("DELETE FROM pending_unlinks WHERE user_id = ?", (merged,))
    if conn.execute("SELECT 1 FROM pending_unlinks LIMIT 1").fetchone():
        # Removals remembered by an account's identifier apply to the links the survivor holds
        # now (a user's, or an account's, that came with the merge), before those they end go.
        held = [(int(user), int(account)) for user, account in conn.execute(
            "SELECT user_id, account_id FROM links WHERE user_id = ? OR account_id = ?", (survivor, survivor))]
        for user, account in held:
            adopt_unlinks(conn, user, account)
    ended = [(int(user), int(account)) for user, account in conn.execute(
        "SELECT l.user_id, l.account_id FROM links l JOIN unlinks u USING (user_id, account_id)"
        " WHERE (l.user_id = ? OR l.account_id = ?) AND u.unlinked_ms >= l.last_linked_ms", (survivor, survivor))]
    conn.executemany("DELETE FROM links WHERE user_id = ? AND account_id = ?", ended)
    row = conn.execute(
        "SELECT merge_count, first_message_ms, last_message_ms FROM profiles WHERE profile_id = ?", (merged,)
    ).fetchone()
    if row is None:
        raise LookupError(f"profile {merged} is merged but has no row")
    count, first, last = row
    conn.execute("UPDATE profiles SET merged_into = ?, updated_ms = ? WHERE profile_id = ?", (survivor, now_ms, merged))
    conn.execute("UPDATE profiles SET merged_into = ? WHERE merged_into = ?", (survivor, merged))
    # The survivor now holds the merged profile's messages, so its first and last message widen.
    conn.execute(
        "UPDATE profiles SET merge_count = merge_count + ?, updated_ms = ?,"
        " first_message_ms = min(coalesce(first_message_ms, ?), coalesce(?, first_message_ms)),"
        " last_message_ms = max(coalesce(last_message_ms, ?), coalesce(?, last_message_ms)) WHERE profile_id = ?",
        (count + 1, now_ms, first, first, last, last, survivor),
    )
    conn.execute(
        "INSERT INTO merges (space_id, survivor_id, merged_id, message_id, merged_ms) VALUES (?, ?, ?, ?, ?)",
        (space_id, survivor, merged, message_id, now_ms),
    )
    return ended


def link(conn: apsw.Connection, user_id: int, account_id: int, at_ms: int) -> bool:
    """Links a user to an account at the event time of the call that links them; returns whether the link is new.

    Last write wins by event time: a removal at or after `at_ms` stands, and an existing link only
    moves its latest link time (its first time is when the user joined).
    """
    pair = (user_id, account_id)
    removed = conn.execute("SELECT unlinked_ms FROM unlinks WHERE user_id = ? AND account_id = ?", pair).fetchone()
    if removed is not None and removed[0] >= at_ms:
        return False
    if removed is not None:
        conn.execute("DELETE FROM unlinks WHERE user_id = ? AND account_id = ?", pair)
    conn.execute("UPDATE links SET last_linked_ms = max(last_linked_ms, ?) WHERE user_id = ? AND account_id = ?",
                 (at_ms, *pair))
    if conn.changes():
        return False
    conn.execute("INSERT INTO links (user_id, account_id, linked_ms, last_linked_ms, made) VALUES (?, ?, ?, ?,"
                 " (SELECT value FROM id_floors WHERE name = 'links') + 1)", (*pair, at_ms, at_ms))
    conn.execute("UPDATE id_floors SET value = value + 1 WHERE name = 'links'")
    return True


def links_gained(conn: apsw.Connection, survivor: int, merged: int) -> list[tuple[int, int]]:
    """The (user, account) links a merge would give the survivor, named as the survivor's: the
    merged profile's links to profiles the survivor is not linked to (read before `move_profile`)."""
    found = conn.execute(
        "SELECT ?1, account_id FROM links WHERE user_id = ?2"
        " AND account_id NOT IN (SELECT account_id FROM links WHERE user_id = ?1)"
        " UNION ALL SELECT user_id, ?1 FROM links WHERE account_id = ?2"
        " AND user_id NOT IN (SELECT user_id FROM links WHERE account_id = ?1)",
        (survivor, merged),
    )
    return [(int(user), int(account)) for user, account in found]


def still_linked(conn: apsw.Connection, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Those of the (user, account) pairs that are linked now."""
    return [pair for pair in pairs
            if conn.execute("SELECT 1 FROM links WHERE user_id = ? AND account_id = ?", pair).fetchone()]


# A user's removal of an account as of a time; a later time of the pair's is kept.
_KEEP_UNLINK = ("INSERT INTO unlinks (user_id, account_id, unlinked_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, account_id) DO UPDATE SET unlinked_ms = max(unlinked_ms, excluded.unlinked_ms)")


def remember_unlink(conn: apsw.Connection, user_id: int, ids: Iterable[ExternalId], at_ms: int) -> None:
    """Keeps a removal naming an account no profile holds yet, by the account's identifiers, so
    that a group call older than it, arriving later, does not link the two (`adopt_unlinks`)."""
    conn.executemany(
        "INSERT INTO pending_unlinks (user_id, id_type, id_value, unlinked_ms) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (user_id, id_type, id_value) DO UPDATE SET unlinked_ms = max(unlinked_ms, excluded.unlinked_ms)",
        [(user_id, i.type, i.value, at_ms) for i in ids],
    )


def adopt_unlinks(conn: apsw.Connection, user_id: int, account_id: int) -> None:
    """Turns the user's removals kept by identifiers the account now holds into its removals of
    the account (`unlink`'s rows), before the user is linked to it."""
    found = conn.execute(
        "SELECT max(p.unlinked_ms) FROM pending_unlinks AS p JOIN identifiers AS i ON i.id_type = p.id_type"
        " AND i.id_value = p.id_value AND i.profile_id = ? WHERE p.user_id = ?", (account_id, user_id)).fetchone()
    if found is None or found[0] is None:
        return
    conn.execute(_KEEP_UNLINK, (user_id, account_id, found[0]))
    conn.execute(
        "DELETE FROM pending_unlinks WHERE user_id = ? AND (id_type, id_value) IN"
        " (SELECT id_type, id_value FROM identifiers WHERE profile_id = ?)", (user_id, account_id))


def unlink(conn: apsw.Connection, user_id: int, account_id: int, at_ms: int) -> bool:
    """Removes a user's link to an account as of `at_ms`; returns whether a link was removed.

    The removal is remembered, so a group call older than it that arrives later does not link
    them again; a link made after `at_ms` stands (at equal times the removal wins).
    """
    pair = (user_id, account_id)
    conn.execute(_KEEP_UNLINK, (*pair, at_ms))
    conn.execute("DELETE FROM links WHERE user_id = ? AND account_id = ? AND last_linked_ms <= ?", (*pair, at_ms))
    return bool(conn.changes())


def note_messages(conn: apsw.Connection, received: dict[int, tuple[int, int]], now_ms: int) -> None:
    """Records the first and last message times (event times) of profiles that got messages."""
    conn.executemany(
        "UPDATE profiles SET first_message_ms = min(coalesce(first_message_ms, ?), ?),"
        " last_message_ms = max(coalesce(last_message_ms, ?), ?), updated_ms = ? WHERE profile_id = ?",
        [(first, first, last, last, now_ms, pid) for pid, (first, last) in received.items()],
    )


def touch(conn: apsw.Connection, touches: Iterable[Touch]) -> None:
    """Marks profiles changed for the evaluator, with what changed."""
    conn.executemany("INSERT OR IGNORE INTO touches (profile_id, kind, name) VALUES (?, ?, ?)", list(touches))


def rules(conn: apsw.Connection, space_id: int) -> IdentityRules:
    """The space's identity rules, or the defaults."""
    row = conn.execute("SELECT rules FROM identity_rules WHERE space_id = ?", (space_id,)).fetchone()
    return _parsed_rules(row[0] if row else None)


@functools.lru_cache(maxsize=64)
def _parsed_rules(text: str | None) -> IdentityRules:
    # Every ingest job reads the rules, and building them (validation, compiled patterns) costs
    # more than a small job's resolution; rules are immutable, so one parse per stored text.
    if text is None:
        return IdentityRules.defaults()
    reading = STORED_PATTERNS.set(True)
    try:
        return IdentityRules.from_dict(json.loads(text))
    finally:
        STORED_PATTERNS.reset(reading)


def save_rules(conn: apsw.Connection, space_id: int, value: IdentityRules, now_ms: int) -> None:
    """Replaces the space's identity rules."""
    conn.execute(
        "INSERT OR REPLACE INTO identity_rules (space_id, rules, updated_ms) VALUES (?, ?, ?)",
        (space_id, json.dumps(value.to_dict()), now_ms),
    )


def record_violation(conn: apsw.Connection, space_id: int, violation: Violation, message_id: str, now_ms: int) -> None:
    """Counts a violation and keeps it among the latest samples of its kind.

    It is filed under the type of the identifier held back (what `id_type` of the admin API
    names), which need not be the type whose rule broke: a second `user_id` arriving with a
    known `anonymous_id` breaks the `user_id` limit and holds back the `anonymous_id`.
    """
    kind, id_type = violation.kind.value, violation.dropped.type
    conn.execute(
        "INSERT INTO identity_violations (space_id, kind, id_type, count, last_ms) VALUES (?, ?, ?, 1, ?)"
        " ON CONFLICT (space_id, kind, id_type) DO UPDATE SET count = count + 1, last_ms = excluded.last_ms",
        (space_id, kind, id_type, now_ms),
    )
    conn.execute(
        "INSERT INTO identity_violation_days (space_id, kind, id_type, day, count, first_ms, last_ms)"
        " VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (space_id, kind, id_type, day)"
        " DO UPDATE SET count = count + 1, last_ms = excluded.last_ms",
        (space_id, kind, id_type, now_ms // 86_400_000, now_ms, now_ms),
    )
    conn.execute(
        "INSERT INTO identity_violation_samples (space_id, kind, id_type, message_id, dropped, detail, at_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (space_id, kind, id_type, message_id, str(violation.dropped), violation.detail, now_ms),
    )
    conn.execute(
        "DELETE FROM identity_violation_samples WHERE space_id = ? AND kind = ? AND id_type = ? AND sample_id NOT IN"
        " (SELECT sample_id FROM identity_violation_samples WHERE space_id = ? AND kind = ? AND id_type = ?"
        "  ORDER BY sample_id DESC LIMIT ?)",
        (space_id, kind, id_type, space_id, kind, id_type, _SAMPLES_KEPT),
    )


def rule_times(conn: apsw.Connection, space_id: int) -> dict[str, int]:
    """When each identifier type's rule was last changed."""
    return {
        t: int(ms)
        for t, ms in conn.execute("SELECT id_type, changed_ms FROM identity_rule_times WHERE space_id = ?", (space_id,))
    }


def note_rule_time(conn: apsw.Connection, space_id: int, id_type: str, now_ms: int) -> None:
    """Records when a type's rule changed."""
    conn.execute(
        "INSERT OR REPLACE INTO identity_rule_times (space_id, id_type, changed_ms) VALUES (?, ?, ?)",
        (space_id, id_type, now_ms),
    )


_VIOLATIONS = """
    SELECT kind, id_type, count, first_ms, last_ms FROM (
        SELECT kind, id_type, sum(count) AS count, min(first_ms) AS first_ms, max(last_ms) AS last_ms
        FROM identity_violation_days
        WHERE space_id = :space AND day >= :day AND (:id_type = '' OR id_type = :id_type)
        GROUP BY kind, id_type
    )
    WHERE :count IS NULL OR (-count, kind, id_type) > (-:count, :kind, :after_type)
    ORDER BY count DESC, kind, id_type
    LIMIT :limit
"""


def violations(
    conn: apsw.Connection,
    space_id: int,
    since_ms: int | None,
    id_type: str,
    after: Sequence[Any] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Per (rule, type), since a time (counted by whole UTC days), the most frequent first, after a
    `[count, kind, type]` cursor: how often, first and last time, and the latest sample message ids."""
    count, kind, after_type = after if after is not None else (None, None, None)
    params = {
        "space": space_id, "day": (since_ms or 0) // 86_400_000, "id_type": id_type,
        "count": count, "kind": kind, "after_type": after_type, "limit": limit,
    }
    found = []
    for kind_name, kind_type, total, first, last in conn.execute(_VIOLATIONS, params):
        samples = [
            r[0]
            for r in conn.execute(
                "SELECT message_id FROM identity_violation_samples WHERE space_id = ? AND kind = ? AND id_type = ?"
                " AND at_ms >= ? ORDER BY sample_id DESC LIMIT 10",
                (space_id, kind_name, kind_type, since_ms or 0),
            )
        ]
        found.append(
            {
                "kind": kind_name,
                "id_type": kind_type,
                "count": int(total),
                "first_ms": int(first),
                "last_ms": int(last),
                "samples": samples,
            }
        )
    return found
