"""Segment's HTTP tracking API, wire compatible: what Segment's libraries send, answered as Segment does.

Routes (all `POST`, and `OPTIONS` for browsers' CORS preflight):

- one call: `/v1/track`, `/v1/identify`, `/v1/page`, `/v1/screen`, `/v1/group`, `/v1/alias`, and
  analytics.js's one-letter paths `/v1/t`, `/v1/i`, `/v1/p`, `/v1/s`, `/v1/g`, `/v1/a`; the path
  sets the call's `type`;
- a batch: `/v1/batch`, `/v1/import` and analytics.js's `/v1/b`, `{"batch": [...]}` with
  batch-level `context`, `integrations` and `sentAt`, as `BatchJson` takes it.

The write key is HTTP Basic's user name or the body's `writeKey`; the body is JSON whatever its
Content-Type, gzip or deflate when Content-Encoding says so, read up to Segment's limits (32 KB
for one call, 500 KB for a batch) and never further, within `BODY_TIMEOUT_S`, and within the
budgets of bytes held (`_Budget`: in all, per client address, and a smaller one for bodies whose
key was not checked first). The calls then go through the same engine path as gRPC's `BatchJson`
(`Ingest.submit`: validation, dedup, identity, limits); the reply comes once the accepted calls
are committed. docs/api.md describes statuses, bodies and CORS.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import PayloadEncodingError
from aiohttp.web_protocol import RequestPayloadError

from audiences_server.core import tracking
from audiences_server.engine.ingest import (
    REJECTED,
    CallResult,
    PendingBatch,
    Sender,
    calls_of,
    check_batch_limits,
    decode_body,
    rejection_error,
)
from audiences_server.engine.origins import AllowedOrigins, Origins
from audiences_server.errors import (
    AudiencesError,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from audiences_server.http.app import EDGE, ERROR_ANSWERS, Edge
from audiences_server.http.auth import basic_token, granted
from audiences_server.http.bodies import COMPRESSED, BadEncoding, Inflater, content_encoding
from audiences_server.http.connections import client_of
from audiences_server.http.errors import error_response
from audiences_server.http.proxies import client_address
from audiences_server.store.spaces import Grant

# Each single-call path and the call type it sets (analytics.js posts to the type's first letter).
SINGLE_PATHS = {
    **{kind: kind for kind in ("track", "identify", "page", "screen", "group", "alias")},
    "t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias",
}
BATCH_PATHS = ("batch", "import", "b")
MAX_CALL_BODY = tracking.MAX_CALL_BYTES
MAX_BATCH_BODY = tracking.MAX_BATCH_BYTES
# Request bodies read and not yet handed to the engine, all requests together. Past this, new
# requests are refused with 429 instead of read: memory stays bounded however many clients send
# at once (the engine bounds what waits for the writer after that).
MAX_HELD_BYTES = 64 * 1024 * 1024
# Of those, what the bodies of one client address may hold (an IPv6 address counts by its /64,
# `http.connections.client_of`): 136 stalled bodies sent from one address, no key needed, held all
# 64 MiB and every call got 429; now an address holds a quarter at most, and it takes four to
# fill the budget. (Behind a trusted proxy, the client is whom it forwards for: `http.proxies`.)
MAX_HELD_BYTES_PER_CLIENT = 16 * 1024 * 1024
# Bodies whose key was not checked before they were read (the key is in the body, or missing),
# which anyone can send, are held within a budget of their own besides, a quarter of the whole
# and a quarter of that per address: however many of them stall, 48 MiB stay for requests whose
# Basic key was checked first (server libraries, analytics.js).
MAX_UNCHECKED_HELD_BYTES = 16 * 1024 * 1024
MAX_UNCHECKED_HELD_BYTES_PER_CLIENT = 4 * 1024 * 1024
# The time a body has to arrive whole, from when its route starts reading it; past it the request
# is refused (408 BODY_TIMEOUT), its bytes given back and its connection closed. The largest body
# (500 KB) needs 17 KB/s to make it; what stalls holds its bytes for this long at most.
BODY_TIMEOUT_S = 30.0
# Of a compressed body refused (too large, or not valid gzip or deflate), the most bytes read as
# sent (and dropped, not inflated) to reach its end before answering, so that the connection can
# take its next request: an honest sender's whole body, not an endless one's.
MAX_DISCARDED_BYTES = 8 * 1024 * 1024
# Of a compressed body, the most bytes read as sent beyond the inflated limit: deflate never makes
# data more than a little larger, so a body past this is padding (empty blocks, members that
# inflate to nothing), refused as too large rather than read for as long as it is sent.
COMPRESSED_SLACK_BYTES = 64 * 1024
# How long a browser may reuse a preflight's answer (browsers cap it: Chrome at 2 hours).
PREFLIGHT_MAX_AGE_S = 7200
_PREFLIGHT_HEADERS = "authorization, content-type, content-encoding, x-retry-count"
# A list of header names, as a preflight's Access-Control-Request-Headers holds it.
HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*\Z")
_SUCCESS = b'{"success":true}'
_CORS_ORIGIN = web.RequestKey("tracking_cors_origin", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application) -> None:
    """Adds the tracking API's routes, and its CORS headers on every response they give."""
    edge = app[EDGE]
    api = app[TRACKING] = TrackingApi(edge, Origins(edge.engine.writer, edge.engine.readers))
    for path, kind in SINGLE_PATHS.items():
        app.router.add_post(f"/v1/{path}", api.handler(kind, client_side=len(path) == 1))
        app.router.add_route("OPTIONS", f"/v1/{path}", api.preflight)
    for path in BATCH_PATHS:
        app.router.add_post(f"/v1/{path}", api.handler(None, client_side=len(path) == 1))
        app.router.add_route("OPTIONS", f"/v1/{path}", api.preflight)
    for path in (*SINGLE_PATHS, *BATCH_PATHS):
        app[ERROR_ANSWERS][f"/v1/{path}"] = tracking_error  # a refusal before the route runs too
    app.on_response_prepare.append(_cors_headers)


