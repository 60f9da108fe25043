"""The console's JSON API under `/console/api/`: the same engine methods as the gRPC services.

Every call carries `Authorization: Bearer <token>`, an admin or read token of a space (the
tokens of the gRPC API). Without one it is answered 401; a token of another scope, or a read
token asking to change something, 403. Every answer is JSON; an error is
`{"error": {"code", "reason", "message", …}}` with the status of its code, and a definition
error carries where it is (line, column, caret display) and the parser's "did you mean" hint.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from audiences_server.engine.computations import KINDS, MAX_SAMPLE_SIZE, Spec
from audiences_server.engine.engine import Engine
from audiences_server.errors import (
    AudiencesError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from audiences_server.http.app import EDGE
from audiences_server.http.bodies import BadEncoding, content_encoding, inflated
from audiences_server.http.console import reads, writes
from audiences_server.http.console.views import problem
from audiences_server.http.errors import HTTP_STATUS
from audiences_server.http.profiles import dumps
from audiences_server.store.spaces import Grant

PREFIX = "/console/api"
SCOPES = ("admin", "read")
MAX_BODY = 256 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application) -> None:
    """Adds the API's routes; any other path under it is answered 404 as JSON, after the token."""
    get, post = app.router.add_get, app.router.add_post
    get(f"{PREFIX}/session", _session)
    get(f"{PREFIX}/computations", _computations)
    post(f"{PREFIX}/computations", _create)
    get(PREFIX + "/computations/{collection}/{key}", _computation)
    app.router.add_patch(PREFIX + "/computations/{collection}/{key}", _update)
    app.router.add_delete(PREFIX + "/computations/{collection}/{key}", _delete)
    get(PREFIX + "/computations/{collection}/{key}/sizes", _sizes)
    get(PREFIX + "/computations/{collection}/{key}/versions", _versions)
    post(PREFIX + "/computations/{collection}/{key}/rollback", _rollback)
    post(f"{PREFIX}/validate", _validate)
    post(f"{PREFIX}/preview", _preview)
    get(PREFIX + "/profiles/{collection}/{part}", _profile)
    get(PREFIX + "/explain/{collection}/{key}", _explain)
    get(f"{PREFIX}/destinations", _destinations)
    get(PREFIX + "/destinations/{key}/dead-letters", _dead_letters)
    post(PREFIX + "/destinations/{key}/redrive", _redrive)
    app.router.add_route("*", PREFIX + "/{tail:.*}", _unknown)


# -- plumbing ---------------------------------------------------------------------------------


def error_body(error: AudiencesError) -> web.Response:
    """A domain error as the console's JSON error, with its definition problem and fields."""
    body: dict[str, Any] = {"code": error.code, "reason": error.reason, "message": error.message}
    if error.definition is not None:
        body["definition"] = problem(error.definition)
    if error.violations:
        body["fields"] = [{"field": v.field, "description": v.description} for v in error.violations]
    if error.metadata:
        body["metadata"] = error.metadata
    response = web.Response(body=dumps({"error": body}), status=HTTP_STATUS.get(error.code, 500),
                            content_type="application/json")
    if response.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="audiences console"'
    return response


def _json(body: Any, status: int = 200) -> web.Response:
    response = web.Response(body=dumps(body), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def api(write: bool = False) -> Callable[[Callable[..., Any]], Handler]:
    """Wraps a blocking `function(engine, grant, request_parts…)` as a handler: the token checked
    (an admin token for a write), the call run on the pool, its result or error as JSON."""

    def wrap(function: Callable[..., Any]) -> Handler:
        @functools.wraps(function)
        async def handler(request: web.Request) -> web.Response:
            edge = request.app[EDGE]
            try:
                grant = await edge.blocking(signed_in, edge.engine, request.headers.getall("Authorization", []),
                                            write)
                if edge.engine.method_gate is not None:  # a cluster's front: its file holds no profiles
                    edge.engine.method_gate(f"console {function.__name__}")
                body = await _body(request)
                result = await edge.blocking(function, edge.engine, grant, dict(request.match_info),
                                             request.query, body)
            except AudiencesError as error:
                return error_body(error)
            return _json(result)

        return handler

    return wrap


def signed_in(engine: Engine, headers: list[str], write: bool) -> Grant:
    """The grant of the request's single `Authorization: Bearer <token>` header.

    Raises:
        Unauthenticated: no header, more than one, not Bearer, or a token the server does not know.
        PermissionDenied: a token of another scope than admin or read, or a read token for a write.
    """
    if not headers:
        raise Unauthenticated("sign in: send `Authorization: Bearer <token>` with an admin or read token",
                              reason="TOKEN_MISSING")
    kind, _, token = headers[0].partition(" ")
    if len(headers) > 1 or kind != "Bearer" or not token or token != token.strip():
        raise Unauthenticated("send exactly one `Authorization: Bearer <token>` header", reason="TOKEN_MALFORMED")
    grant = engine.auth.grant(token)
    if grant.scope not in SCOPES:
        raise PermissionDenied(f"the console takes an admin or read token; this one has scope `{grant.scope}`",
                               reason="SCOPE_MISSING", metadata={"token_scope": grant.scope})
    if write and grant.scope != "admin":
        raise PermissionDenied("this token can read only: changes need an admin token", reason="READ_ONLY_TOKEN",
                               metadata={"required_scope": "admin", "token_scope": grant.scope})
    return grant


async def _body(request: web.Request) -> dict[str, Any]:
    if request.method not in ("POST", "PATCH"):
        return {}
    encoding = content_encoding(request)
    try:
        raw = inflated(await request.read(), encoding, MAX_BODY)
    except web.HTTPRequestEntityTooLarge:
        # Past the listener's limit (aiohttp stops reading): as large a body as one past the API's.
        raise InvalidArgument(f"the body is larger than {MAX_BODY} bytes", reason="BODY_TOO_LARGE") from None
    except (BadEncoding, RequestPayloadError) as bad:
        told = f"is not valid {encoding} data" if isinstance(bad, BadEncoding) else "could not be read"
        raise InvalidArgument(f"the body {told}: {bad}", reason="BODY_INVALID",
                              violations=[FieldViolation("body", told)]) from None
    if len(raw) > MAX_BODY:
        raise InvalidArgument(f"the body is larger than {MAX_BODY} bytes", reason="BODY_TOO_LARGE")
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as bad:
        raise InvalidArgument(f"the body is not JSON: {bad}", reason="BODY_INVALID",
                              violations=[FieldViolation("body", "not JSON")]) from None
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object", reason="BODY_INVALID",
                              violations=[FieldViolation("body", "not an object")])
    return body


