"""Segment's Profile API over HTTP: one profile's traits, events, external ids, links and metadata.

    GET /v1/spaces/{space}/collections/{users|accounts}/profiles/{type:value}/{endpoint}

HTTP Basic with a `read` token as user name. `{space}` is the space's name (what the sync
payloads give as `context.personas.space_id`); a token only sees its own space, and any other
name, whether a space of that name exists or not, is answered 404 "space not found", so a token
learns nothing about other spaces. Every read goes to the same engine methods as the gRPC
ProfilesService (the engine's `profile_reads`: this file's, or on a cluster's front the shards',
cluster/reads.py), on the pool; the bodies are Segment's (see docs/api.md), and JSON numbers come
back as they were sent (an integer stays an integer).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping
from yarl import URL

from audiences_server.core.numbers import whole_number
from audiences_server.core.tracking import format_time
from audiences_server.engine.engine import Engine
from audiences_server.engine.profile_reads import DEFAULT_PAGE, MAX_PAGE, EventFilter, ProfileSource, TraitItem
from audiences_server.errors import AudiencesError, FieldViolation, InvalidArgument, NotFound
from audiences_server.http.app import EDGE, ERROR_ANSWERS
from audiences_server.http.auth import basic_token, granted
from audiences_server.http.errors import HTTP_STATUS, error_response
from audiences_server.http.query import bad_parameter, query_time

PREFIX = "/v1/spaces/{space}/collections/{collection}/profiles/{profile}/{endpoint}"
HTTP_READ = "GET " + PREFIX  # the name a front's gate is asked for a Profile API read
COLLECTIONS = ("users", "accounts")
TRAIT_CLASSES = ("audience", "computed_trait", "custom")
# Under one key, which class wins when two were updated at the same moment (the higher).
_CLASS_PRECEDENCE = {"custom": 0, "computed_trait": 1, "audience": 2}
_FLAGS = {"true": True, "1": True, "false": False, "0": False}
_SORTS = {"desc": True, "asc": False}
_dump_stdlib = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=lambda o: o.parsed()).encode


class StoredJson:
    """JSON text as stored (an event's properties or context), written into a body unparsed."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def fragment(self) -> orjson.Fragment:
        """The text as orjson writes it: as is."""
        return orjson.Fragment(self.text)

    def parsed(self) -> Any:
        """The value, for the stdlib encoder."""
        return json.loads(self.text)


def dumps(body: Mapping[str, Any]) -> bytes:
    """A response body as JSON; numbers keep their kind (`3` stays `3`, `3.5` stays `3.5`).

    orjson refuses integers beyond 64 bits, which a trait may hold: those bodies go through the
    stdlib encoder, which writes any integer.
    """
    try:
        return orjson.dumps(body, default=StoredJson.fragment)
    except TypeError:
        return _dump_stdlib(body).encode()


@dataclass(frozen=True)
class Read:
    """One Profile API request, as the route matched it."""

    space: str
    collection: str
    profile: str
    endpoint: str
    query: MultiMapping[str]
    url: URL


# Segment's Profile API error codes (its reference, "Errors"), by HTTP status. A refused token
# scope is Segment's 401 case; a refused collection its example of a validation error.
SEGMENT_ERROR_CODES = {400: "invalid_request_error", 401: "authentication_error", 403: "authentication_error",
                       404: "not_found", 405: "invalid_request_error", 429: "rate_limit_error"}
VALIDATION_REASONS = frozenset({"COLLECTION_INVALID", "ENDPOINT_INVALID", "PATH_INVALID"})


def add_routes(app: web.Application) -> None:
    """Adds the Profile API's route, and a route that answers any other path under `/v1/spaces/`,
    both answering errors as Segment's Profile API does (`error_answer`)."""
    app.router.add_get(PREFIX, _profile_read)
    app.router.add_route("*", PREFIX, _other_method)
    app.router.add_get("/v1/spaces/{tail:.*}", _other_path)
    app.router.add_route("*", "/v1/spaces/{tail:.*}", _other_method)
    app[ERROR_ANSWERS][PREFIX] = app[ERROR_ANSWERS]["/v1/spaces/{tail}"] = error_answer


class MethodNotAllowed(AudiencesError):
    """A Profile API path asked with a method other than GET (or HEAD)."""

    code = "METHOD_NOT_ALLOWED"
    default_reason = "METHOD_NOT_ALLOWED"


async def _other_method(request: web.Request) -> web.Response:
    # The token is checked first, as for any read: without one, nothing about paths is told.
    edge = request.app[EDGE]
    await edge.blocking(granted, edge.engine.auth, basic_token(request), "read")
    raise MethodNotAllowed(f"the Profile API answers GET only, not {request.method}")


def error_body(error: AudiencesError) -> tuple[int, dict[str, Any]]:
    """A refused read's status and body: `{"error": {"code", "message", "reason"}}`, `code` in
    Segment's vocabulary (`not_found`, `authentication_error`, `invalid_request_error`,
    `validation_error`, `rate_limit_error`, and `server_error` for a 5xx), `reason` this
    server's precise one."""
    status = HTTP_STATUS.get(error.code, 500)
    code = "validation_error" if error.reason in VALIDATION_REASONS else SEGMENT_ERROR_CODES.get(status, "server_error")
    return status, {"error": {"code": code, "message": error.message, "reason": error.reason}}


def error_answer(error: AudiencesError, request: web.Request) -> web.Response:
    """The HTTP answer of a refused read: `error_body`, with the headers of `error_response`."""
    response = error_response(error, request)
    response.text = json.dumps(error_body(error)[1])
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = "GET, HEAD"
    return response


async def _profile_read(request: web.Request) -> web.Response:
    edge = request.app[EDGE]
    info = request.match_info
    read = Read(info["space"], info["collection"], info["profile"], info["endpoint"], request.query, request.rel_url)
    body = await edge.blocking(serve, edge.engine, basic_token(request), read)
    return web.Response(body=body, content_type="application/json")


async def _other_path(request: web.Request) -> web.Response:
    # The token is checked first here too: without one, nothing about paths is told.
    edge = request.app[EDGE]
    await edge.blocking(granted, edge.engine.auth, basic_token(request), "read")
    raise InvalidArgument(
        f"{request.path!r} is not a Profile API path: /v1/spaces/SPACE/collections/users|accounts/profiles/"
        "TYPE:VALUE/traits|events|external_ids|links|metadata",
        reason="PATH_INVALID", violations=[FieldViolation("path", "not a Profile API path")])


def serve(engine: Engine, token: str | None, read: Read) -> bytes:
    """The body of one read, checked in this order: the token (401, 403), the space (404), the
    path and parameters (400), the profile (400 for a bad address, 404 when there is none)."""
    grant = granted(engine.auth, token, "read")
    if engine.method_gate is not None:  # a cluster's front
        engine.method_gate(HTTP_READ)
    if grant.space_name != read.space:
        raise NotFound("space not found", reason="SPACE_NOT_FOUND")
    if read.collection not in COLLECTIONS:
        raise InvalidArgument(f"collection {read.collection!r} must be `users` or `accounts`",
                              reason="COLLECTION_INVALID", violations=[FieldViolation("collection", "unknown")])
    endpoint = ENDPOINTS.get(read.endpoint)
    if endpoint is None:
        raise InvalidArgument(f"endpoint {read.endpoint!r} must be one of {', '.join(ENDPOINTS)}",
                              reason="ENDPOINT_INVALID", violations=[FieldViolation("endpoint", "unknown")])
    allowed, handler = endpoint
    _only(read.query, allowed)
    return dumps(handler(engine.profile_reads, grant.space_id, read))


# -- parameters -------------------------------------------------------------------------------


def _only(query: MultiMapping[str], allowed: frozenset[str]) -> None:
    """Refuses a parameter the endpoint does not take, and a repeated one (but `include` and
    `exclude`, which may come once per name)."""
    for name in query:
        if name not in allowed:
            raise bad_parameter(name, f"unknown parameter `{name}`; this endpoint takes {', '.join(sorted(allowed))}",
                       "PARAMETER_UNKNOWN")
        if name not in ("include", "exclude") and len(query.getall(name)) > 1:
            raise bad_parameter(name, f"parameter `{name}` is given more than once", "PARAMETER_REPEATED")


def _limit(query: MultiMapping[str]) -> int:
    text = query.get("limit")
    if text is None:
        return DEFAULT_PAGE
    limit = whole_number(text, MAX_PAGE)
    if limit is None or limit < 1:
        raise bad_parameter("limit", f"`limit` must be a whole number from 1 to {MAX_PAGE}, not {text!r}",
                            "LIMIT_INVALID")
    return limit


def _flag(query: MultiMapping[str], name: str) -> bool:
    text = query.get(name)
    if text is None:
        return False
    if text.lower() not in _FLAGS:
        raise bad_parameter(name, f"`{name}` must be true or false, not {text!r}", f"{name.upper()}_INVALID")
    return _FLAGS[text.lower()]


def _names(query: MultiMapping[str], name: str) -> list[str]:
    """A comma-separated list, possibly given several times; blanks around names are dropped."""
    return [part.strip() for text in query.getall(name, []) for part in text.split(",") if part.strip()]


def _choice(query: MultiMapping[str], name: str, choices: Sequence[str], reason: str) -> str | None:
    text = query.get(name)
    if text is not None and text not in choices:
        raise bad_parameter(name, f"`{name}` must be one of {', '.join(choices)}, not {text!r}", reason)
    return text


def _cursor(read: Read, limit: int, following: str) -> dict[str, Any]:
    """Segment's cursor: `url` is this request's path and query with `next` set, when a next page exists."""
    url = str(read.url.update_query(next=following)) if following else ""
    return {"url": url, "has_more": bool(following), "next": following, "limit": limit}


# -- endpoints --------------------------------------------------------------------------------


def _traits(reads: ProfileSource, space_id: int, read: Read) -> dict[str, Any]:
    query = read.query
    limit, verbose = _limit(query), _flag(query, "verbose")
    trait_class = _choice(query, "class", TRAIT_CLASSES, "CLASS_INVALID")

    def page(size: int, token: str) -> tuple[list[TraitItem], str]:
        found = reads.traits(space_id, read.collection, read.profile, include=_names(query, "include"),
                             trait_class=trait_class, size=size, token=token)
        return found.items, found.next_token

    items, following = page(limit, query.get("next", ""))
    # A custom and a computed trait may share a key, and the page may end between them: the
    # key's other entry is read too, so that each key is answered on one page only.
    if following and items:
        probe, after = page(1, following)
        if probe and probe[0].key == items[-1].key:
            items, following = [*items, probe[0]], after
    traits = {key: _trait(max(same, key=_precedence), verbose) for key, same in groupby(items, lambda t: t.key)}
    return {"traits": traits, "cursor": _cursor(read, limit, following)}


def _precedence(item: TraitItem) -> tuple[int, int]:
    """Of the entries of one key, the last updated wins (Segment's rule); at the same moment, the computed one."""
    return item.updated_ms, _CLASS_PRECEDENCE[item.trait_class]


def _trait(item: TraitItem, verbose: bool) -> Any:
    if not verbose:
        return item.value
    return {"value": item.value, "source_id": item.source_id, "updated_at": format_time(item.updated_ms)}


def _events(reads: ProfileSource, space_id: int, read: Read) -> dict[str, Any]:
    query = read.query
    limit = _limit(query)
    start, end = query_time(query, "start"), query_time(query, "end")
    if start is not None and end is not None and end < start:
        raise bad_parameter("end", "`end` is before `start`", "TIME_RANGE_INVALID")
    descending = _SORTS[_choice(query, "sort", tuple(_SORTS), "SORT_INVALID") or "desc"]
    wanted = EventFilter(start, end, tuple(_names(query, "include")), tuple(_names(query, "exclude")), descending)
    page = reads.events(space_id, read.collection, read.profile, wanted, limit, query.get("next", ""))
    related = {read.collection: page.profile_id}
    return {"data": [_event(row, related) for row in page.items], "cursor": _cursor(read, limit, page.next_token)}


def _event(row: Mapping[str, Any], related: dict[str, str]) -> dict[str, Any]:
    # The identifiers the call itself carried, as Segment lists them on each event.
    ids = [{"collection": collection, "type": found.type, "id": found.value, "encoding": "none"}
           for collection, found in row["external_ids"]]
    return {"external_ids": ids, "context": StoredJson(row["context"]), "type": row["type"],
            "message_id": row["message_id"], "source_id": row["source_id"],
            "timestamp": format_time(row["ts"]), "properties": StoredJson(row["body"]), "event": row["event"],
            "related": related}


def _external_ids(reads: ProfileSource, space_id: int, read: Read) -> dict[str, Any]:
    query = read.query
    limit = _limit(query)
    _flag(query, "verbose")  # accepted as Segment's; every field is always given
    page = reads.external_ids(space_id, read.collection, read.profile, limit, query.get("next", ""),
                              types=_names(query, "include"))
    data = [{"source_id": row["source_id"], "collection": read.collection, "id": row["id_value"],
             "type": row["id_type"], "created_at": format_time(row["added_ms"]), "encoding": "none",
             "first_message_id": row["message_id"]} for row in page.items]
    return {"data": data, "cursor": _cursor(read, limit, page.next_token)}


def _links(reads: ProfileSource, space_id: int, read: Read) -> dict[str, Any]:
    query = read.query
    limit = _limit(query)
    page = reads.links(space_id, read.collection, read.profile, limit, query.get("next", ""))
    data = []
    for row in page.items:
        summary = row["summary"]
        ids = [{"id": i["id_value"], "type": i["id_type"], "source_id": i["source_id"],
                "collection": summary["collection"], "created_at": format_time(i["added_ms"]), "encoding": "none"}
               for i in summary["identifiers"]]
        data.append({"to_collection": summary["collection"], "external_ids": ids})
    return {"data": data, "cursor": _cursor(read, limit, page.next_token)}


def _metadata(reads: ProfileSource, space_id: int, read: Read) -> dict[str, Any]:
    _flag(read.query, "verbose")  # accepted as Segment's; every field is always given
    row, _merged = reads.metadata(space_id, read.collection, read.profile)
    return {"metadata": {
        "created_at": format_time(row["created_ms"]), "updated_at": format_time(row["updated_ms"]),
        "expires_at": None,
        "first_message_id": row["first_message_id"], "first_source_id": row["first_source_id"],
        "last_message_id": row["last_message_id"], "last_source_id": row["last_source_id"],
    }}


Endpoint = Callable[[ProfileSource, int, Read], dict[str, Any]]
ENDPOINTS: dict[str, tuple[frozenset[str], Endpoint]] = {
    "traits": (frozenset({"include", "class", "verbose", "limit", "next"}), _traits),
    "events": (frozenset({"start", "end", "include", "exclude", "sort", "limit", "next"}), _events),
    "external_ids": (frozenset({"include", "verbose", "limit", "next"}), _external_ids),
    "links": (frozenset({"limit", "next"}), _links),
    "metadata": (frozenset({"verbose"}), _metadata),
}
