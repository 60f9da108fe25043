"""The console's reads: each one engine call (or a few), shaped by `views` (blocking; run on the pool).

These are the engine methods the gRPC servicers call for ListAudiences, GetSizeHistory,
ListDefinitionVersions, ValidateDefinition, PreviewDefinition, ExplainMembership, the
ProfilesService reads, ListMembershipHistory, ListDestinations, ListConnections and
ListDeadLetters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from multidict import MultiMapping

from audiences_server.core import ql
from audiences_server.core.numbers import dead_letter_number, whole_number
from audiences_server.engine.computations import COLLECTIONS, definition_problem, etag_of
from audiences_server.engine.engine import Engine
from audiences_server.engine.history import DAY_MS, HOUR_MS, HistoryQuery
from audiences_server.engine.profile_reads import MAX_PAGE, EventFilter, Page
from audiences_server.http.console import views
from audiences_server.http.query import bad_parameter, query_time

INTERVALS = {"hourly": HOUR_MS, "daily": DAY_MS}
TRAIT_CLASSES = ("audience", "computed_trait", "custom")
# Dead letters listed per destination on the destinations page (a redrive of all takes every one);
# the page shows how many there are and reads the rest a page at a time from `/dead-letters`.
DEAD_LETTERS_SHOWN = 50
MAX_DEAD_LETTERS_PAGE = 1000


def collection_of(text: str) -> str:
    """A collection named in a path: users or accounts."""
    if text not in COLLECTIONS:
        raise bad_parameter("collection", f"collection must be users or accounts, not {text!r}", "COLLECTION_INVALID")
    return text


def clock(engine: Engine) -> dict[str, Any]:
    """The evaluator's clock: what "now" is for the definitions."""
    return {"now": views.when(engine.clock.now_ms()), "manual": engine.clock.manual}


def computations(engine: Engine, space_id: int, with_sizes: bool) -> dict[str, Any]:
    """Every audience and computed trait of the space, with (when asked) the last 48 hours' sizes."""
    rows = [*engine.computations.of_kind(space_id, "audience", None),
            *engine.computations.of_kind(space_id, "computed_trait", None)]
    items = []
    for row in rows:
        item = views.computation(row)
        if with_sizes:
            _, points = engine.history.sizes(space_id, row.collection, row.key, HOUR_MS, None, None)
            item["sizes"] = [views.point(p) for p in points]
        items.append(item)
    return {"computations": items, "clock": clock(engine)}


def computation(engine: Engine, space_id: int, collection: str, key: str) -> dict[str, Any]:
    """One definition, whichever its kind, with the `etag` an edit of it sends back (see
    `computations.etag_of`)."""
    collection = collection_of(collection)
    found = [r for kind in ("audience", "computed_trait")
             for r in engine.computations.of_kind(space_id, kind, collection) if r.key == key]
    row = found[0] if found else engine.computations.get(space_id, "audience", collection, key)  # NotFound
    return {"computation": views.computation(row), "etag": etag_of(row)}


def sizes(engine: Engine, space_id: int, collection: str, key: str, interval: str) -> dict[str, Any]:
    """A definition's size per hour (the last 48) or per day (the last 30)."""
    if interval not in INTERVALS:
        raise bad_parameter("interval", "`interval` must be hourly or daily", "INTERVAL_INVALID")
    row, points = engine.history.sizes(space_id, collection_of(collection), key, INTERVALS[interval], None, None)
    return {"key": row.key, "size": row.size, "interval": interval, "points": [views.point(p) for p in points]}


def versions(engine: Engine, space_id: int, collection: str, key: str) -> dict[str, Any]:
    """Every version of a definition, newest first."""
    row, found, token = engine.versions.versions(space_id, collection_of(collection), key, 1000, "")
    while token:
        _, more, token = engine.versions.versions(space_id, collection, key, 1000, token)
        found = [*found, *more]
    return {"current": row.version, "versions": [views.version(row, v) for v in found]}


