"""What the console's JSON API answers: the engine's own types as plain JSON-ready dicts.

Times are ISO-8601 UTC strings (None when unset), values are JSON as computed, and profiles are
named by their public id and identifiers, as the gRPC API names them.
"""

from __future__ import annotations

from typing import Any

from audiences_server.core import ql
from audiences_server.core.ql.explain import EventRef, Node, StreamEvidence
from audiences_server.core.ql.reasons import Edge, NextChange
from audiences_server.core.tracking import format_time
from audiences_server.engine.diff import Diff
from audiences_server.engine.engine import Engine
from audiences_server.engine.explain import Explained
from audiences_server.engine.history import Point, Record
from audiences_server.engine.profile_reads import TraitItem
from audiences_server.engine.sync import configs
from audiences_server.engine.sync.service import ConnectionView, DeadLetterView
from audiences_server.errors import DefinitionProblem
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.sync import DestinationRow
from audiences_server.store.versions import VersionRow

HINT_MARK = "did you mean "


def when(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO-8601 UTC, None staying None."""
    return None if ms is None else format_time(ms)


def summary(checked: ql.Summary) -> dict[str, Any]:
    """A definition's dependency summary: what it reads and how far back."""
    return {
        "events": sorted(checked.events),
        "properties": sorted(f"{e}.{p}" for e, props in checked.properties.items() for p in props),
        "context_paths": sorted(f"{e}.{p}" for e, paths in checked.context_paths.items() for p in paths),
        "traits": sorted(checked.traits | checked.user_traits),
        "lookback_ms": checked.lookback_ms,
        "lookback_unbounded": checked.reads_events and checked.lookback_ms is None,
    }


def hint_of(message: str) -> str:
    """The "did you mean …?" suggestion the parser appends to a message, or ""."""
    _, found, rest = message.partition(HINT_MARK)
    return HINT_MARK + rest if found else ""


def problem(found: DefinitionProblem) -> dict[str, Any]:
    """A definition error: where (line, column, caret display), why, and the hint when there is one."""
    return {
        "reason": found.reason, "message": found.message, "hint": hint_of(found.message), "line": found.line,
        "column": found.column, "offending_text": found.offending_text, "expected": list(found.expected),
        "caret_display": found.caret_display, "cycle_keys": list(found.cycle_keys),
    }


def computation(row: ComputationRow) -> dict[str, Any]:
    """An audience or computed trait with its state."""
    try:
        reads = summary(ql.parse_and_check(row.definition, kind=row.kind, collection=row.collection).summary)  # type: ignore[arg-type]
    except ql.QueryError:
        reads = None  # a definition saved under older rules: shown, with no summary
    return {
        "id": row.public_id, "kind": row.kind, "collection": row.collection, "key": row.key, "name": row.name,
        "description": row.description, "definition": row.definition, "enabled": row.enabled,
        "options": row.options, "status": row.status, "error": row.error if row.status == "FAILED" else "",
        "size": row.size, "backfill": {"done": row.progress_done, "total": row.progress_total},
        "last_computed": when(row.last_computed_ms), "created": when(row.created_ms),
        "updated": when(row.updated_ms), "version": row.version, "summary": reads,
    }


def point(found: Point) -> dict[str, Any]:
    """One interval of a size series."""
    return {"start": when(found.start_ms), "size": found.size, "entered": found.entered, "exited": found.exited,
            "changed": found.changed}


def version(row: ComputationRow, found: VersionRow) -> dict[str, Any]:
    """One numbered version of a definition."""
    return {
        "version": found.version, "definition": found.definition, "options": found.options,
        "created": when(found.created_ms), "actor": found.actor, "backfilled": when(found.backfilled_ms),
        "size_after_backfill": found.size_after_backfill, "current": found.version == row.version,
    }


def profiles(engine: Engine, profile_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Profiles as the API names them: public id, collection and identifiers (`type:value`)."""
    return {
        pid: {"id": public, "collection": collection, "identifiers": [f"{t}:{v}" for t, v in ids]}
        for pid, (public, collection, ids) in engine.profile_refs(profile_ids).items()
    }


def samples(engine: Engine, found: list[tuple[int, Any]]) -> list[dict[str, Any]]:
    """A preview's sample: each profile and its value."""
    named = profiles(engine, [pid for pid, _ in found])
    return [{"profile": named.get(pid), "value": value} for pid, value in found]


def diff(engine: Engine, found: Diff) -> dict[str, Any]:
    """What saving a text as a definition would change: counts and samples of each outcome."""
    named = profiles(engine, [pid for kept in found.samples.values() for pid, _, _ in kept])
    return {
        "compare_key": found.row.key, "entering": found.entering, "exiting": found.exiting,
        "staying": found.staying, "changed": found.changed,
        "samples": {outcome: [{"profile": named.get(pid), "old": old, "new": new} for pid, old, new in kept]
                    for outcome, kept in found.samples.items()},
    }


def trait(item: TraitItem) -> dict[str, Any]:
    """One trait of a profile, with its class and when it was set."""
    return {"key": item.key, "value": item.value, "class": item.trait_class, "source_id": item.source_id,
            "updated": when(item.updated_ms)}


def event(row: dict[str, Any]) -> dict[str, Any]:
    """One stored event; its properties and context as JSON text, as stored."""
    return {"message_id": row["message_id"], "type": row["type"], "event": row["event"],
            "user_id": row["user_id"], "anonymous_id": row["anonymous_id"], "timestamp": when(row["ts"]),
            "received": when(row["received_ms"]), "properties": row["body"], "context": row["context"]}


def identifier(row: dict[str, Any]) -> dict[str, Any]:
    """One identifier of a profile."""
    return {"type": row["id_type"], "value": row["id_value"], "added": when(row["added_ms"]),
            "source_id": row["source_id"]}


def link(row: dict[str, Any]) -> dict[str, Any]:
    """A linked profile (a user's account, an account's user)."""
    found = row["summary"]
    return {"id": found["public_id"], "collection": found["collection"], "linked": when(row["linked_ms"]),
            "identifiers": [f"{i['id_type']}:{i['id_value']}" for i in found["identifiers"]]}


def membership(row: dict[str, Any]) -> dict[str, Any]:
    """An audience the profile is in."""
    return {"key": row["key"], "id": row["public_id"], "name": row["name"], "entered": when(row["updated_ms"])}


def change(found: Record) -> dict[str, Any]:
    """One entry, exit or value change of the membership history."""
    return {"key": found.key, "kind": found.kind, "change": found.change, "old": found.old, "new": found.new,
            "at": when(found.at_ms)}


class Explanation:
    """An explanation as JSON: the tree with its evidence, and when the value next changes."""

    def __init__(self, engine: Engine, found: Explained) -> None:
        self.found = found
        pids = {found.profile_id, *found.users, *(pid for _, pid in found.messages.values())}
        self.named = profiles(engine, sorted(pids))

    def body(self) -> dict[str, Any]:
        """The whole explanation."""
        found = self.found
        return {
            "definition": {"kind": found.row.kind, "collection": found.row.collection, "key": found.row.key,
                           "text": found.row.definition},
            "profile": self.named.get(found.profile_id), "at": when(found.at_ms), "value": found.value,
            "stored": found.stored, "pending": found.pending, "anonymous_excluded": found.excluded,
            "root": self.node(found.explanation.root), "next_change": self.next_change(found.explanation.next),
        }

    def node(self, node: Node) -> dict[str, Any]:
        """One part of the definition with its value, its parts and its evidence."""
        out: dict[str, Any] = {"kind": node.kind, "text": node.text, "value": node.value,
                               "children": [self.node(child) for child in node.children]}
        if node.trait is not None:
            out["trait"] = {"key": node.trait,
                            "class": self.found.trait_classes.get(node.trait.split(".", 1)[0], "custom")}
        if node.stream is not None:
            out["stream"] = self.stream(node.stream)
        if node.users or node.users_total:
            out["users"] = [{"profile": self.named.get(u.user), "satisfied": u.value, "node": self.node(u.node)}
                            for u in node.users]
            out["users_satisfying"], out["users_total"] = node.users_holding, node.users_total
        return out

    def stream(self, stream: StreamEvidence) -> dict[str, Any]:
        """The events behind a reducer: how many, each filter's remainder, and the kept events."""
        return {"event": stream.event, "seen": stream.seen, "count": stream.count,
                "filters": [{"filter": s.text, "remaining": s.remaining} for s in stream.steps],
                "events": [self.event(e) for e in stream.events]}

    def event(self, ref: EventRef) -> dict[str, Any]:
        """One event read as evidence, with the message it came in."""
        message_id, pid = self.found.messages.get(ref.seq, ("", self.found.profile_id))
        named = self.named.get(pid)
        return {"message_id": message_id, "profile_id": named["id"] if named else "", "event": ref.name,
                "timestamp": when(ref.timestamp_ms), "value": ref.value,
                "read": dict(ref.read)}

    def next_change(self, found: NextChange) -> dict[str, Any]:
        """When the value next changes with no new data, and why."""
        return {"check": when(found.check_ms), "check_reasons": [self.reason(e) for e in found.check_reasons],
                "change": when(found.change_ms), "new_value": found.value if found.change_ms is not None else None,
                "reasons": [self.reason(e) for e in found.reasons], "search_exhausted": found.exhausted,
                "summary": self.found.summary}

    def reason(self, edge: Edge) -> dict[str, Any]:
        """One instant the result depends on."""
        message_id = self.found.messages.get(edge.seq, ("", 0))[0] if edge.seq is not None else ""
        return {"at": when(edge.at_ms), "description": edge.reason, "message_id": message_id}


def destination(row: DestinationRow, full: bool) -> dict[str, Any]:
    """A destination with its settings, secrets blanked, as GetDestination shows them to an admin
    token; not `full` (a read token, which the gRPC API shows no destination), the settings that
    may carry credentials too: header values, and the query values and fragment of URLs."""
    config = configs.public_config(row.kind, row.config)
    if not full:
        config = {name: _blanked(name, value) for name, value in config.items()}
    return {"key": row.key, "id": row.public_id, "name": row.name, "kind": row.kind, "enabled": row.enabled,
            "config": config, "policy": row.policy, "created": when(row.created_ms), "updated": when(row.updated_ms)}


# The settings of the destinations' kinds that are URLs (a webhook's, a Segment source's) and that
# are headers (a webhook's): what a read token sees of them is blanked where credentials go.
URL_SETTINGS = frozenset({"url", "base_url"})
HEADER_SETTINGS = frozenset({"headers"})


def _blanked(name: str, value: Any) -> Any:
    if name in HEADER_SETTINGS and isinstance(value, dict):
        return dict.fromkeys(value, "")
    if name in URL_SETTINGS and isinstance(value, str):
        return without_query_values(value)
    return value


def without_query_values(url: str) -> str:
    """A URL with its query's values blanked (`?api_key=`; a part with no `=` is left out) and no
    fragment: an API key in the query string is a credential like a header's."""
    head, mark, query = url.partition("#")[0].partition("?")
    return head + mark + "&".join(part.partition("=")[0] + "=" for part in query.split("&") if "=" in part)


def connection(view: ConnectionView) -> dict[str, Any]:
    """A connection with its delivery status: pending, delivered, retrying, dead, lag, last error."""
    comp, row, status = view.computation, view.row, view.status
    return {
        "destination": view.destination.key,
        "computation": {"kind": comp.kind, "collection": comp.collection, "key": comp.key, "name": comp.name},
        "phase": row.phase, "options": row.options,
        "pending": status["pending"], "delivered": status["delivered"], "retrying": status["retrying"],
        "dead": status["dead"], "lag_ms": status["lag_ms"], "last_error": row.last_error,
        "last_error_at": when(row.last_error_ms), "last_delivery": when(row.last_delivery_ms),
    }


def dead_letter(view: DeadLetterView) -> dict[str, Any]:
    """A parked delivery: what it would send and why it was parked."""
    comp = view.computation
    return {
        "id": f"dlq_{view.delivery_id}", "destination": view.destination_key,
        "computation": {"kind": comp.kind, "collection": comp.collection, "key": comp.key},
        "profile_id": view.profile_public_id, "message_id": view.message_id, "payload": view.payload,
        "change": {"type": view.change, "old": view.old, "new": view.new},
        "attempts": view.attempts, "last_error": view.last_error, "first_attempt": when(view.first_attempt_ms),
        "dead_at": when(view.dead_ms),
    }
