"""Tracking-spec calls built from a queued change record (pure: no SQL, no I/O).

A record is what the queue keeps for one change: the computation, the profile's identifiers at
the time of the change (and, for an account, its users'), and the old and new values. The calls
are built at send time from the record and the connection's current options, so that
UpdateConnection applies to every change sent afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from audiences_server import __version__
from audiences_server.core.tracking import format_time

Ids = Sequence[Sequence[str]]


def message_id(destination_public_id: str, connection_id: int, change: str, scope: str = "") -> str:
    """The deterministic id of one change on one connection: the same on every attempt and redrive.

    `scope` names the file the change and connection ids are from when several files deliver to
    one destination (a cluster's shards, each numbering its own changes); empty on one node."""
    named = f"{destination_public_id}:{scope}:" if scope else f"{destination_public_id}:"
    digest = hashlib.sha256(f"{named}{connection_id}:{change}".encode()).hexdigest()
    return "syn_" + digest[:32]


def select_ids(ids: Ids, selection: str, types: Sequence[str], exiting: bool) -> list[tuple[str, str]]:
    """The identifiers a payload carries: every one on an exit, else the chosen types and values.

    Args:
        ids: `(type, value)` pairs, oldest first.
        selection: `all`, `first_added` or `last_added` (per identifier type).
        types: the types to keep; empty for all.
        exiting: the change is an exit, which always carries every identifier.
    """
    pairs = [(t, v) for t, v in ids]
    if exiting:
        return pairs
    kept = [(t, v) for t, v in pairs if not types or t in types]
    if selection == "all":
        return kept
    chosen: dict[str, tuple[str, str]] = {}
    for pair in kept:
        if selection == "last_added" or pair[0] not in chosen:
            chosen[pair[0]] = pair
    return [p for p in kept if chosen[p[0]] == p]


def value_of(record: Mapping[str, Any]) -> Any:
    """The value a payload reports: membership for an audience, the new value for a trait."""
    if record["kind"] == "audience":
        return record["change"] != "exited"
    return record["new"]


def _identity(ids: list[tuple[str, str]], profile_public_id: str) -> dict[str, str]:
    """userId / anonymousId from the carried identifiers; the profile id when it has neither,
    since tracking APIs refuse a call without one of them."""
    found: dict[str, str] = {}
    for id_type, field in (("user_id", "userId"), ("anonymous_id", "anonymousId")):
        value = next((v for t, v in ids if t == id_type), None)
        if value is not None:
            found[field] = value
    return found or {"anonymousId": profile_public_id}


def _context(record: Mapping[str, Any], ids: list[tuple[str, str]], collection: str) -> dict[str, Any]:
    return {
        "personas": {
            "computation_class": record["kind"],
            "computation_id": record["computation_id"],
            "computation_key": record["key"],
            "space_id": record["space"],
        },
        "externalIds": [{"id": v, "type": t, "collection": collection, "encoding": "none"} for t, v in ids],
        "library": {"name": "audiences", "version": __version__},
    }


def _base(record: Mapping[str, Any], kind: str, mid: str, ids: list[tuple[str, str]], who: str, coll: str
          ) -> dict[str, Any]:
    return {"type": kind, "messageId": mid, "timestamp": format_time(record["at_ms"]), **_identity(ids, who),
            "context": _context(record, ids, coll)}


def _event(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    key, value = record["key"], value_of(record)
    if record["kind"] == "audience":
        name = "Audience Exited" if record["change"] == "exited" else "Audience Entered"
        return name, {"audience_key": key, key: value}
    return "Trait Computed", {"trait_key": key, key: value}


def _person_calls(record: Mapping[str, Any], options: Mapping[str, Any], who: str, ids: Ids, suffix: str
                  ) -> list[dict[str, Any]]:
    """identify and/or track calls for one user."""
    exiting = record["change"] == "exited"
    chosen = select_ids(ids, options.get("identifier_selection", "all"), options.get("external_id_types", []), exiting)
    calls = []
    if options.get("send_identify"):
        call = _base(record, "identify", f"{record['message_id']}-identify{suffix}", chosen, who, "users")
        call["traits"] = {record["key"]: value_of(record)}
        calls.append(call)
    if options.get("send_track"):
        call = _base(record, "track", f"{record['message_id']}-track{suffix}", chosen, who, "users")
        call["event"], call["properties"] = _event(record)
        calls.append(call)
    return calls


def _group_call(record: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    exiting = record["change"] == "exited"
    chosen = select_ids(record["ids"], options.get("identifier_selection", "all"),
                        options.get("external_id_types", []), exiting)
    call = _base(record, "group", f"{record['message_id']}-group", chosen, record["profile"], "accounts")
    group_id = next((v for t, v in record["ids"] if t == "group_id"), record["profile"])
    call["groupId"] = group_id
    call["traits"] = {record["key"]: value_of(record)}
    return call


def calls_for(record: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The tracking calls one change record becomes under a connection's options, in send order.

    Each call's `messageId` is the record's id with a suffix naming the call (and, for an
    account's users, the user), so a receiver can dedup every call on its own.
    """
    if record["collection"] == "users":
        return _person_calls(record, options, record["profile"], record["ids"], "")
    group = options.get("send_group") and not record.get("users_only")
    calls = [_group_call(record, options)] if group else []
    for user in record.get("users", []):
        calls += _person_calls(record, options, user["profile"], user["ids"], "-" + user["profile"])
    return calls