def validate(engine: Engine, space_id: int, kind: str, collection: str, key: str, text: str) -> dict[str, Any]:
    """Whether a text is a valid definition: its dependency summary, or where and why it is wrong."""
    collection = collection_of(collection)
    try:
        checked = ql.parse_and_check(text, kind=cast(ql.Kind, kind), collection=cast(ql.Collection, collection))
    except ql.QueryError as error:
        return {"valid": False, "error": views.problem(definition_problem(error))}
    cycle = engine.computations.cycle_for(space_id, kind, collection, key, text)
    if cycle:
        message = "definitions would read each other in a cycle: " + " -> ".join(cycle)
        return {"valid": False, "summary": views.summary(checked.summary),
                "error": {"reason": "DEPENDENCY_CYCLE", "message": message, "hint": "", "line": 0, "column": 0,
                          "offending_text": "", "expected": [], "caret_display": "", "cycle_keys": cycle}}
    return {"valid": True, "summary": views.summary(checked.summary)}


def preview(engine: Engine, space_id: int, kind: str, collection: str, text: str, options: dict[str, Any],
            sample_size: int, compare_key: str) -> dict[str, Any]:
    """What a text matches now with `options` (count and sample); with `compare_key`, the diff
    against that definition, both evaluated with `options` over its stored ones (the edited
    options, as a save would store them)."""
    collection = collection_of(collection)
    # Counted with the options, as a definition saved with them (or the edit of `compare_key`, as
    # its diff below) would be: a count over all history beside a diff that is not read as wrong.
    count, found, now = engine.computations.preview(space_id, text, kind, collection,
                                                    bool(options.get("include_anonymous_users", False)), sample_size,
                                                    options, compare_key)
    checked = ql.parse_and_check(text, kind=cast(ql.Kind, kind), collection=cast(ql.Collection, collection))
    body: dict[str, Any] = {"count": count, "evaluated": views.when(now), "samples": views.samples(engine, found),
                            "summary": views.summary(checked.summary)}
    if compare_key:
        body["diff"] = views.diff(engine, engine.computations.diff(space_id, text, kind, collection, compare_key,
                                                                   sample_size, options))
    return body


def explain(engine: Engine, space_id: int, collection: str, key: str, address: str) -> dict[str, Any]:
    """Why a profile has its value for a definition: explain's tree and evidence."""
    found = engine.explainer.explain(space_id, collection_of(collection), key, address, None, 10)
    return views.Explanation(engine, found).body()


# -- profiles ---------------------------------------------------------------------------------


def profile(engine: Engine, space_id: int, collection: str, part: str, query: MultiMapping[str]) -> dict[str, Any]:
    """One part of a profile found by `address` (`type:value` or `prf_…`): a page of it, or its metadata."""
    collection = collection_of(collection)
    read = _PARTS.get(part)
    if read is None:
        raise bad_parameter("part", f"part must be one of {', '.join(_PARTS)}, not {part!r}", "PART_INVALID")
    address = query.get("address", "")
    if not address:
        raise bad_parameter("address", "`address` (type:value or prf_…) is required", "PROFILE_ID_MISSING")
    return read(engine, Where(space_id, collection, address, query))


@dataclass(frozen=True)
class Where:
    """Which profile a read is of, and the read's parameters."""

    space_id: int
    collection: str
    address: str
    query: MultiMapping[str]

    @property
    def size(self) -> int:
        """The page size asked (`limit`, 20 by default)."""
        limit = whole_number(self.query.get("limit", "20"), MAX_PAGE)
        if limit is None or limit < 1:
            raise bad_parameter("limit", f"`limit` must be a whole number from 1 to {MAX_PAGE}", "LIMIT_INVALID")
        return limit

    @property
    def token(self) -> str:
        """The cursor of the page asked (`next`), empty for the first."""
        return self.query.get("next", "")