class TrackingApi:
    """The tracking routes' handlers."""

    def __init__(self, edge: Edge, origins: Origins) -> None:
        self._edge = edge
        self._ingest = edge.engine.ingest
        self._auth = edge.engine.auth
        self.origins = origins
        # Bytes of bodies being read or decoded (only the event loop touches them): all of them,
        # and those of requests whose key was not checked first.
        self.bodies = _Budget()
        self.unchecked = _Budget()

    def handler(self, kind: str | None, client_side: bool) -> Handler:
        """The handler of a path: one call of `kind`, or a batch when `kind` is None; `client_side`
        for the paths of Segment's client-side libraries (`Received`)."""

        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                return await self._handle(request, kind, client_side)
            except AudiencesError as error:
                return tracking_error(error, request)

        return handle

    async def preflight(self, request: web.Request) -> web.StreamResponse:
        """Answers a browser's CORS preflight for the origins some space allows.

        The preflight carries no credentials, so it cannot say which space the call is for: an
        origin that any space allows passes, and the call itself is then refused (403) unless
        its own key's space allows the origin.
        """
        origin = request.headers.get("Origin")
        if origin is None or "Access-Control-Request-Method" not in request.headers:
            return web.Response(status=204, headers={"Allow": "POST, OPTIONS"})
        allowed = await self.allowed()
        if not allowed.allows_any(origin):
            return tracking_error(_origin_refused(origin), request)
        request[_CORS_ORIGIN] = origin
        requested = request.headers.get("Access-Control-Request-Headers", "")
        headers = {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": requested if HEADER_LIST.match(requested) else _PREFLIGHT_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
            "Vary": "Origin, Access-Control-Request-Headers",
        }
        if request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
            # A public page calling a server on a private network: Chrome asks first.
            headers["Access-Control-Allow-Private-Network"] = "true"
        return web.Response(status=204, headers=headers)

    async def _handle(self, request: web.Request, kind: str | None, client_side: bool) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = await self.allowed() if origin is not None else None
        if origin is not None and allowed is not None and allowed.allows_any(origin):
            # Set first, so that every answer from here on (errors too) is readable by the page.
            request[_CORS_ORIGIN] = origin
        grant = self._basic_grant(request, origin, allowed)
        hold = _Hold(self, client_of(client_address(request)), checked=grant is not None)
        body = await self._read(request, MAX_CALL_BODY if kind else MAX_BATCH_BODY, kind, hold)
        received = Received(client_side, client_address(request))
        try:
            caller, pending = await self._edge.blocking(self._submit, kind, body, grant, origin, allowed, received)
        finally:
            hold.release()
        structlog.contextvars.bind_contextvars(space=caller.space_name)
        # The engine counts each call's outcome in the metrics, as for every other ingest path.
        return _reply(kind, await pending.committed())

    def _basic_grant(self, request: web.Request, origin: str | None, allowed: AllowedOrigins | None) -> Grant | None:
        """The grant of the Basic credentials (checked before the body is read), or None without
        them. With Segment's OAuth (`Authorization: Bearer <access token>` and the write key in the
        body), the access token is not this server's to check: the body's `writeKey` authenticates."""
        if _oauth(request):
            return None
        token = basic_token(request)
        if token is None:
            return None
        grant = granted(self._auth, token, "write")
        check_origin(grant, origin, allowed)
        return grant

    async def allowed(self) -> AllowedOrigins:
        """The origins the spaces allow (cached; read on a worker when not). The settings route of
        analytics.js (`http.browser_settings`) asks here too."""
        cached = self.origins.cached()
        return cached if cached is not None else await self._edge.blocking(self.origins.load)

    async def _read(self, request: web.Request, limit: int, kind: str | None, hold: _Hold) -> bytes:
        """The decoded body, refused past `limit` bytes without reading further, or when it has not
        arrived whole within BODY_TIMEOUT_S; its bytes are held in `hold` (and given back on failure)."""
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                return await self._read_body(request, limit, kind, hold)
        except TimeoutError:
            raise BodyTimedOut(f"the body did not arrive within {BODY_TIMEOUT_S:g} s; send it again") from None

    async def _read_body(self, request: web.Request, limit: int, kind: str | None, hold: _Hold) -> bytes:
        encoding = content_encoding(request)
        length = request.content_length
        if encoding not in COMPRESSED and length is not None and length > limit:
            raise _too_large(kind, length, limit)
        inflater = Inflater(encoding) if encoding in COMPRESSED else None
        chunks: list[bytes] = []
        size = sent = 0
        try:
            while raw := await request.content.readany():
                chunk = raw if inflater is None else inflater.inflate(raw, limit - size)
                size += len(chunk)
                sent += len(raw)
                if size > limit or sent > limit + COMPRESSED_SLACK_BYTES:
                    if inflater is not None:
                        await _discard(request)
                    raise _too_large(kind, size, limit, at_least=True)
                hold.take(len(chunk))
                chunks.append(chunk)
            if inflater is not None:
                inflater.finish()
        except BaseException as failure:
            hold.release()
            if isinstance(failure, BadEncoding):
                await _discard(request)
            if isinstance(failure, BadEncoding | PayloadEncodingError | RequestPayloadError):
                raise _unreadable(encoding, failure) from None
            raise
        return b"".join(chunks)

    def _submit(self, kind: str | None, body: bytes, grant: Grant | None, origin: str | None,
                allowed: AllowedOrigins | None, received: Received) -> tuple[Grant, PendingBatch]:
        """Decodes a body and queues its calls for the writer (on the pool: JSON and validation are CPU work)."""
        decoded = decode_body(body, f"the body must be one {kind} call, a JSON object") if kind else decode_body(body)
        if grant is None:
            grant = granted(self._auth, _body_key(decoded), "write")
            check_origin(grant, origin, allowed)
        sender = Sender(grant.space_id, grant.label)
        if kind is not None:
            return grant, self._ingest.submit(sender, [received.complete({**_without_key(decoded), "type": kind},
                                                                         tracking.BatchDefaults())])
        calls, defaults = _batch(decoded)
        check_batch_limits(len(calls), len(body))
        return grant, self._ingest.submit(sender, [received.complete(call, defaults) for call in calls], defaults)