def field(body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """A field of a request body, of the type asked (a missing one is `default`, or refused when None)."""
    value = body.get(name, default)
    if value is None:
        raise InvalidArgument(f"`{name}` is required", reason="FIELD_MISSING",
                              violations=[FieldViolation(name, "required")])
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidArgument(f"`{name}` must be a {kind.__name__}", reason="FIELD_INVALID",
                              violations=[FieldViolation(name, f"not a {kind.__name__}")])
    return value


def kind_of(body: dict[str, Any]) -> str:
    """The body's `kind`: audience or computed_trait."""
    kind = field(body, "kind", str, "audience")
    if kind not in KINDS:
        raise InvalidArgument(f"`kind` must be one of {', '.join(KINDS)}", reason="KIND_INVALID",
                              violations=[FieldViolation("kind", "unknown")])
    return str(kind)


# -- handlers ---------------------------------------------------------------------------------


@api()
def _session(engine: Engine, grant: Grant, _path: dict[str, str], _query: Any, _body: Any) -> dict[str, Any]:
    return {"space": grant.space_name, "scope": grant.scope, "label": grant.label,
            "can_write": grant.scope == "admin", "clock": reads.clock(engine)}


@api()
def _computations(engine: Engine, grant: Grant, _path: dict[str, str], query: Any, _body: Any) -> dict[str, Any]:
    return reads.computations(engine, grant.space_id, query.get("sizes") == "hourly")


@api()
def _computation(engine: Engine, grant: Grant, path: dict[str, str], _query: Any, _body: Any) -> dict[str, Any]:
    return reads.computation(engine, grant.space_id, path["collection"], path["key"])


@api()
def _sizes(engine: Engine, grant: Grant, path: dict[str, str], query: Any, _body: Any) -> dict[str, Any]:
    return reads.sizes(engine, grant.space_id, path["collection"], path["key"], query.get("interval", "hourly"))


@api()
def _versions(engine: Engine, grant: Grant, path: dict[str, str], _query: Any, _body: Any) -> dict[str, Any]:
    return reads.versions(engine, grant.space_id, path["collection"], path["key"])


@api()
def _validate(engine: Engine, grant: Grant, _path: dict[str, str], _query: Any, body: dict[str, Any]
              ) -> dict[str, Any]:
    return reads.validate(engine, grant.space_id, kind_of(body), field(body, "collection", str, "users"),
                          field(body, "key", str, ""), field(body, "definition", str))


@api()
def _preview(engine: Engine, grant: Grant, _path: dict[str, str], _query: Any, body: dict[str, Any]
             ) -> dict[str, Any]:
    sample = field(body, "sample_size", int, 10)
    if not 1 <= sample <= MAX_SAMPLE_SIZE:
        raise InvalidArgument(f"`sample_size` must be 1 to {MAX_SAMPLE_SIZE}", reason="SAMPLE_SIZE_INVALID",
                              violations=[FieldViolation("sample_size", "out of range")])
    # `include_anonymous_users` alone is the older form of `options.include_anonymous_users`.
    options = writes.checked_options({"include_anonymous_users": field(body, "include_anonymous_users", bool, False),
                                      **field(body, "options", dict, {})})
    return reads.preview(engine, grant.space_id, kind_of(body), field(body, "collection", str, "users"),
                         field(body, "definition", str), options, sample, field(body, "compare_key", str, ""))


@api()
def _profile(engine: Engine, grant: Grant, path: dict[str, str], query: Any, _body: Any) -> dict[str, Any]:
    return reads.profile(engine, grant.space_id, path["collection"], path["part"], query)


@api()
def _explain(engine: Engine, grant: Grant, path: dict[str, str], query: Any, _body: Any) -> dict[str, Any]:
    address = query.get("profile", "")
    if not address:
        raise InvalidArgument("`profile` (type:value or prf_…) is required", reason="PROFILE_ID_MISSING",
                              violations=[FieldViolation("profile", "required")])
    return reads.explain(engine, grant.space_id, path["collection"], path["key"], address)


@api()
def _destinations(engine: Engine, grant: Grant, _path: dict[str, str], _query: Any, _body: Any) -> dict[str, Any]:
    return reads.destinations(engine, grant.space_id, grant.scope == "admin")


@api()
def _dead_letters(engine: Engine, grant: Grant, path: dict[str, str], query: Any, _body: Any) -> dict[str, Any]:
    return reads.dead_letters_page(engine, grant.space_id, path["key"], query)


# What a create reads.
_CREATE_FIELDS = frozenset({"kind", "collection", "key", "name", "description", "definition", "enabled", "options"})


@api(write=True)
def _create(engine: Engine, grant: Grant, _path: dict[str, str], _query: Any, body: dict[str, Any]
            ) -> dict[str, Any]:
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:  # a misspelt field (`enable`) would be saved as its default, silently
        raise InvalidArgument(f"a definition has no field {', '.join(unknown)}", reason="FIELD_UNKNOWN",
                              violations=[FieldViolation(name, "unknown field") for name in unknown])
    spec = Spec(kind_of(body), field(body, "collection", str, "users"), field(body, "key", str),
                field(body, "name", str, ""), field(body, "description", str, ""), field(body, "definition", str),
                field(body, "enabled", bool, True), writes.options(field(body, "options", dict, {})))
    return writes.create(engine, grant, spec)


@api(write=True)
def _update(engine: Engine, grant: Grant, path: dict[str, str], _query: Any, body: dict[str, Any]
            ) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name, kind in (("name", str), ("description", str), ("definition", str), ("enabled", bool),
                       ("options", dict)):
        if name in body:
            changes[name] = field(body, name, kind)
    if "options" in changes:
        # Options named alone keep the others' stored values (as `options.backfill_days` in a mask).
        changes["options"] = writes.checked_options(changes["options"])
    etag = field(body, "etag", str) if "etag" in body else None
    unknown = sorted(set(body) - {"name", "description", "definition", "enabled", "options", "etag"})
    if unknown or not changes:
        raise InvalidArgument("send one or more of name, description, definition, enabled, options"
                              + (f"; cannot change {', '.join(unknown)}" if unknown else ""),
                              reason="FIELD_UNKNOWN" if unknown else "FIELD_MISSING",
                              violations=[FieldViolation(name, "not editable") for name in unknown])
    return writes.update(engine, grant, path["collection"], path["key"], changes, etag)


@api(write=True)
def _delete(engine: Engine, grant: Grant, path: dict[str, str], _query: Any, _body: Any) -> dict[str, Any]:
    return writes.delete(engine, grant, path["collection"], path["key"])


@api(write=True)
def _rollback(engine: Engine, grant: Grant, path: dict[str, str], _query: Any, body: dict[str, Any]
              ) -> dict[str, Any]:
    number = field(body, "version", int)
    if not 1 <= number <= writes.INT32_MAX:  # the gRPC API's version numbers are int32
        raise InvalidArgument(f"`version` must be from 1 to {writes.INT32_MAX:,}", reason="VERSION_INVALID",
                              violations=[FieldViolation("version", "out of range")])
    return writes.rollback(engine, grant, path["collection"], path["key"], number)


@api(write=True)
def _redrive(engine: Engine, grant: Grant, path: dict[str, str], _query: Any, body: dict[str, Any]
             ) -> dict[str, Any]:
    ids = field(body, "ids", list, [])
    return writes.redrive(engine, grant, path["key"], ids)


async def _unknown(request: web.Request) -> web.Response:
    """Any other path or method under the API, once signed in: 405 with `Allow` for a known path
    asked with another method, else 404."""
    edge = request.app[EDGE]
    try:
        await edge.blocking(signed_in, edge.engine, request.headers.getall("Authorization", []), False)
    except AudiencesError as error:
        return error_body(error)
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource and resource.canonical.startswith(PREFIX):
            _, methods = await resource.resolve(request)
            allowed |= methods
    if not allowed:
        return error_body(NotFound("no such console API path", reason="PATH_UNKNOWN"))
    response = _json({"error": {"code": "METHOD_NOT_ALLOWED", "reason": "METHOD_NOT_ALLOWED",
                                "message": f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}"}},
                     status=405)
    response.headers["Allow"] = ", ".join(sorted(allowed))
    return response