def _paged(page: Page, view: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {"profile_id": page.profile_id, "items": [view(item) for item in page.items], "next": page.next_token}


def _metadata(engine: Engine, at: Where) -> dict[str, Any]:
    row, merged = engine.profile_reads.metadata(at.space_id, at.collection, at.address)
    return {"profile_id": row["public_id"], "created": views.when(row["created_ms"]),
            "updated": views.when(row["updated_ms"]), "first_message": views.when(row["first_message_ms"]),
            "last_message": views.when(row["last_message_ms"]), "merged": merged}


def _history(engine: Engine, at: Where) -> dict[str, Any]:
    query = HistoryQuery(at.collection, at.address, "", None, None, at.size, at.token)
    records, following = engine.history.records(at.space_id, query)
    return {"items": [views.change(r) for r in records], "next": following}


def _traits(engine: Engine, at: Where) -> dict[str, Any]:
    trait_class = at.query.get("class") or None
    if trait_class is not None and trait_class not in TRAIT_CLASSES:
        raise bad_parameter("class", f"`class` must be one of {', '.join(TRAIT_CLASSES)}", "CLASS_INVALID")
    page = engine.profile_reads.traits(at.space_id, at.collection, at.address, include=[], trait_class=trait_class,
                                       size=at.size, token=at.token)
    return _paged(page, views.trait)


def _events(engine: Engine, at: Where) -> dict[str, Any]:
    wanted = _event_filter(at.query)
    return _paged(engine.profile_reads.events(at.space_id, at.collection, at.address, wanted, at.size, at.token),
                  views.event)


def _identifiers(engine: Engine, at: Where) -> dict[str, Any]:
    page = engine.profile_reads.external_ids(at.space_id, at.collection, at.address, at.size, at.token)
    return _paged(page, views.identifier)


def _links(engine: Engine, at: Where) -> dict[str, Any]:
    return _paged(engine.profile_reads.links(at.space_id, at.collection, at.address, at.size, at.token), views.link)


def _memberships(engine: Engine, at: Where) -> dict[str, Any]:
    page = engine.profile_reads.memberships(at.space_id, at.collection, at.address, at.size, at.token)
    return _paged(page, views.membership)


_PARTS: dict[str, Callable[[Engine, Where], dict[str, Any]]] = {
    "traits": _traits, "events": _events, "identifiers": _identifiers, "links": _links,
    "memberships": _memberships, "history": _history, "metadata": _metadata,
}


def _names(query: MultiMapping[str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in query.get(name, "").split(",") if part.strip())


def _event_filter(query: MultiMapping[str]) -> EventFilter:
    start, end = query_time(query, "start"), query_time(query, "end")
    if start is not None and end is not None and end < start:
        raise bad_parameter("end", "`end` is before `start`", "TIME_RANGE_INVALID")
    order = query.get("sort", "desc")
    if order not in ("asc", "desc"):
        raise bad_parameter("sort", "`sort` must be asc or desc", "SORT_INVALID")
    return EventFilter(start, end, _names(query, "include"), _names(query, "exclude"), order == "desc")


# -- destinations -----------------------------------------------------------------------------


def destinations(engine: Engine, space_id: int, full: bool) -> dict[str, Any]:
    """Every destination with its connections (delivery status, lag, last failure) and dead letters;
    not `full` (a read token), with the settings that may carry credentials blanked (views.destination)."""
    rows = engine.sync.destinations(space_id, "", 1000)
    connections = engine.sync.connections(space_id, "", None)
    items = []
    for row in rows:
        item = views.destination(row, full)
        item["connections"] = [views.connection(c) for c in connections if c.destination.key == row.key]
        # Every dead letter counted (its connections' dead), not just those listed.
        item["dead_letters_total"] = sum(c["dead"] for c in item["connections"])
        first = dead_letters(engine, space_id, row.key, DEAD_LETTERS_SHOWN, 0)
        item["dead_letters"], item["dead_letters_next"] = first["dead_letters"], first["next"]
        items.append(item)
    return {"destinations": items}


def dead_letters(engine: Engine, space_id: int, key: str, limit: int, after: int) -> dict[str, Any]:
    """A page of a destination's parked deliveries, the oldest first, after the delivery `after`;
    `next` is the `after` of the following page (the last id listed), "" at the end."""
    found = engine.sync.dead_letters(space_id, key, None, after, limit + 1)
    page = [views.dead_letter(v) for v in found[:limit]]
    return {"dead_letters": page, "next": page[-1]["id"] if len(found) > limit else ""}


def dead_letters_page(engine: Engine, space_id: int, key: str, query: MultiMapping[str]) -> dict[str, Any]:
    """`/dead-letters`: `limit` (1 to 1,000, default 1,000) after the dead letter `after` (`dlq_…`)."""
    limit = whole_number(query.get("limit", str(MAX_DEAD_LETTERS_PAGE)), MAX_DEAD_LETTERS_PAGE)
    if limit is None or limit < 1:
        raise bad_parameter("limit", f"`limit` must be a whole number from 1 to {MAX_DEAD_LETTERS_PAGE:,}",
                            "LIMIT_INVALID")
    after = dead_letter_number(query["after"]) if query.get("after") else 0
    if after is None:
        raise bad_parameter("after", f"{query['after']!r} is not a dead letter id", "DEAD_LETTER_ID_INVALID")
    return {"destination": key, **dead_letters(engine, space_id, key, limit, after)}