@dataclass(frozen=True, slots=True)
class Received:
    """What Segment's servers add to a call they receive (docs/ingestion.md, "Client-side calls").

    A call on a client-side library's path (analytics.js and the mobile libraries post to `/v1/t`
    … `/v1/b`) has its `timestamp` from the device's clock: with a `sentAt` (from the same clock)
    it is the call's `originalTimestamp`, corrected for the device's clock as such
    (receivedAt − (sentAt − originalTimestamp)). Such a call, or one with `context.direct: true`,
    gets the sender's address as `context.ip` unless it has one."""

    client_side: bool
    address: str

    def complete(self, call: Any, defaults: tracking.BatchDefaults) -> Any:
        """The call with what the server adds (as sent if it is not an object: refused later)."""
        if not isinstance(call, dict):
            return call
        if (self.client_side and call.get("timestamp") is not None and call.get("originalTimestamp") is None
                and (call.get("sentAt") if call.get("sentAt") is not None else defaults.sent_at) is not None):
            call = {**{k: v for k, v in call.items() if k != "timestamp"}, "originalTimestamp": call["timestamp"]}
        context = call.get("context")
        if context is None:
            context = {}
        if (self.address and isinstance(context, dict) and (self.client_side or context.get("direct") is True)
                and "ip" not in context and "ip" not in (defaults.context or {})):
            call = {**call, "context": {**context, "ip": self.address}}
        return call


