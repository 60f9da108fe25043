"""A from-scratch evaluation of a space's definitions, read straight from the database file.

It shares nothing with the incremental evaluator but the reference interpreter: it loads every
live profile with all its events, traits and links, evaluates every definition in dependency
order at one time, and applies the anonymous-users rule, so tests can compare it with what the
server stored.
"""

from __future__ import annotations

import graphlib
import json
from collections import defaultdict
from typing import Any

import apsw

from audiences_server.core import ql

Values = dict[tuple[str, str, int], Any]  # (collection, key, profile_id) -> value


def _profiles(conn: apsw.Connection, space_id: int, collection: str) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT profile_id FROM profiles WHERE space_id = ? AND collection = ? AND merged_into IS NULL",
            (space_id, collection),
        )
    ]


def _events(conn: apsw.Connection, space_id: int) -> dict[int, list[ql.Event]]:
    found: dict[int, list[ql.Event]] = defaultdict(list)
    for pid, name, ts, seq, body, context, source in conn.execute(
        "SELECT profile_id, event, ts, seq, body, context, source_id FROM events"
        " WHERE space_id = ? AND event IS NOT NULL AND profile_id IS NOT NULL",
        (space_id,),
    ):
        found[pid].append(ql.Event(name, ts, json.loads(body), json.loads(context), source, seq))
    return found


def _traits(conn: apsw.Connection, space_id: int) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = defaultdict(dict)
    for pid, key, value in conn.execute(
        "SELECT t.profile_id, t.key, t.value FROM traits t JOIN profiles p USING (profile_id)"
        " WHERE p.space_id = ? AND t.value IS NOT NULL",
        (space_id,),
    ):
        found[pid][key] = json.loads(value)
    return found


def expected_values(conn: apsw.Connection, space_id: int, now_ms: int, *, event_floors: bool = False) -> Values:
    """Every enabled definition's value for every live profile of its collection, from scratch.

    With `event_floors`, each definition reads only the events from its event floor on
    (`include_historical_data` off: from its creation; `backfill_days`: that many days before)."""
    rows = list(
        conn.execute(
            "SELECT key, kind, collection, definition, options, created_ms FROM computations"
            " WHERE space_id = ? AND enabled = 1",
            (space_id,),
        )
    )
    checked = {(r[2], r[0]): (ql.parse_and_check(r[3], kind=r[1], collection=r[2]), json.loads(r[4])) for r in rows}
    floors = {(r[2], r[0]): _event_floor(json.loads(r[4]), r[5]) if event_floors else None for r in rows}
    users, accounts = _profiles(conn, space_id, "users"), _profiles(conn, space_id, "accounts")
    all_events, traits = _events(conn, space_id), _traits(conn, space_id)
    known = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT i.profile_id FROM identifiers i WHERE i.space_id = ? AND i.id_type != 'anonymous_id'",
            (space_id,),
        )
    }
    links: dict[int, list[int]] = defaultdict(list)
    for user, account in conn.execute("SELECT user_id, account_id FROM links ORDER BY account_id, user_id"):
        links[account].append(user)
    values: Values = {}
    accounts_of: dict[int, list[int]] = defaultdict(list)
    for account, linked in links.items():
        for user in linked:
            accounts_of[user].append(account)
    for collection, key in _order(checked):
        definition, options = checked[(collection, key)]
        floor = floors[(collection, key)]
        events = all_events if floor is None else defaultdict(list, {
            pid: [e for e in found if e.timestamp_ms >= floor] for pid, found in all_events.items()})
        for pid in users if collection == "users" else accounts:
            if collection == "users":
                _read_accounts(traits[pid], definition, checked, accounts_of[pid], values)
            profile = _profile(pid, collection, events, traits, links)
            value = ql.evaluate(definition, profile, now_ms)
            if (
                definition.kind == "audience"
                and collection == "users"
                and not options.get("include_anonymous_users")
                and pid not in known
            ):
                value = False
            values[(collection, key, pid)] = value
            _overlay(traits[pid], key, value, definition.kind)
    return values


def _event_floor(options: dict[str, Any], created_ms: int) -> int | None:
    """The earliest event time a definition reads, from its options; None: every event."""
    if not options.get("include_historical_data", True):
        return created_ms
    if int(options.get("backfill_days", 0)) > 0:
        return created_ms - int(options["backfill_days"]) * 86_400_000
    return None


def _read_accounts(
    traits: dict[str, Any],
    definition: ql.CheckedDefinition,
    checked: dict[tuple[str, str], tuple[ql.CheckedDefinition, dict[str, Any]]],
    accounts: list[int],
    values: Values,
) -> None:
    """A user definition reading an account audience sees whether any of the user's accounts is in."""
    for key in definition.summary.traits:
        if (
            ("users", key) not in checked
            and ("accounts", key) in checked
            and checked[("accounts", key)][0].kind == "audience"
        ):
            traits[key] = any(values.get(("accounts", key, a)) is True for a in accounts)


def _overlay(traits: dict[str, Any], key: str, value: Any, kind: str) -> None:
    if value is None and kind == "computed_trait":
        traits.pop(key, None)
    else:
        traits[key] = value


def _profile(
    pid: int,
    collection: str,
    events: dict[int, list[ql.Event]],
    traits: dict[int, dict[str, Any]],
    links: dict[int, list[int]],
) -> ql.Profile:
    if collection == "users":
        return ql.Profile(events.get(pid, []), traits[pid])
    users = [ql.Profile(events.get(u, []), traits[u]) for u in links.get(pid, [])]
    return ql.Profile((), traits[pid], users)


def _order(checked: dict[tuple[str, str], tuple[ql.CheckedDefinition, dict[str, Any]]]) -> list[tuple[str, str]]:
    """Every definition after the ones it reads, across collections (accounts read users' in
    ANY/ALL; users read account audiences)."""
    graph: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for (collection, key), (definition, _) in checked.items():
        summary = definition.summary
        deps = {(collection, k) for k in summary.traits if (collection, k) in checked}
        deps |= {("users", k) for k in summary.user_traits if ("users", k) in checked}
        if collection == "users":
            deps |= {
                ("accounts", k)
                for k in summary.traits
                if ("users", k) not in checked
                and ("accounts", k) in checked
                and checked[("accounts", k)][0].kind == "audience"
            }
        graph[(collection, key)] = deps - {(collection, key)}
    return list(graphlib.TopologicalSorter(graph).static_order())


def stored_values(conn: apsw.Connection, space_id: int) -> Values:
    """What the server stored: audiences read false where no row exists."""
    values: Values = {}
    comps = list(
        conn.execute(
            "SELECT computation_id, key, kind, collection FROM computations WHERE space_id = ? AND enabled = 1",
            (space_id,),
        )
    )
    for cid, key, kind, collection in comps:
        stored = dict(conn.execute("SELECT profile_id, value FROM computed_values WHERE computation_id = ?", (cid,)))
        for pid in _profiles(conn, space_id, collection):
            raw = stored.get(pid)
            if kind == "audience":
                values[(collection, key, pid)] = raw == "true"
            else:
                values[(collection, key, pid)] = None if raw is None else json.loads(raw)
    return values
