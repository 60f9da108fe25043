"""The oracle's profiles themselves: what the reference interpreter is given for each live profile
when every definition is evaluated from scratch (events, custom traits overlaid with every
definition's value, accounts with their users), so tests can evaluate other texts on them, or
ask the interpreter for next change times and streams."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import apsw

from audiences_server.core import ql
from tests.evaluator.oracle import Values, _events, _order, _overlay, _profile, _profiles, _read_accounts, _traits


@dataclass
class Scratch:
    """Every definition's from-scratch values and the final profiles, by (collection, profile id)."""

    values: Values
    profiles: dict[tuple[str, int], ql.Profile]
    known: set[int]
    definitions: dict[tuple[str, str], tuple[ql.CheckedDefinition, dict[str, Any]]]


def scratch(conn: apsw.Connection, space_id: int, now_ms: int) -> Scratch:
    """Evaluates every enabled definition from scratch at `now_ms` and keeps the profiles it read."""
    rows = list(conn.execute(
        "SELECT key, kind, collection, definition, options FROM computations WHERE space_id = ? AND enabled = 1",
        (space_id,)))
    checked = {(r[2], r[0]): (ql.parse_and_check(r[3], kind=r[1], collection=r[2]), json.loads(r[4])) for r in rows}
    users, accounts = _profiles(conn, space_id, "users"), _profiles(conn, space_id, "accounts")
    events, traits = _events(conn, space_id), _traits(conn, space_id)
    known = {r[0] for r in conn.execute(
        "SELECT DISTINCT profile_id FROM identifiers WHERE space_id = ? AND id_type != 'anonymous_id'", (space_id,))}
    links: dict[int, list[int]] = defaultdict(list)
    accounts_of: dict[int, list[int]] = defaultdict(list)
    for user, account in conn.execute("SELECT user_id, account_id FROM links ORDER BY account_id, user_id"):
        links[account].append(user)
        accounts_of[user].append(account)
    values: Values = {}
    for collection, key in _order(checked):
        definition, options = checked[(collection, key)]
        for pid in users if collection == "users" else accounts:
            if collection == "users":
                _read_accounts(traits[pid], definition, checked, accounts_of[pid], values)
            value = ql.evaluate(definition, _profile(pid, collection, events, traits, links), now_ms)
            if (definition.kind == "audience" and collection == "users"
                    and not options.get("include_anonymous_users") and pid not in known):
                value = False
            values[(collection, key, pid)] = value
            _overlay(traits[pid], key, value, definition.kind)
    profiles = {("users", pid): _profile(pid, "users", events, traits, links) for pid in users}
    profiles.update({("accounts", pid): _profile(pid, "accounts", events, traits, links) for pid in accounts})
    return Scratch(values, profiles, known, checked)


def evaluate_text(found: Scratch, text: str, kind: str, collection: str, now_ms: int,
                  include_anonymous: bool = False) -> dict[int, Any]:
    """Another definition's value for every profile of the collection, on the final profiles."""
    definition = ql.parse_and_check(text, kind=kind, collection=collection)  # type: ignore[arg-type]
    out = {}
    for (profile_collection, pid), profile in found.profiles.items():
        if profile_collection != collection:
            continue
        value = ql.evaluate(definition, profile, now_ms)
        if kind == "audience" and collection == "users" and not include_anonymous and pid not in found.known:
            value = False
        out[pid] = value
    return out