class BodyTimedOut(AudiencesError):
    """A body that did not arrive whole within BODY_TIMEOUT_S: 408, and the connection is closed
    (the rest of the body is not waited for)."""

    code = "DEADLINE_EXCEEDED"
    default_reason = "BODY_TIMEOUT"
    status = 408


class _Budget:
    """Bytes of bodies held, in all and by client address."""

    __slots__ = ("by_client", "held")

    def __init__(self) -> None:
        self.held = 0
        self.by_client: dict[str, int] = {}

    def refusal(self, client: str, size: int, limit: int, per_client: int) -> str | None:
        """Why `size` more bytes of `client` do not fit, or None when they do."""
        if self.held + size > limit:
            return f"the server is reading {self.held} bytes of request bodies already"
        if self.by_client.get(client, 0) + size > per_client:
            return f"requests from {client} are sending {self.by_client[client]} bytes of bodies already"
        return None

    def add(self, client: str, size: int) -> None:
        self.held += size
        self.by_client[client] = self.by_client.get(client, 0) + size

    def remove(self, client: str, size: int) -> None:
        self.held -= size
        left = self.by_client.get(client, 0) - size
        if left > 0:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)


class _Hold:
    """What one request's body holds of the budgets, given back at once (`release`)."""

    __slots__ = ("_api", "_checked", "_client", "size")

    def __init__(self, api: TrackingApi, client: str, *, checked: bool) -> None:
        self._api = api
        self._client = client
        self._checked = checked
        self.size = 0

    def take(self, size: int) -> None:
        """Holds `size` more bytes, or refuses the request (429 REQUESTS_SATURATED)."""
        api, client = self._api, self._client
        # The limits are read as they are now (module figures, which tests change).
        why = api.bodies.refusal(client, size, MAX_HELD_BYTES, MAX_HELD_BYTES_PER_CLIENT)
        if why is None and not self._checked:
            why = api.unchecked.refusal(client, size, MAX_UNCHECKED_HELD_BYTES, MAX_UNCHECKED_HELD_BYTES_PER_CLIENT)
            if why is not None:
                why += " without a checked key (send the key with HTTP Basic to use the rest)"
        if why is not None:
            raise ResourceExhausted(f"{why}; retry shortly", reason="REQUESTS_SATURATED",
                                    metadata={"retry_after_s": "1"})
        api.bodies.add(client, size)
        if not self._checked:
            api.unchecked.add(client, size)
        self.size += size

    def release(self) -> None:
        """Gives back every byte held (again: nothing)."""
        if self.size:
            self._api.bodies.remove(self._client, self.size)
            if not self._checked:
                self._api.unchecked.remove(self._client, self.size)
            self.size = 0


# How long after a `408 BODY_TIMEOUT` its connection is closed: its answer is written by then.
_CLOSE_AFTER_408_S = 0.5
# The application's tracking API (what its bodies hold can be looked at: tests do).
TRACKING = web.AppKey("tracking", TrackingApi)


def tracking_error(error: AudiencesError, request: web.Request) -> web.Response:
    """A domain error as the tracking API answers it.

    The body has the HTTP edge's `error` object, and also `success: false` with `code` and
    `message` at the top, where Segment's libraries read them for their logs.
    """
    response = error_response(error, request)
    if isinstance(error, BodyTimedOut):
        response.set_status(BodyTimedOut.status)
        response.force_close()
        # And the connection a moment after the answer is written (a close flushes what is
        # buffered): aiohttp would otherwise go on reading the stalled body for its lingering
        # time, 10 s, holding the connection that much longer.
        asyncio.get_running_loop().call_later(_CLOSE_AFTER_408_S, request.protocol.force_close)
    response.text = json.dumps({
        "success": False, "code": error.reason, "message": error.message,
        "error": {"code": error.code, "reason": error.reason, "message": error.message},
    })
    if response.status == 429:
        # analytics.js reads the wait from X-RateLimit-Reset, the server libraries from Retry-After.
        response.headers["X-RateLimit-Reset"] = response.headers["Retry-After"]
    return response


async def _cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Makes every tracking response to an allowed origin readable by the page, errors included:
    a response the page may not read counts as a failure, and analytics.js sends the call again."""
    origin = request.get(_CORS_ORIGIN)
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Expose-Headers"] = "Retry-After, X-RateLimit-Reset, x-request-id"
    if "Vary" not in response.headers:
        response.headers["Vary"] = "Origin"


def _reply(kind: str | None, results: list[CallResult]) -> web.Response:
    rejected = [result for result in results if result.status == REJECTED]
    if kind is not None and rejected:
        one = rejected[0]
        raise rejection_error(tracking.Rejection(one.reason, one.detail, one.message_id))
    if not rejected:
        return web.Response(body=_SUCCESS, content_type="application/json")
    return web.json_response({"success": True, "rejected": [
        {"index": r.index, "messageId": r.message_id, "reason": r.reason, "detail": r.detail} for r in rejected
    ]})


def _oauth(request: web.Request) -> bool:
    """Whether the request has one Authorization header, a Bearer one (Segment's OAuth)."""
    headers = request.headers.getall("Authorization", [])
    return len(headers) == 1 and headers[0].partition(" ")[0].lower() == "bearer"


def _body_key(decoded: dict[str, Any]) -> str:
    key = decoded.get("writeKey")
    if not isinstance(key, str) or not key:
        raise Unauthenticated("missing credentials: HTTP Basic with the write key as user name, or `writeKey` "
                              "in the body (with or without a Bearer token)", reason="TOKEN_MISSING")
    return key


def check_origin(grant: Grant, origin: str | None, allowed: AllowedOrigins | None) -> None:
    """Refuses (403 ORIGIN_NOT_ALLOWED) a request from a page whose origin the grant's space does not allow."""
    if origin is not None and allowed is not None and not allowed.allows(grant.space_id, origin):
        raise _origin_refused(origin, grant.space_name)


def _origin_refused(origin: str, space: str | None = None) -> PermissionDenied:
    whose = f"space {space!r} does not allow" if space else "no space allows"
    return PermissionDenied(f"{whose} calls from pages of origin {origin!r}; see "
                            "`audiences-server spaces origins`", reason="ORIGIN_NOT_ALLOWED",
                            metadata={"origin": origin})


def _batch(decoded: dict[str, Any]) -> tuple[list[Any], tracking.BatchDefaults]:
    """The calls of a batch body and its batch-level fields, read as `BatchJson` reads them, less
    any `writeKey`."""
    calls, defaults = calls_of(decoded)
    return [_without_key(call) for call in calls], defaults


def _without_key(call: Any) -> Any:
    """The call without its `writeKey` (analytics.js puts it in every call): a key is never stored."""
    if isinstance(call, dict) and "writeKey" in call:
        return {key: value for key, value in call.items() if key != "writeKey"}
    return call


async def _discard(request: web.Request) -> None:
    """Reads the rest of a refused compressed body as sent (not inflated), so that its sender gets
    the answer and the connection its next request; but a body may be sent without end, so past
    MAX_DISCARDED_BYTES the connection is closed instead (its sender may then see the connection
    reset rather than the 400)."""
    discarded = 0
    try:
        while discarded < MAX_DISCARDED_BYTES and (chunk := await request.content.readany()):
            discarded += len(chunk)
    except (PayloadEncodingError, RequestPayloadError):
        pass
    if not request.content.at_eof():
        request.protocol.force_close()


def _unreadable(encoding: str, failure: Exception) -> InvalidArgument:
    told = f"is not valid {encoding} data" if encoding not in {"", "identity"} else f"could not be read: {failure}"
    return InvalidArgument(f"the body {told}", reason="BAD_REQUEST", violations=[FieldViolation("body", told)])


def _too_large(kind: str | None, size: int, limit: int, *, at_least: bool = False) -> InvalidArgument:
    what, reason = ("the call", "MESSAGE_TOO_LARGE") if kind else ("the batch", "BATCH_TOO_LARGE")
    told = f"is over the limit of {limit} bytes" if at_least else f"is {size} bytes; at most {limit}"
    return InvalidArgument(f"{what} {told}", reason=reason,
                           violations=[FieldViolation("body", "too many bytes")],
                           metadata={"limit_bytes": str(limit)})
